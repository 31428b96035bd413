//! GitLab Code Quality (<https://docs.gitlab.com/ci/testing/code_quality/>):
//! a JSON array of issues a merge request widget shows. `fingerprint`
//! tells GitLab which issues are the same across pipelines.

use serde_json::{Value, json};

use super::{Report, Severity};

pub(super) fn render(report: &Report) -> String {
    let issues: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "description": d.message,
                "check_name": d.rule,
                "fingerprint": d.fingerprint,
                "severity": match d.severity {
                    Severity::Warning => "minor",
                    Severity::Error => "major",
                },
                "location": {
                    "path": d.path,
                    "lines": {"begin": d.start.line, "end": d.end.line},
                },
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&issues).unwrap_or_default();
    out.push('\n');
    out
}
