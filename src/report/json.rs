//! nib's JSON output, a stable wire format:
//!
//! ```json
//! {
//!   "version": 1,
//!   "model": "/path/to/model",
//!   "files_checked": 3,
//!   "findings": [
//!     {
//!       "path": "src/app.py",
//!       "rule": "nib/identity",
//!       "message": "`==` here looks like a bug; the model expects `is` (93%)",
//!       "severity": "warning",
//!       "confidence": 0.93,
//!       "start": {"line": 2, "column": 10},
//!       "end": {"line": 2, "column": 12},
//!       "source_line": "    if x == None:",
//!       "fix": {"replacement": "is", "start": {...}, "end": {...}},
//!       "fingerprint": "3f2a9c0d41b7e655"
//!     }
//!   ],
//!   "summary": {
//!     "findings": 1, "files_with_findings": 1, "files_skipped": 0,
//!     "sites": 40, "sites_scored": 40, "by_rule": {"nib/identity": 1}
//!   }
//! }
//! ```
//!
//! Lines and columns are 1-based, columns in characters, `end` exclusive;
//! `fix` may be `null`; `severity` is `warning` or `error`; `fingerprint`
//! stays the same while the finding's line text does (baselines use it). New keys may be added in version 1; removing or
//! changing the meaning of one bumps `version`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Diagnostic, Report};

/// Structs rather than `json!`, so keys keep the documented order.
#[derive(Serialize)]
struct Output<'a> {
    version: u32,
    model: &'a str,
    files_checked: usize,
    findings: &'a [Diagnostic],
    summary: Summary<'a>,
}

#[derive(Serialize)]
struct Summary<'a> {
    findings: usize,
    files_with_findings: usize,
    files_skipped: usize,
    sites: usize,
    sites_scored: usize,
    by_rule: BTreeMap<&'a str, usize>,
}

pub(super) fn render(report: &Report) -> String {
    let output = Output {
        version: 1,
        model: &report.model,
        files_checked: report.files_checked,
        findings: &report.diagnostics,
        summary: Summary {
            findings: report.diagnostics.len(),
            files_with_findings: report.files_with_findings(),
            files_skipped: report.files_skipped,
            sites: report.sites,
            sites_scored: report.sites_scored,
            by_rule: report.by_rule(),
        },
    };
    let mut out = serde_json::to_string_pretty(&output).unwrap_or_default();
    out.push('\n');
    out
}
