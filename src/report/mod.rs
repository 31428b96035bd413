//! Review results for people and CI: one [`Diagnostic`] model, rendered in
//! several formats, one file per format (each cites its specification).
//!
//! Positions are 1-based lines and columns, columns counted in characters
//! (Unicode scalar values); an end column is the column just after the last
//! character (exclusive), as SARIF defines it.

mod github;
mod json;
mod sarif;
mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::review::Finding;

/// Output formats of `nib check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: location, rule, message, the line with a caret underline, the fix.
    Text,
    /// nib's own schema (`version` 1), documented in [`json`].
    Json,
    /// SARIF 2.1.0, for code scanning (GitHub, GitLab, IDEs).
    Sarif,
    /// GitHub Actions workflow commands: annotations on the pull request.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Replace `start..end` with `replacement`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    pub replacement: String,
    pub start: Position,
    pub end: Position,
}

/// One finding in one file, in the shape every format renders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// As given on the command line or found by the walk, `/`-separated.
    pub path: String,
    /// `nib/<class>`, e.g. `nib/identity`.
    pub rule: String,
    pub message: String,
    pub severity: Severity,
    /// The model's probability for the fix, 0..=1.
    pub confidence: f64,
    pub start: Position,
    pub end: Position,
    /// The line the finding starts on, without its line break.
    pub source_line: String,
    pub fix: Option<Fix>,
}

impl Diagnostic {
    /// Converts a review finding in `text` (the file's contents) at `path`.
    pub fn from_finding(path: &str, text: &str, finding: &Finding) -> Self {
        let start = position(text, finding.start);
        let end = position(text, finding.end);
        let line_start = text[..finding.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[finding.start..]
            .find('\n')
            .map_or(text.len(), |i| finding.start + i);
        Self {
            path: path.replace('\\', "/"),
            rule: format!("nib/{}", finding.rule),
            message: finding.message.clone(),
            severity: Severity::Warning,
            confidence: finding.confidence,
            start,
            end,
            source_line: text[line_start..line_end].trim_end_matches('\r').to_owned(),
            fix: Some(Fix {
                replacement: finding.replacement.clone(),
                start,
                end,
            }),
        }
    }
}

/// 1-based line and character column of byte `offset` (on a char boundary).
fn position(text: &str, offset: usize) -> Position {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Everything one `nib check` run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The model that reviewed (its folder).
    pub model: String,
    pub files_checked: usize,
    /// Files left out with a warning (binary, too big, not UTF-8, unreadable).
    pub files_skipped: usize,
    /// Candidate places found and scored, over all files.
    pub sites: usize,
    pub sites_scored: usize,
    /// Sorted by path, then position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Findings per rule, in rule order.
    pub fn by_rule(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for d in &self.diagnostics {
            *counts.entry(d.rule.as_str()).or_insert(0) += 1;
        }
        counts
    }

    pub fn files_with_findings(&self) -> usize {
        let mut paths: Vec<&str> = self.diagnostics.iter().map(|d| d.path.as_str()).collect();
        paths.dedup();
        paths.len()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::render(self),
            Format::Json => json::render(self),
            Format::Sarif => sarif::render(self),
            Format::Github => github::render(self),
        }
    }
}

/// What a rule looks for, for SARIF's `rules[]` and help texts.
pub fn rule_description(rule: &str) -> &'static str {
    match rule.trim_start_matches("nib/") {
        "comparison" => "A comparison operator that looks swapped (< for <=, > for <)",
        "equality" => "An equality test that looks inverted (== for !=)",
        "identity" => "An equality test where an identity test belongs, or the reverse (== None)",
        "membership" => "A membership test that looks inverted (in for not in)",
        "boolean-operator" => "A boolean operator that looks swapped (and for or)",
        "boolean-literal" => "A boolean literal that looks inverted (True for False)",
        "arithmetic" => "An arithmetic operator that looks swapped (+ for -)",
        "range" => "A range bound that looks off (.. for ..=)",
        "off-by-one" => "A 0 or 1 that looks off by one",
        _ => "A token the model expects to be another member of its class",
    }
}

#[cfg(test)]
mod tests;
