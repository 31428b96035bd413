//! The human format, after ruff's: `path:line:col: rule message`, the line
//! with a caret underline, the fix; a summary line at the end.

use std::fmt::Write;

use super::{Diagnostic, Report};

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        diagnostic(&mut out, d);
    }
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
        d.path, d.start.line, d.start.column, d.rule, d.message
    );
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{} | {}", d.start.line, d.source_line);
    // Tabs stay tabs under the line so the carets line up in any tab width.
    let lead: String = d
        .source_line
        .chars()
        .take(d.start.column - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let line_chars = d.source_line.chars().count();
    let end_column = if d.end.line == d.start.line {
        d.end.column
    } else {
        line_chars + 1
    };
    let carets = "^".repeat(end_column.saturating_sub(d.start.column).max(1));
    let _ = writeln!(out, "{gutter} | {lead}{carets}");
    if let Some(fix) = &d.fix {
        let original: String = d
            .source_line
            .chars()
            .skip(d.start.column - 1)
            .take(end_column.saturating_sub(d.start.column))
            .collect();
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(
            out,
            "{gutter} = fix: replace `{original}` with `{}`",
            fix.replacement.trim()
        );
    }
    out.push('\n');
}
