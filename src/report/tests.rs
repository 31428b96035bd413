//! Every format over the same findings (built directly, no model).

use super::*;
use crate::review::Finding;

fn finding(text: &str, at: &str, rule: &str, replacement: &str, confidence: f64) -> Finding {
    let start = text.find(at).expect("text holds the original");
    Finding {
        rule: rule.into(),
        message: format!(
            "`{at}` here looks like a bug; the model expects `{}` ({:.0}%)",
            replacement.trim(),
            confidence * 100.0
        ),
        confidence,
        start,
        end: start + at.len(),
        original: at.into(),
        replacement: replacement.into(),
    }
}

/// Two files: a Python finding, and a Rust one after a tab and non-ASCII
/// text on a path with a space and a comma (escaping in every format).
fn report() -> Report {
    let py = "def check(x):\n    if x == None:\n        return 0\n    return x\n";
    let rs = "fn f(v: &[u8]) -> bool {\n\tlet é = \"ü\"; v.len() < 0\n}\n";
    let mut report = Report {
        model: "models/default".into(),
        files_checked: 3,
        files_skipped: 1,
        sites: 12,
        sites_scored: 12,
        diagnostics: Vec::new(),
    };
    report.add_file(vec![Diagnostic::from_finding(
        "src/check.py",
        py,
        &finding(py, "==", "identity", "is", 0.93),
        Severity::Warning,
    )]);
    report.add_file(vec![Diagnostic::from_finding(
        "src/odd dir,1/lib.rs",
        rs,
        &finding(rs, "<", "comparison", ">", 0.8125),
        Severity::Error,
    )]);
    report
}

#[test]
fn positions_count_characters_from_one() {
    let r = report();
    let rs = &r.diagnostics[1];
    // Tab, `let é = "ü"; v.len() ` before the `<`: column in characters.
    assert_eq!((rs.start.line, rs.start.column, rs.end.column), (2, 23, 24));
    assert_eq!(rs.source_line, "\tlet é = \"ü\"; v.len() < 0");
    let py = &r.diagnostics[0];
    assert_eq!((py.start.line, py.start.column, py.end.column), (2, 10, 12));
}

#[test]
fn text_format() {
    insta::assert_snapshot!(report().render(Format::Text));
}

#[test]
fn text_format_without_findings() {
    let r = Report {
        diagnostics: Vec::new(),
        ..report()
    };
    insta::assert_snapshot!(r.render(Format::Text));
}

#[test]
fn json_format() {
    let out = report().render(Format::Json);
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(value["version"], 1);
    insta::assert_snapshot!(out);
}

#[test]
fn sarif_format() {
    let out = report()
        .render(Format::Sarif)
        .replace(env!("CARGO_PKG_VERSION"), "[version]");
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(value["version"], "2.1.0");
    insta::assert_snapshot!(out);
}

#[test]
fn github_format() {
    insta::assert_snapshot!(report().render(Format::Github));
}

#[test]
fn rdjson_format() {
    let out = report().render(Format::Rdjson);
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    // `<` after a tab, `let é = "ü"; v.len() `: 22 characters, 24 bytes.
    assert_eq!(
        value["diagnostics"][1]["location"]["range"]["start"]["column"],
        25
    );
    insta::assert_snapshot!(out);
}

#[test]
fn gitlab_format() {
    let out = report().render(Format::Gitlab);
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(value.as_array().map(Vec::len), Some(2));
    insta::assert_snapshot!(out);
}

#[test]
fn junit_format() {
    insta::assert_snapshot!(report().render(Format::Junit));
}

#[test]
fn fingerprints_ignore_line_numbers_and_count_repeats() {
    let a = "x = 1\nif y == None:\n    pass\n";
    let b = "\n\nx = 1\nif y == None:\n    pass\nif y == None:\n    pass\n";
    let prints = |text: &str| {
        let mut r = Report::default();
        let mut findings = Vec::new();
        let mut from = 0;
        while let Some(i) = text[from..].find("==") {
            let start = from + i;
            findings.push(Diagnostic::from_finding(
                "a.py",
                text,
                &Finding {
                    rule: "identity".into(),
                    message: String::new(),
                    confidence: 0.9,
                    start,
                    end: start + 2,
                    original: "==".into(),
                    replacement: "is".into(),
                },
                Severity::Warning,
            ));
            from = start + 2;
        }
        r.add_file(findings);
        r.diagnostics
            .into_iter()
            .map(|d| d.fingerprint)
            .collect::<Vec<_>>()
    };
    let (a, b) = (prints(a), prints(b));
    assert_eq!(a[0], b[0], "moved down two lines: same finding");
    assert_ne!(b[0], b[1], "the second occurrence is another finding");
    assert_eq!(a[0].len(), 16);
}
