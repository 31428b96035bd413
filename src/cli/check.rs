//! `nib check [PATHS]...`: reviews files for likely bugs, for people and CI.
//!
//! Exit status: 0 no findings, 1 findings (0 with `--exit-zero`), 2 error.
//! A file that cannot be read as text is a warning, not an error: one odd
//! file must not fail a CI job.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{ModelArgs, print_out};
use crate::engine::{CancelToken, Engine};
use crate::report::{Diagnostic, Format, Report};
use crate::review::{ReviewOptions, language_of, review};

/// Files larger than this are skipped: generated or vendored code, and
/// minutes of scoring for one file.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories (walked, honouring .gitignore; hidden files skipped).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the results to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Report only findings the model is at least this sure of (0 to 1).
    #[arg(long, value_name = "F", value_parser = parse_confidence)]
    min_confidence: Option<f64>,
    /// Most candidate places scored per file.
    #[arg(long, value_name = "N")]
    max_sites: Option<usize>,
    /// Exit with 0 even when there are findings.
    #[arg(long)]
    exit_zero: bool,
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a number from 0 to 1, got `{s}`")),
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let defaults = ReviewOptions::default();
    let options = ReviewOptions {
        min_confidence: args.min_confidence.unwrap_or(defaults.min_confidence),
        max_sites: args.max_sites.unwrap_or(defaults.max_sites),
        ..defaults
    };
    let files = collect_files(&args.paths)?;
    let mut report = Report {
        model: args.model.model_path()?.display().to_string(),
        ..Report::default()
    };
    if !files.is_empty() {
        // Loading takes a while and may fail: only when there is work.
        let mut engine = args.model.load()?;
        review_files(&mut engine, &files, &options, &mut report)?;
    }
    // Stable sort: files in path order, each file's findings in text order.
    report.diagnostics.sort_by(|a, b| a.path.cmp(&b.path));
    tracing::info!(
        "{} files checked, {} findings",
        report.files_checked,
        report.diagnostics.len()
    );
    let rendered = report.render(args.format);
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print_out(&rendered)?,
    }
    Ok(if report.diagnostics.is_empty() || args.exit_zero {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reviews each file into `report`; unreadable files are counted as skipped.
fn review_files(
    engine: &mut dyn Engine,
    files: &[PathBuf],
    options: &ReviewOptions,
    report: &mut Report,
) -> anyhow::Result<()> {
    let cancel = CancelToken::new();
    for (i, file) in files.iter().enumerate() {
        let Some(text) = read_text(file) else {
            report.files_skipped += 1;
            continue;
        };
        tracing::info!("[{}/{}] {}", i + 1, files.len(), file.display());
        let review = review(engine, Some(file), &text, options, &cancel)
            .with_context(|| format!("reviewing {}", file.display()))?;
        if review.scored < review.sites {
            tracing::warn!(
                "{}: scored {} of {} places (--max-sites)",
                file.display(),
                review.scored,
                review.sites
            );
        }
        report.files_checked += 1;
        report.sites += review.sites;
        report.sites_scored += review.scored;
        let shown = display_path(file);
        report.diagnostics.extend(
            review
                .findings
                .iter()
                .map(|f| Diagnostic::from_finding(&shown, &text, f)),
        );
    }
    Ok(())
}

/// The files to review under `paths`, in path order: files named
/// directly (if nib has rules for their language) and the walk of each
/// directory. A path that does not exist is an error.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot check `{}`", root.display()))?;
        if meta.is_file() {
            if language_of(root).is_some() {
                files.push(root.clone());
            } else {
                tracing::warn!("{}: no review rules for this language", root.display());
            }
            continue;
        }
        // Hidden files and .gitignore'd ones, inside a git checkout or not.
        let walk = ignore::WalkBuilder::new(root)
            .require_git(false)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walk {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!("{e}");
                    continue;
                }
            };
            let path = entry.path();
            if entry.file_type().is_some_and(|t| t.is_file()) && language_of(path).is_some() {
                files.push(path.to_path_buf());
            }
        }
    }
    // Overlapping arguments (`nib check . src/`) name some files twice.
    files.sort();
    files.dedup();
    Ok(files)
}

/// The file's text, or `None` with a warning when it is not reviewable text.
fn read_text(path: &Path) -> Option<String> {
    let warn = |why: &str| tracing::warn!("skipping {}: {why}", path.display());
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            warn(&format!("larger than {} KiB", MAX_FILE_BYTES >> 10));
            return None;
        }
        Err(e) => {
            warn(&e.to_string());
            return None;
        }
        Ok(_) => {}
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            warn(&e.to_string());
            return None;
        }
    };
    if bytes.contains(&0) {
        warn("binary file");
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            warn("not UTF-8 text");
            None
        }
    }
}

/// Paths as the user would write them: without a leading `./`.
fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_must_be_a_probability() {
        assert_eq!(parse_confidence("0.5"), Ok(0.5));
        assert!(parse_confidence("1.5").is_err() && parse_confidence("x").is_err());
    }

    #[test]
    fn paths_lose_a_leading_dot() {
        assert_eq!(display_path(Path::new("./src/a.py")), "src/a.py");
        assert_eq!(display_path(Path::new("src/a.py")), "src/a.py");
    }
}
