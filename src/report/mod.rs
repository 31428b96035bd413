//! Review results for people and CI: one [`Diagnostic`] model, rendered in
//! several formats, one file per format (each cites its specification).
//!
//! Positions are 1-based lines and columns, columns counted in characters
//! (Unicode scalar values); an end column is the column just after the last
//! character (exclusive), as SARIF defines it.

mod github;
mod gitlab;
mod json;
mod junit;
mod rdjson;
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
    /// nib's own schema (`version` 1), documented in src/report/json.rs.
    Json,
    /// SARIF 2.1.0, for code scanning (GitHub, GitLab, IDEs).
    Sarif,
    /// GitHub Actions workflow commands: annotations on the pull request.
    Github,
    /// reviewdog's rdjson, with suggestions.
    Rdjson,
    /// GitLab Code Quality, for merge request widgets.
    Gitlab,
    /// JUnit XML, for CI systems' test reports.
    Junit,
}

/// How much a finding matters; `--fail-level` and configuration files
/// use these names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Shown, and fails the run at the default --fail-level.
    Warning,
    /// Fails the run at either --fail-level.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
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
    /// Stable across commits that move the code: a hash of the path, rule,
    /// line text (trimmed), original and replacement, and which occurrence
    /// of those in the file this is. Baselines and SARIF's
    /// `partialFingerprints` use it.
    pub fingerprint: String,
}

impl Diagnostic {
    /// Converts a review finding in `text` (the file's contents) at `path`.
    /// The fingerprint is left empty: [`Report::add_file`] sets it.
    pub fn from_finding(path: &str, text: &str, finding: &Finding, severity: Severity) -> Self {
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
            severity,
            confidence: finding.confidence,
            start,
            end,
            source_line: text[line_start..line_end].trim_end_matches('\r').to_owned(),
            fix: Some(Fix {
                replacement: finding.replacement.clone(),
                start,
                end,
            }),
            fingerprint: String::new(),
        }
    }

    /// The hash of what identifies the finding apart from where it is.
    fn identity(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let replacement = self.fix.as_ref().map_or("", |f| f.replacement.as_str());
        let start = self.start.column.saturating_sub(1);
        let original: String = self
            .source_line
            .chars()
            .skip(start)
            .take(self.end.column.saturating_sub(self.start.column))
            .collect();
        for part in [
            self.path.as_str(),
            self.rule.as_str(),
            self.source_line.trim(),
            original.as_str(),
            replacement,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
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
    /// Adds one file's findings, in text order, with their fingerprints.
    pub fn add_file(&mut self, mut diagnostics: Vec<Diagnostic>) {
        use sha2::Digest;
        let mut seen: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        for d in &mut diagnostics {
            let identity = d.identity();
            let n = seen.entry(identity).or_insert(0);
            let mut h = sha2::Sha256::new();
            h.update(identity);
            h.update(n.to_le_bytes());
            *n += 1;
            let digest = h.finalize();
            d.fingerprint = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        }
        self.diagnostics.extend(diagnostics);
    }

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

    /// The text format's findings without its summary line.
    pub fn render_text_findings(&self) -> String {
        text::findings(self)
    }

    /// The text format's summary line alone.
    pub fn render_text_summary(&self) -> String {
        text::summary(self)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::render(self),
            Format::Json => json::render(self),
            Format::Sarif => sarif::render(self),
            Format::Github => github::render(self),
            Format::Rdjson => rdjson::render(self),
            Format::Gitlab => gitlab::render(self),
            Format::Junit => junit::render(self),
        }
    }
}

#[cfg(test)]
mod tests;
