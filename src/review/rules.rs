//! The rules' documentation (`rules.json`): what each finds, why it
//! matters, an example and its fix. One source for `nib rule`, the SARIF
//! rule metadata and `docs/rules.md`.

use std::fmt::Write;
use std::sync::LazyLock;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub name: String,
    /// One line, Markdown.
    pub summary: String,
    pub why: String,
    pub example: Example,
    /// The threshold each rule set (`python`, `rust`, `c-like`) reports
    /// this rule at when nobody chose one: calibrated on real code by
    /// bench/review_quality.py so that the defaults stay near one false
    /// finding per 1,000 lines.
    #[serde(default)]
    pub min_confidence: std::collections::BTreeMap<String, f64>,
}

/// Code with the bug, and the same code fixed.
#[derive(Debug, Deserialize)]
pub struct Example {
    pub language: String,
    pub before: String,
    pub after: String,
}

#[derive(Deserialize)]
struct File {
    rules: Vec<Rule>,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    serde_json::from_str::<File>(include_str!("rules.json"))
        .map(|f| f.rules)
        .expect("rules.json is valid (checked by a unit test)")
});

/// Where the docs page lives, for links from SARIF and the CLI.
pub const DOCS_URL: &str = "https://github.com/nib-dev/nib/blob/main/docs/rules.md";

/// The default threshold of `rule` in `rule_set` (the calibrated one, or
/// the review's general default).
pub fn default_threshold(rule: &str, rule_set: Option<&str>) -> f64 {
    rule_set
        .and_then(|set| get(rule)?.min_confidence.get(set).copied())
        .unwrap_or(crate::review::ReviewOptions::default().min_confidence)
}

pub fn all() -> &'static [Rule] {
    &RULES
}

/// A rule by name, with or without the `nib/` prefix.
pub fn get(name: &str) -> Option<&'static Rule> {
    let name = name.strip_prefix("nib/").unwrap_or(name);
    RULES.iter().find(|r| r.name == name)
}

impl Rule {
    pub fn id(&self) -> String {
        format!("nib/{}", self.name)
    }

    pub fn help_uri(&self) -> String {
        format!("{DOCS_URL}#{}", self.name)
    }

    /// The summary without Markdown's backticks, for plain-text fields.
    pub fn summary_text(&self) -> String {
        self.summary.replace('`', "")
    }

    /// The rule's section: what, why, example, fix. Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let e = &self.example;
        let _ = write!(
            out,
            "## {name}\n\n`nib/{name}`: {summary}.\n\n### Why it matters\n\n{why}\n\n\
             ### Example\n\n```{lang}\n{before}```\n\n### Fix\n\n```{lang}\n{after}```\n\n\
             nib offers the fix as a quick fix in the editor and in SARIF. A correct line \
             it flags can be kept with `nib: ignore[{name}]` in a comment on that line, or \
             the rule set aside with `--ignore {name}` or `ignore = [\"{name}\"]` in `nib.toml`.\n\n\
             {thresholds}.\n",
            name = self.name,
            summary = self.summary,
            why = self.why,
            lang = e.language,
            before = e.before,
            after = e.after,
            thresholds = self.thresholds_text(),
        );
        out
    }

    /// The default thresholds per rule set, as prose; above 1 is off.
    fn thresholds_text(&self) -> String {
        if self.min_confidence.is_empty() {
            return "Reported by default at confidence 0.9".into();
        }
        let (off, on): (Vec<_>, Vec<_>) = self.min_confidence.iter().partition(|(_, t)| **t > 1.0);
        let mut parts = Vec::new();
        if !on.is_empty() {
            let list: Vec<String> = on.iter().map(|(set, t)| format!("{t} ({set})")).collect();
            parts.push(format!(
                "Reported by default at confidence {}",
                list.join(", ")
            ));
        }
        if !off.is_empty() {
            let sets: Vec<&str> = off.iter().map(|(set, _)| set.as_str()).collect();
            parts.push(format!(
                "Off by default in {} (not scored; turn it on with `[rules.{}] min-confidence = 0.99` in `nib.toml`)",
                sets.join(", "),
                self.name
            ));
        }
        parts.join(". ")
    }
}

/// One line per rule, for `nib rule` and `nib check --help`.
pub fn summary_list() -> String {
    let width = all().iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in all() {
        let _ = writeln!(out, "  {:width$}  {}", r.name, r.summary_text());
    }
    out
}

/// docs/rules.md.
pub fn docs_page() -> String {
    let mut out = String::from(
        "# Review rules\n\n<!-- Generated from src/review/rules.json: \
         UPDATE_RULE_DOCS=1 cargo test --lib rules -->\n\n\
         Each rule is a class of interchangeable tokens. At every place one is \
         written (in code, not in strings or comments) the model scores the \
         others in its place; when it is sure enough that another belongs \
         there, nib reports a finding with that token as the fix.\n\n\
         | rule | finds |\n|---|---|\n",
    );
    for r in all() {
        let _ = writeln!(out, "| [`nib/{0}`](#{0}) | {1} |", r.name, r.summary);
    }
    for r in all() {
        out.push('\n');
        out.push_str(&r.markdown());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_documented_and_every_documented_rule_exists() {
        let documented: Vec<&str> = {
            let mut v: Vec<&str> = all().iter().map(|r| r.name.as_str()).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(documented, super::super::sites::rule_names());
        for r in all() {
            assert!(r.example.before != r.example.after, "{}", r.name);
            assert!(r.example.before.ends_with('\n') && r.example.after.ends_with('\n'));
        }
    }

    #[test]
    fn docs_page_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
        let page = docs_page();
        if std::env::var_os("UPDATE_RULE_DOCS").is_some() {
            std::fs::write(&path, &page).expect("write docs/rules.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == page,
            "docs/rules.md is stale: UPDATE_RULE_DOCS=1 cargo test --lib rules"
        );
    }
}
