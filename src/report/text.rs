//! The human format, after ruff's: `path:line:col: rule message`, the line
//! with a caret underline, the fix; a summary line at the end.

use std::borrow::Cow;
use std::fmt::Write;

use super::{Diagnostic, Report};

pub(super) fn render(report: &Report) -> String {
    let mut out = findings(report);
    out.push_str(&summary(report));
    out
}

/// The findings alone, for output streamed file by file.
pub(super) fn findings(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        diagnostic(&mut out, d);
    }
    out
}

/// The closing line: what was found in how many files.
pub(super) fn summary(report: &Report) -> String {
    let mut out = String::new();
    let files = |n: usize| if n == 1 { "file" } else { "files" };
    let n = report.diagnostics.len();
    let checked = format!(
        "{} {} checked{}",
        report.files_checked,
        files(report.files_checked),
        match report.files_skipped {
            0 => String::new(),
            s => format!(", {s} skipped"),
        }
    );
    if n == 0 {
        let _ = writeln!(out, "No findings ({checked}).");
    } else {
        let with = report.files_with_findings();
        let findings = if n == 1 { "finding" } else { "findings" };
        let _ = writeln!(
            out,
            "Found {n} {findings} in {with} {} ({checked}).",
            files(with)
        );
    }
    out
}

fn diagnostic(out: &mut String, d: &Diagnostic) {
    let width = d.start.line.to_string().len();
    let gutter = " ".repeat(width);
    let _ = writeln!(
        out,
        "{}:{}:{}: {} {}",
        visible(&d.path),
        d.start.line,
        d.start.column,
        d.rule,
        visible(&d.message)
    );
    let line: Vec<char> = d.source_line.chars().collect();
    let start = d.start.column.saturating_sub(1).min(line.len());
    let end = if d.end.line == d.start.line {
        d.end.column.saturating_sub(1).clamp(start, line.len())
    } else {
        line.len()
    };
    let text = |chars: &[char]| visible(&chars.iter().collect::<String>()).into_owned();
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{} | {}", d.start.line, text(&line));
    // Tabs stay tabs under the line so the carets line up in any tab width.
    let lead: String = text(&line[..start])
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let original = text(&line[start..end]);
    let carets = "^".repeat(original.chars().count().max(1));
    let _ = writeln!(out, "{gutter} | {lead}{carets}");
    if let Some(fix) = &d.fix {
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(
            out,
            "{gutter} = fix: replace `{original}` with `{}`",
            visible(fix.replacement.trim())
        );
    }
    out.push('\n');
}

/// `s` with control characters (tabs aside) written as `\u{..}` escapes: a
/// file name or source line could otherwise move the cursor, recolour or
/// retitle the terminal the report is printed on.
fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(visible("a\tb"), "a\tb");
        assert_eq!(visible("x\u{1b}]0;owned\u{7}y"), "x\\u{1b}]0;owned\\u{7}y");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
    }
}
