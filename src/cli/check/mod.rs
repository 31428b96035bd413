//! `nib check [PATHS]...`: reviews files for likely bugs, for people and CI.
//!
//! Exit status: 0 when no finding reaches `--fail-level` (or with
//! `--exit-zero`), 1 when one does, 2 on an error. A file that cannot be
//! read as text is a warning, not an error: one odd file must not fail a
//! CI job. Output is the same bytes for the same input, whatever `--jobs`.

mod inputs;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Args;

use self::inputs::{display_path, read_text, text_of};
use super::{ModelArgs, print_out};
use crate::engine::{CancelToken, Engine};
use crate::lint::{Baseline, Changes, Found, Overrides, Policies, Policy};
use crate::report::{Diagnostic, Format, Report, Severity};
use crate::review::{ReviewOptions, review};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or folders (walked, honouring .gitignore; hidden files
    /// skipped), or `-` for one file on stdin (with --stdin-filename).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Output format: for people, or one of the CI formats.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the results to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Report only findings the model is at least this sure of (0 to 1).
    /// Default: the configuration's `min-confidence`, else each rule's
    /// threshold calibrated for its language (`nib rule NAME`).
    #[arg(long, value_name = "F", value_parser = parse_confidence)]
    min_confidence: Option<f64>,
    /// Only these rules (comma-separated; replaces the configuration's `select`).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    select: Option<Vec<String>>,
    /// Not these rules (comma-separated; added to the configuration's `ignore`).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    ignore: Vec<String>,
    /// Skip files matching GLOB when walking folders (repeatable; `*.min.js`,
    /// `vendor/`, `src/gen/*.py`).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Use this nib.toml (or pyproject.toml) for every file instead of the
    /// one found above each file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ignore every configuration file (nib.toml, [tool.nib]).
    #[arg(long, conflicts_with = "config")]
    isolated: bool,
    /// Leave out the findings recorded in FILE (see --write-baseline).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Record this run's findings in the --baseline file and exit 0.
    #[arg(long, requires = "baseline")]
    write_baseline: bool,
    /// Only lines changed since the git revision REV, uncommitted and
    /// untracked files included (`--diff origin/main`).
    #[arg(long, value_name = "REV")]
    diff: Option<String>,
    /// The path a file read from stdin (`-`) stands for: its language,
    /// configuration and the name in the report.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<PathBuf>,
    /// The lowest severity that makes the exit status 1.
    #[arg(long, value_enum, value_name = "LEVEL", default_value = "warning")]
    fail_level: Severity,
    /// Exit with 0 even when there are findings.
    #[arg(long)]
    exit_zero: bool,
    /// Most candidate places scored per file.
    #[arg(long, value_name = "N")]
    max_sites: Option<usize>,
    /// Files reviewed at once, each with its own copy of the model
    /// (default 1; the cores are shared among them).
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// The global -q: no progress bar, summary line or warnings.
    #[arg(skip)]
    quiet: bool,
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a number from 0 to 1, got `{s}`")),
    }
}

/// One file to review: where it is, what it holds, under which policy.
struct Input {
    path: PathBuf,
    shown: String,
    text: String,
    policy: Arc<Policy>,
    /// Byte ranges of the changed lines, with `--diff`.
    only: Option<Vec<std::ops::Range<usize>>>,
}

/// What one file's review gave.
struct Output {
    diagnostics: Vec<Diagnostic>,
    sites: usize,
    scored: usize,
}

