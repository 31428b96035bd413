//! Every report format on findings over any text (file names included):
//! no panic, and the JSON and SARIF outputs parse as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nib::report::{Diagnostic, Format, Report, Severity};
use nib::review::Finding;

fn boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let (path, body) = text.split_once('\n').unwrap_or(("a.py", &text));
    let mut diagnostics = Vec::new();
    for (i, pair) in data.chunks(2).take(8).enumerate() {
        let start = boundary(body, pair[0] as usize * 7 + i);
        let end = boundary(body, start + pair.get(1).map_or(1, |&b| b as usize % 5));
        let finding = Finding {
            rule: ["identity", "comparison", "x\u{1b}[31m"][i % 3].to_owned(),
            message: format!("`{}` here \u{7}", &body[start..end]),
            confidence: f64::from(pair[0]) / 255.0,
            start,
            end,
            original: body[start..end].to_owned(),
            replacement: "is".to_owned(),
        };
        let severity = [Severity::Warning, Severity::Error][i % 2];
        diagnostics.push(Diagnostic::from_finding(path, body, &finding, severity));
    }
    let mut report = Report {
        model: path.to_owned(),
        files_checked: 1,
        files_skipped: 0,
        sites: diagnostics.len(),
        sites_scored: diagnostics.len(),
        diagnostics: Vec::new(),
    };
    report.add_file(diagnostics);
    for format in [
        Format::Text,
        Format::Json,
        Format::Sarif,
        Format::Github,
        Format::Rdjson,
        Format::Gitlab,
        Format::Junit,
    ] {
        let out = report.render(format);
        if matches!(
            format,
            Format::Json | Format::Sarif | Format::Rdjson | Format::Gitlab
        ) {
            serde_json::from_str::<serde_json::Value>(&out).expect("valid JSON");
        }
    }
});
