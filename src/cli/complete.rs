//! `nib complete FILE:LINE:COL`: the suggestion an editor would show there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ropey::Rope;
use serde::Serialize;

use super::{Format, ModelArgs, print_out};
use crate::completion::{CompletionOptions, Mode, complete_with};
use crate::engine::{FinishReason, RunToEnd, Timings};
use crate::lsp::context;

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// FILE:LINE:COL, 1-based, COL counted in characters.
    location: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Longest suggestion, in tokens; it must leave the model 64 tokens of prompt (half of a smaller context).
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Output: the text to insert, or JSON with its mode, finish reason and timings.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    /// [`super::JSON_VERSION`].
    version: u32,
    /// What an editor would insert; `null` when nothing is worth showing.
    text: Option<&'a str>,
    mode: Mode,
    line: usize,
    column: usize,
    /// Why the model stopped (also when it suggested nothing).
    finish_reason: FinishReason,
    timings: &'a Timings,
}

/// Splits `FILE:LINE:COL` from the right, so paths may hold colons.
fn parse_location(s: &str) -> anyhow::Result<(PathBuf, usize, usize)> {
    let mut parts = s.rsplitn(3, ':');
    let col = parts.next();
    let line = parts.next();
    let file = parts.next();
    match (
        file,
        line.and_then(|l| l.parse().ok()),
        col.and_then(|c| c.parse().ok()),
    ) {
        (Some(f), Some(l), Some(c)) if !f.is_empty() && l >= 1 && c >= 1 => {
            Ok((PathBuf::from(f), l, c))
        }
        _ => anyhow::bail!("expected FILE:LINE:COL with LINE and COL from 1, got `{s}`"),
    }
}

/// Byte offset of 1-based (line, column in characters), clamped to the line's
/// end and the file's last line.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[start..];
    let line_end = line_text.find('\n').map_or(text.len(), |i| start + i);
    let line_end = if text[..line_end].ends_with('\r') {
        line_end - 1
    } else {
        line_end
    };
    text[start..line_end]
        .char_indices()
        .nth(col - 1)
        .map_or(line_end, |(i, _)| start + i)
}

pub fn run(args: CompleteArgs) -> anyhow::Result<ExitCode> {
    let (file, line, col) = parse_location(&args.location)?;
    let text = crate::files::read_text(&file, crate::files::TEXT_LIMIT)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let at = offset_of(&text, line, col);
    let options = CompletionOptions {
        max_tokens: args.max_tokens,
        ..CompletionOptions::default()
    };
    // The editor's context rules, so both suggest the same.
    let ctx = context::build(
        &Rope::from_str(&text),
        text[..at].chars().count(),
        Some(file.display().to_string()),
        &[],
        context::Limits::for_budget(options.prompt_budget, 0),
    );
    let mut engine = args.model.load()?;
    let outcome = complete_with(&mut *engine, &ctx, &options, &mut RunToEnd)?;
    match args.format {
        Format::Text => {
            if let Some(text) = &outcome.text {
                print_out(&format!("{text}\n"))?;
            }
        }
        Format::Json => {
            let json = JsonOutput {
                version: super::JSON_VERSION,
                text: outcome.text.as_deref(),
                mode: outcome.mode,
                line,
                column: col,
                finish_reason: outcome.output.finish_reason,
                timings: &outcome.output.timings,
            };
            print_out(&format!("{}\n", serde_json::to_string(&json)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_from_the_right() {
        assert_eq!(
            parse_location("a:b.py:3:4").expect("valid"),
            (PathBuf::from("a:b.py"), 3, 4)
        );
        assert!(parse_location("a.py:0:1").is_err());
        assert!(parse_location("a.py:3").is_err());
    }

    #[test]
    fn offsets_count_characters_and_clamp() {
        let text = "héllo\r\nwörld\n";
        assert_eq!(&text[offset_of(text, 1, 3)..], "llo\r\nwörld\n");
        assert_eq!(&text[offset_of(text, 1, 99)..], "\r\nwörld\n");
        assert_eq!(&text[offset_of(text, 2, 2)..], "örld\n");
        assert_eq!(offset_of(text, 9, 1), text.len());
    }
}