pub fn run(mut args: CheckArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    args.quiet = quiet;
    let overrides = Overrides {
        select: args.select.clone(),
        ignore: args.ignore.clone(),
        exclude: args.exclude.clone(),
        min_confidence: args.min_confidence,
    };
    overrides.validate().map_err(anyhow::Error::msg)?;
    let fixed = match &args.config {
        Some(file) => Some(
            crate::lint::config::read(file)?
                .with_context(|| format!("{} has no [tool.nib] table", file.display()))?,
        ),
        // No settings at all, for every file.
        None if args.isolated => Some(Found {
            file: PathBuf::from("--isolated"),
            dir: PathBuf::from("."),
            settings: crate::lint::Settings::default(),
        }),
        None => None,
    };
    let mut policies = Policies::new(overrides, fixed);
    if args.model.model.is_none()
        && let Some(found) = policies.for_run()?
        && let Some(model) = &found.settings.model
    {
        args.model.model = Some(found.dir.join(model));
    }
    let (inputs, skipped) = gather(&args, &mut policies)?;
    let baseline = match (&args.baseline, args.write_baseline) {
        (Some(file), false) => Some(Baseline::read(file)?),
        _ => None,
    };
    let mut report = Report {
        model: args.model.model_path()?.display().to_string(),
        files_skipped: skipped,
        ..Report::default()
    };
    // Text on stdout is streamed file by file; other formats are documents.
    let stream = args.format == Format::Text && args.output.is_none() && !args.write_baseline;
    let progress = progress_bar(inputs.len(), args.quiet);
    let mut on_file = |i: usize, out: Output, report: &mut Report| -> anyhow::Result<()> {
        let input = &inputs[i];
        progress.set_message(input.shown.clone());
        progress.inc(1);
        report.files_checked += 1;
        report.sites += out.sites;
        report.sites_scored += out.scored;
        // This file's findings, fingerprinted, less the accepted ones.
        let mut file = Report::default();
        file.add_file(out.diagnostics);
        if let Some(baseline) = &baseline {
            file.diagnostics.retain(|d| !baseline.contains(d));
        }
        if stream {
            let text = file.render_text_findings();
            progress.suspend(|| print_out(&text))?;
        }
        report.diagnostics.append(&mut file.diagnostics);
        Ok(())
    };
    if !inputs.is_empty() {
        review_all(&args, &inputs, &mut report, &mut on_file)?;
    }
    progress.finish_and_clear();
    // `--write-baseline` requires `--baseline`.
    if let Some(file) = args.baseline.as_deref().filter(|_| args.write_baseline) {
        Baseline::write(file, &report.diagnostics)?;
        if !args.quiet {
            eprintln!(
                "nib: recorded {} findings in {}",
                report.diagnostics.len(),
                file.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rendered = if stream && args.quiet {
        String::new()
    } else if stream {
        report.render_text_summary()
    } else {
        report.render(args.format)
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print_out(&rendered)?,
    }
    let fails = report
        .diagnostics
        .iter()
        .any(|d| d.severity >= args.fail_level);
    Ok(if fails && !args.exit_zero {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The inputs in path order, each with its policy (and changed lines), and
/// how many files were skipped as unreadable.
fn gather(args: &CheckArgs, policies: &mut Policies) -> anyhow::Result<(Vec<Input>, usize)> {
    let stdin = args.paths.iter().any(|p| p == Path::new("-"));
    if stdin && args.paths.len() > 1 {
        anyhow::bail!("`-` (stdin) cannot be checked together with other paths");
    }
    let files = if stdin {
        Vec::new()
    } else {
        inputs::collect(&args.paths, policies)?
    };
    if stdin {
        let name = args
            .stdin_filename
            .clone()
            .context("checking stdin (`-`) needs --stdin-filename, which gives its language")?;
        let bytes = crate::files::read_limited(std::io::stdin().lock(), inputs::MAX_FILE_BYTES)
            .context("cannot read stdin")?;
        let text = text_of(bytes).map_err(|why| anyhow::anyhow!("stdin: {why}"))?;
        let input = Input {
            shown: display_path(&name),
            policy: policies.for_file(&name)?,
            path: name,
            text,
            only: None,
        };
        return Ok((vec![input], 0));
    }
    let mut read = Vec::new();
    let mut skipped = 0;
    for path in files {
        match read_text(&path) {
            Some(text) => read.push((path, text)),
            None => skipped += 1,
        }
    }
    let changes = match &args.diff {
        Some(rev) => {
            let mut changes = Changes::since(rev, Path::new("."))?;
            let texts: Vec<(PathBuf, &str)> =
                read.iter().map(|(p, t)| (p.clone(), t.as_str())).collect();
            changes.compare(&texts)?;
            Some(changes)
        }
        None => None,
    };
    let mut out = Vec::new();
    for (path, text) in read {
        let only = match &changes {
            // Outside the repository, or unchanged: nothing to review.
            Some(c) => match c.lines(&path) {
                Some(lines) if !lines.is_empty() => Some(byte_ranges(&text, lines)),
                _ => continue,
            },
            None => None,
        };
        out.push(Input {
            shown: display_path(&path),
            policy: policies.for_file(&path)?,
            path,
            text,
            only,
        });
    }
    Ok((out, skipped))
}

/// Byte ranges of `text` covering the 1-based inclusive line ranges.
fn byte_ranges(
    text: &str,
    lines: &[std::ops::RangeInclusive<usize>],
) -> Vec<std::ops::Range<usize>> {
    let starts = crate::lex::line_starts(text);
    let at = |line: usize| {
        starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len())
    };
    lines
        .iter()
        .map(|r| at(*r.start())..at(r.end().saturating_add(1)))
        .filter(|r| r.start < r.end)
        .collect()
}

/// Reviews every input on `--jobs` threads, each with its own engine, and
/// hands the results to `on_file` in input order.
fn review_all(
    args: &CheckArgs,
    inputs: &[Input],
    report: &mut Report,
    on_file: &mut dyn FnMut(usize, Output, &mut Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let jobs = args.jobs.clamp(1, inputs.len().max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut model = args.model.clone();
    if jobs > 1 && model.threads.is_none() {
        model.threads = Some((cores / jobs).max(1));
    }
    // The biggest files first: with several jobs, a big file claimed last
    // would leave the other cores idle while it runs alone.
    let mut schedule: Vec<usize> = (0..inputs.len()).collect();
    if jobs > 1 {
        schedule.sort_by_key(|&i| std::cmp::Reverse(inputs[i].text.len()));
    }
    let next = AtomicUsize::new(0);
    let cancel = CancelToken::new();
    // A model that fails to load stops every thread; its error is the one told.
    let failure: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    let (send, receive) = std::sync::mpsc::channel::<(usize, anyhow::Result<Output>)>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..jobs {
            let send = send.clone();
            let (model, next, cancel, failure, schedule) =
                (&model, &next, &cancel, &failure, &schedule);
            scope.spawn(move || {
                let mut engine = match model.load() {
                    Ok(engine) => engine,
                    Err(e) => {
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(e);
                        }
                        cancel.cancel();
                        return;
                    }
                };
                loop {
                    if cancel.is_cancelled() {
                        return;
                    }
                    // Every index claimed is answered, so the results stay
                    // in order with none missing.
                    let Some(&i) = schedule.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let result = review_one(&mut *engine, &inputs[i], args, cancel);
                    if send.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let failed = || failure.lock().ok().and_then(|mut slot| slot.take());
        // In input order, whatever order the threads finish in.
        let mut waiting: std::collections::BTreeMap<usize, anyhow::Result<Output>> =
            std::collections::BTreeMap::new();
        let mut due = 0;
        for (i, result) in receive {
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&due) {
                match result {
                    Ok(out) => on_file(due, out, report)?,
                    Err(e) => {
                        cancel.cancel();
                        return Err(failed().unwrap_or(e));
                    }
                }
                due += 1;
            }
        }
        if let Some(e) = failed() {
            return Err(e);
        }
        if due < inputs.len() {
            anyhow::bail!("the review stopped after {due} of {} files", inputs.len());
        }
        Ok(())
    })
}

fn review_one(
    engine: &mut dyn Engine,
    input: &Input,
    args: &CheckArgs,
    cancel: &CancelToken,
) -> anyhow::Result<Output> {
    let defaults = ReviewOptions::default();
    let rule_set = crate::lint::policy::rule_set_of(Some(&input.path));
    let options = ReviewOptions {
        min_confidence: input.policy.lowest_threshold(rule_set),
        unscored_rules: input.policy.unscored_rules(rule_set),
        max_sites: args.max_sites.unwrap_or(defaults.max_sites),
        only: input.only.clone(),
        ..defaults
    };
    let review = review(engine, Some(&input.path), &input.text, &options, cancel)
        .with_context(|| format!("reviewing {}", input.path.display()))?;
    if review.scored < review.sites && !args.quiet {
        tracing::warn!(
            "{}: scored {} of {} places (--max-sites)",
            input.path.display(),
            review.scored,
            review.sites
        );
    }
    let kept = input
        .policy
        .filter(&input.text, Some(&input.path), review.findings);
    let diagnostics = kept
        .iter()
        .map(|f| {
            Diagnostic::from_finding(&input.shown, &input.text, f, input.policy.severity(&f.rule))
        })
        .collect();
    Ok(Output {
        diagnostics,
        sites: review.sites,
        scored: review.scored,
    })
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress_bar(files: usize, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} files, {elapsed} {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
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
    fn changed_lines_become_byte_ranges() {
        let text = "a\nbb\nccc\n";
        assert_eq!(byte_ranges(text, &[2..=2]), vec![(2..5)]);
        assert_eq!(byte_ranges(text, &[1..=usize::MAX]), vec![(0..text.len())]);
        assert!(byte_ranges(text, &[9..=9]).is_empty());
    }
}
