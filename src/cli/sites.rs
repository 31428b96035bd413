//! `nib sites FILE`: the places a review would score in a file (each with
//! its member and alternatives), without a model. For looking into what
//! `nib check` considers, and the one source of places for the review
//! benchmark's injected bugs and the fine-tuning examples (`--jsonl`, one
//! process for many texts: `models/nib_models/review_data.py`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{JSON_VERSION, print_out};

#[derive(Debug, Args)]
pub struct SitesArgs {
    /// The file, or `-` for stdin (with --stdin-filename).
    #[arg(required_unless_present = "jsonl")]
    path: Option<PathBuf>,
    /// With `-`: the name whose language the text on stdin is read as.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<PathBuf>,
    /// Read texts from stdin, one JSON object a line (`{"path": "a.py",
    /// "text": "..."}`, the path naming the language only), and answer each
    /// with one line: the places, or `{"path", "error"}`.
    #[arg(long, conflicts_with_all = ["path", "stdin_filename"])]
    jsonl: bool,
}

#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    path: String,
    sites: Vec<SiteOut<'a>>,
}

#[derive(Serialize)]
struct Failed<'a> {
    version: u32,
    path: &'a str,
    error: String,
}

#[derive(serde::Deserialize)]
struct Request {
    path: PathBuf,
    text: String,
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
    if args.jsonl {
        return run_lines();
    }
    let path = args.path.context("a file, `-` or --jsonl is needed")?;
    let (name, bytes) = if path.as_os_str() == "-" {
        let name = args.stdin_filename.context("`-` needs --stdin-filename")?;
        let bytes = crate::files::read_limited(std::io::stdin().lock(), crate::files::TEXT_LIMIT)
            .context("cannot read stdin")?;
        (name, bytes)
    } else {
        let bytes = crate::files::read_bytes(&path, crate::files::TEXT_LIMIT)
            .with_context(|| format!("cannot read {}", path.display()))?;
        (path, bytes)
    };
    let text = String::from_utf8(bytes).context("the file is not UTF-8 text")?;
    print_out(&format!("{}\n", places(&name, &text)?))?;
    Ok(ExitCode::SUCCESS)
}

/// `--jsonl`: one answer a line, in order, until stdin ends; a line that is
/// not a request gets an error line and the next one is read.
fn run_lines() -> anyhow::Result<ExitCode> {
    use std::io::BufRead as _;
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line.context("cannot read stdin")?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let answer = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => places(&request.path, &request.text).or_else(|e| {
                serde_json::to_string(&Failed {
                    version: JSON_VERSION,
                    path: &request.path.display().to_string(),
                    error: format!("{e:#}"),
                })
            }),
            Err(e) => serde_json::to_string(&Failed {
                version: JSON_VERSION,
                path: "",
                error: format!("not a request ({{\"path\", \"text\"}}): {e}"),
            }),
        }?;
        print_out(&format!("{answer}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The places of `text`, read as `name`'s language, as one JSON line.
fn places(name: &Path, text: &str) -> anyhow::Result<String> {
    let sites = crate::review::sites_of(name, text)
        .with_context(|| format!("{}: no review rules for this language", name.display()))?;
    let line_starts = crate::lex::line_starts(text);
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
                            written: s.written(text, a.text),
                            rule: a.rule,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    Ok(serde_json::to_string(&out)?)
}
