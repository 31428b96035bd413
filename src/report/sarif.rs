//! SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>),
//! the format GitHub code scanning and other tools ingest.
//!
//! One run; `tool.driver.rules` lists the rules that have results with
//! what GitHub code scanning asks of them (`fullDescription`, `help` with
//! an example and the fix, `helpUri`), and each result points at its rule
//! by `ruleId` and `ruleIndex`, carries `partialFingerprints` (so alerts
//! follow code that moves) and the model's confidence as `rank` (0–100). Regions use
//! 1-based lines and columns with an exclusive `endColumn` (§3.30.5), which
//! is what [`super::Position`] holds. Artifact URIs are relative references
//! (`/`-separated, percent-encoded), resolved against the checkout.

use serde_json::{Value, json};

use super::{Diagnostic, Report};
use crate::review::rules;

pub(super) fn render(report: &Report) -> String {
    let rules: Vec<&str> = report.by_rule().into_keys().collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| result(d, rules.iter().position(|r| *r == d.rule)))
        .collect();
    let value = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "nib",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/nib-dev/nib",
                    "rules": rules.iter().map(|id| rule(id)).collect::<Vec<_>>(),
                }
            },
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

/// A `reportingDescriptor` from the rule's documentation.
fn rule(id: &str) -> Value {
    let name = id.trim_start_matches("nib/");
    let Some(rule) = rules::get(name) else {
        return json!({"id": id, "name": name, "shortDescription": {"text": name}});
    };
    let e = &rule.example;
    json!({
        "id": id,
        "name": name,
        "shortDescription": {"text": rule.summary_text()},
        "fullDescription": {"text": format!("{}. {}", rule.summary_text(), rule.why)},
        "help": {
            "text": format!(
                "{}\n\nExample:\n{}\nFix:\n{}",
                rule.why, e.before, e.after
            ),
            "markdown": rule.markdown(),
        },
        "helpUri": rule.help_uri(),
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["correctness"], "precision": "medium"},
    })
}

fn result(d: &Diagnostic, rule_index: Option<usize>) -> Value {
    let uri = uri(&d.path);
    let region = json!({
        "startLine": d.start.line,
        "startColumn": d.start.column,
        "endLine": d.end.line,
        "endColumn": d.end.column,
    });
    let mut result = json!({
        "ruleId": d.rule,
        "ruleIndex": rule_index,
        "level": d.severity.as_str(),
        "message": {"text": d.message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "region": region,
            }
        }],
        "partialFingerprints": {"nib/v1": d.fingerprint},
        "rank": (d.confidence * 1000.0).round() / 10.0,
        "properties": {"confidence": d.confidence},
    });
    if let Some(fix) = &d.fix {
        result["fixes"] = json!([{
            "description": {"text": format!("Replace with `{}`", fix.replacement.trim())},
            "artifactChanges": [{
                "artifactLocation": {"uri": uri},
                "replacements": [{
                    "deletedRegion": {
                        "startLine": fix.start.line,
                        "startColumn": fix.start.column,
                        "endLine": fix.end.line,
                        "endColumn": fix.end.column,
                    },
                    "insertedContent": {"text": fix.replacement},
                }],
            }],
        }]);
    }
    result
}

/// A URI for a path: a relative reference for a relative path (resolved
/// against the checkout by code scanning), a `file://` URI for an absolute
/// one; unreserved characters and `/` stay, the rest is percent-encoded.
fn uri(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(path.len() + 7);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uris_are_relative_references_or_file_uris() {
        assert_eq!(super::uri("./src/a b.py"), "src/a%20b.py");
        assert_eq!(super::uri("/tmp/é.rs"), "file:///tmp/%C3%A9.rs");
    }
}
