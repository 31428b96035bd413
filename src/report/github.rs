//! GitHub Actions workflow commands, which the runner turns into
//! annotations on the pull request:
//! <https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands#setting-a-warning-message>
//!
//! `::warning file=F,line=L,col=C,endLine=L,endColumn=C,title=T::MESSAGE`.
//! The message escapes `%`, `\r` and `\n`; property values also `:` and `,`
//! (the runner's own escaping rules, from actions/toolkit's command.ts).

use std::fmt::Write;

use super::Report;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        // Workflow commands are named like nib's severities.
        let level = d.severity.as_str();
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            property(&d.path),
            d.start.line,
            d.start.column,
            d.end.line,
            d.end.column,
            property(&d.rule),
            data(&d.message),
        );
    }
    out
}

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}
