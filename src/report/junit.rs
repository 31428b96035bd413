//! JUnit XML, which most CI systems show as test results: one test suite
//! per file with findings, one failed test case per finding; a run without
//! findings is one passing test case.

use std::fmt::Write;

use super::Report;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let n = report.diagnostics.len();
    let _ = writeln!(
        out,
        "<testsuites name=\"nib check\" tests=\"{}\" failures=\"{n}\">",
        n.max(1)
    );
    if n == 0 {
        let _ = writeln!(
            out,
            "  <testsuite name=\"nib check\" tests=\"1\" failures=\"0\">\n    \
             <testcase name=\"no findings\" classname=\"nib\"/>\n  </testsuite>"
        );
    }
    let mut rest = report.diagnostics.as_slice();
    while let Some(first) = rest.first() {
        let count = rest.iter().take_while(|d| d.path == first.path).count();
        let (file, tail) = rest.split_at(count);
        rest = tail;
        let path = escape(&first.path);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{path}\" tests=\"{count}\" failures=\"{count}\">"
        );
        for d in file {
            let _ = writeln!(
                out,
                "    <testcase name=\"{rule} at {line}:{column}\" classname=\"{path}\" \
                 file=\"{path}\" line=\"{line}\">\n      \
                 <failure message=\"{message}\" type=\"{rule}\">{path}:{line}:{column}: {message}</failure>\n    \
                 </testcase>",
                rule = escape(&d.rule),
                line = d.start.line,
                column = d.start.column,
                message = escape(&d.message),
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text for an XML attribute or element; characters XML 1.0 cannot hold
/// at all (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            super::escape("a<b & \"c\"\u{1b}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }
}
