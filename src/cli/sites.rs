//! `nib sites FILE`: the places a review would score in a file (each with
//! its member and alternatives), without a model. For looking into what
//! `nib check` considers, and the one source of places for the review
//! benchmark's injected bugs (`bench/review_quality.py`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{JSON_VERSION, print_out};

#[derive(Debug, Args)]
pub struct SitesArgs {
    /// The file, or `-` for stdin (with --stdin-filename).
    path: PathBuf,
    /// With `-`: the name whose language the text on stdin is read as.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<PathBuf>,
}

#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    path: String,
    sites: Vec<SiteOut<'a>>,
}

#[derive(Serialize)]
struct SiteOut<'a> {
    /// Byte range of the member.
    start: usize,
    end: usize,
    /// 1-based line and character column.
    line: usize,
    column: usize,
    member: &'a str,
    alternatives: Vec<AlternativeOut<'a>>,
}

#[derive(Serialize)]
struct AlternativeOut<'a> {
    text: &'a str,
    /// As it would be written there (spaced between identifiers).
    written: String,
    rule: &'a str,
}

pub fn run(args: SitesArgs) -> anyhow::Result<ExitCode> {
    let (name, bytes) = if args.path.as_os_str() == "-" {
        let name = args.stdin_filename.context("`-` needs --stdin-filename")?;
        let bytes = crate::files::read_limited(std::io::stdin().lock(), crate::files::TEXT_LIMIT)
            .context("cannot read stdin")?;
        (name, bytes)
    } else {
        let bytes = crate::files::read_bytes(&args.path, crate::files::TEXT_LIMIT)
            .with_context(|| format!("cannot read {}", args.path.display()))?;
        (args.path, bytes)
    };
    let text = String::from_utf8(bytes).context("the file is not UTF-8 text")?;
    let sites = crate::review::sites_of(&name, &text)
        .with_context(|| format!("{}: no review rules for this language", name.display()))?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let out = Out {
        version: JSON_VERSION,
        path: name.display().to_string(),
        sites: sites
            .iter()
            .map(|s| {
                let line = line_starts.partition_point(|&l| l <= s.start);
                let line_start = line_starts[line - 1];
                SiteOut {
                    start: s.start,
                    end: s.end,
                    line,
                    column: text[line_start..s.start].chars().count() + 1,
                    member: s.member,
                    alternatives: s
                        .alternatives
                        .iter()
                        .map(|a| AlternativeOut {
                            text: a.text,
                            written: s.written(&text, a.text),
                            rule: a.rule,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    print_out(&format!("{}\n", serde_json::to_string(&out)?))?;
    Ok(ExitCode::SUCCESS)
}
