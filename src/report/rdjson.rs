//! reviewdog's Diagnostic Format (rdjson,
//! <https://github.com/reviewdog/reviewdog/tree/master/proto/rdf>), for
//! `reviewdog -f=rdjson`: suggestions become pull-request suggestions.
//!
//! rdjson columns are 1-based and count UTF-8 bytes, so character columns
//! are converted on the finding's line.

use serde_json::{Value, json};

use super::{Diagnostic, Position, Report, Severity};
use crate::review::rules;

pub(super) fn render(report: &Report) -> String {
    let diagnostics: Vec<Value> = report.diagnostics.iter().map(diagnostic).collect();
    let value = json!({
        "source": {"name": "nib", "url": rules::DOCS_URL},
        "diagnostics": diagnostics,
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

fn diagnostic(d: &Diagnostic) -> Value {
    let range = json!({
        "start": position(d, d.start),
        "end": position(d, d.end),
    });
    let mut value = json!({
        "message": d.message,
        "location": {"path": d.path, "range": range},
        "severity": match d.severity {
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        },
        "source": {"name": "nib"},
        "code": {
            "value": d.rule,
            "url": rules::get(&d.rule).map(rules::Rule::help_uri),
        },
    });
    if let Some(fix) = &d.fix {
        value["suggestions"] = json!([{"range": range, "text": fix.replacement}]);
    }
    value
}

/// A position on the finding's line with its column in UTF-8 bytes.
fn position(d: &Diagnostic, p: Position) -> Value {
    let column = if p.line == d.start.line {
        d.source_line
            .chars()
            .take(p.column.saturating_sub(1))
            .map(char::len_utf8)
            .sum::<usize>()
            + 1
    } else {
        p.column
    };
    json!({"line": p.line, "column": column})
}
