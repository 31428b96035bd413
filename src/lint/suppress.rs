//! Inline suppression comments, as ruff's `# noqa` and semgrep's
//! `nosemgrep`: `nib: ignore` in a comment silences every rule on its line,
//! `nib: ignore[rule, other]` only those. A comment line holding nothing
//! else covers the line below it too, for lines with no room for one.

use crate::lex::{Lang, code_ranges};

const MARKER: &str = "nib: ignore";

/// The suppressions of one text, by line.
pub struct Suppressions {
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Per line: `None` when nothing is suppressed there, `Some(empty)` for
    /// every rule, else the rules named.
    lines: Vec<Option<Vec<String>>>,
}

impl Suppressions {
    pub fn parse(text: &str, lang: Lang) -> Self {
        let line_starts = crate::lex::line_starts(text);
        let mut lines = vec![None; line_starts.len()];
        if text.contains(MARKER) {
            let code = code_ranges(text, lang);
            // Outside code, the text from the end of the last code range
            // is a comment when it opens with a comment's delimiter; the
            // comment's start, if so.
            let comment_start = |at: usize| {
                if code.iter().any(|r| r.contains(&at)) {
                    return None;
                }
                let gap = code
                    .iter()
                    .map(|r| r.end)
                    .filter(|&e| e <= at)
                    .max()
                    .unwrap_or(0);
                let rest = &text[gap..];
                let opens = match lang {
                    Lang::Hash => rest.starts_with('#'),
                    Lang::Rust | Lang::CLike => rest.starts_with("//") || rest.starts_with("/*"),
                };
                opens.then_some(gap)
            };
            for (at, _) in text.match_indices(MARKER) {
                let Some(start) = comment_start(at) else {
                    continue;
                };
                let after = &text[at + MARKER.len()..];
                // `nib: ignored for now` is prose, not the marker.
                if after.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '-') {
                    continue;
                }
                let line = line_starts.partition_point(|&s| s <= at) - 1;
                let rules = rules_after(after);
                // A comment alone on its line also covers the next one
                // (nothing before it, and no code after a `*/` on the line).
                let line_rest = &text[at..text[at..].find('\n').map_or(text.len(), |i| at + i)];
                let code_after = line_rest
                    .split_once("*/")
                    .is_some_and(|(_, after)| !after.trim().is_empty());
                let own_line = text[line_starts[line]..start].trim().is_empty() && !code_after;
                merge(&mut lines[line], &rules);
                if own_line && line + 1 < lines.len() {
                    merge(&mut lines[line + 1], &rules);
                }
            }
        }
        Self { line_starts, lines }
    }

    /// Whether a finding of `rule` starting at byte `at` is suppressed.
    pub fn covers(&self, at: usize, rule: &str) -> bool {
        let line = self
            .line_starts
            .partition_point(|&s| s <= at)
            .saturating_sub(1);
        let rule = rule.strip_prefix("nib/").unwrap_or(rule);
        match self.lines.get(line) {
            Some(Some(rules)) => rules.is_empty() || rules.iter().any(|r| r == rule),
            _ => false,
        }
    }
}

/// The rules of `[a, nib/b]` right after the marker; empty for all.
fn rules_after(rest: &str) -> Vec<String> {
    let Some(list) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
        return Vec::new();
    };
    list.0
        .split(',')
        .map(|r| r.trim().trim_start_matches("nib/").to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

fn merge(slot: &mut Option<Vec<String>>, rules: &[String]) {
    match slot {
        // Already every rule.
        Some(existing) if existing.is_empty() => {}
        Some(existing) if !rules.is_empty() => existing.extend(rules.iter().cloned()),
        _ => *slot = Some(rules.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(text: &str, lang: Lang, needle: &str, rule: &str) -> bool {
        let at = text.find(needle).expect("needle");
        Suppressions::parse(text, lang).covers(at, rule)
    }

    #[test]
    fn a_comment_on_the_line_silences_it() {
        let text = "if x == None:  # nib: ignore\n    y = a == b\n";
        assert!(covered(text, Lang::Hash, "==", "identity"));
        assert!(!covered(text, Lang::Hash, "a == b", "equality"));
    }

    #[test]
    fn named_rules_only_silence_those() {
        let text = "let ok = a < b; // nib: ignore[nib/comparison, range]\n";
        assert!(covered(text, Lang::CLike, "<", "comparison"));
        assert!(covered(text, Lang::CLike, "<", "nib/range"));
        assert!(!covered(text, Lang::CLike, "<", "equality"));
    }

    #[test]
    fn a_comment_line_covers_the_next_line() {
        let text = "# nib: ignore[off-by-one]\nfirst = items[1]\nsecond = items[1]\n";
        assert!(covered(text, Lang::Hash, "first", "off-by-one"));
        assert!(!covered(text, Lang::Hash, "second", "off-by-one"));
        // A trailing comment covers its own line only, even after a bracket.
        let text = "a = b + c  # nib: ignore\nd = e + f\n";
        assert!(!covered(text, Lang::Hash, "d =", "arithmetic"));
        let text = "f(\n)  # nib: ignore\nd = e + f\n";
        assert!(!covered(text, Lang::Hash, "d =", "arithmetic"));
        let text = "/* nib: ignore */ a == b;\nc == d;\n";
        assert!(covered(text, Lang::CLike, "a ==", "equality"));
        assert!(!covered(text, Lang::CLike, "c ==", "equality"));
    }

    #[test]
    fn prose_that_starts_like_the_marker_is_not_one() {
        let text = "x = a == b  # nib: ignored for now\n";
        assert!(!covered(text, Lang::Hash, "==", "equality"));
    }

    #[test]
    fn the_marker_in_a_string_is_code_not_a_comment() {
        let text = "msg = \"nib: ignore\"; ok = a == b\n";
        assert!(!covered(text, Lang::CLike, "a == b", "equality"));
    }
}
