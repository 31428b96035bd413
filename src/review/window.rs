//! The text a place's prompt holds around it: a prefix that starts at one of
//! a few anchor lines, and the head of the text after it.
//!
//! Anchors are why review is affordable. Consecutive places whose prefixes
//! start on the same line share their prompt's start, so the engine reuses
//! its keys and values and runs only the text between them; every move of
//! the start costs a whole prompt. Anchors lie about three quarters of the
//! budget apart (counted in tokens, line by line), so a prefix holds from about
//! a quarter to all of the budget and the start moves once per that much
//! text. Where a place's prefix starts is a function of the text and the
//! place alone, never of which other places are scored, so a review of a
//! few changed lines (`--diff`, the server's edits) scores them as a review
//! of the whole file does.

use crate::model::Tokenizer;

/// Generous bytes per token: text this long after a place holds more
/// tokens than the budget, so the rest need not be tokenized at all.
const BYTES_PER_TOKEN: usize = 8;

/// The step at which prefixes are cut inside a line too long for the budget.
const LONG_LINE_STEP: usize = 4096;

/// What a prefix-only model sees after a place, at most.
const REST_OF_LINE_BYTES: usize = 256;

/// Where the prefixes of a text's places start.
pub(super) struct Prefixes {
    line_starts: Vec<usize>,
    /// Tokens before each line (the lines tokenized one by one, which
    /// differs from the whole text's count only where tokens would span a
    /// line break), and one entry more for the end.
    tokens_before: Vec<usize>,
    /// The lines prefixes may start at, in order.
    anchors: Vec<usize>,
    /// Most tokens a prefix is planned to hold: a little under the budget,
    /// so the line-by-line count's error never makes the prompt builder cut.
    limit: usize,
    budget: usize,
}

impl Prefixes {
    /// Anchors for prefixes of at most `budget` tokens in `text`.
    pub(super) fn new(tokenizer: &Tokenizer, text: &str, budget: usize) -> Result<Self, String> {
        let line_starts = crate::lex::line_starts(text);
        let mut tokens_before = Vec::with_capacity(line_starts.len() + 1);
        tokens_before.push(0);
        let mut total = 0;
        for (i, &start) in line_starts.iter().enumerate() {
            let end = line_starts.get(i + 1).copied().unwrap_or(text.len());
            total += tokenizer.encode(&text[start..end])?.len();
            tokens_before.push(total);
        }
        let limit = (budget - budget / 16).max(1);
        let step = (limit - limit / 4).max(1);
        let mut anchors = vec![0];
        let mut at = 0;
        loop {
            let target = tokens_before[at] + step;
            let next = tokens_before[..line_starts.len()].partition_point(|&t| t < target);
            if next >= line_starts.len() || next <= at {
                break;
            }
            anchors.push(next);
            at = next;
        }
        Ok(Self {
            line_starts,
            tokens_before,
            anchors,
            limit,
            budget,
        })
    }

    /// Where the prefix of a place at byte `at` starts: the first anchor
    /// from which it fits the budget. Inside a line too long for the
    /// budget (minified code), the start is cut in that line, at a coarse
    /// step so that places close together still share it.
    pub(super) fn start(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        at: usize,
    ) -> Result<usize, String> {
        let line = self
            .line_starts
            .partition_point(|&s| s <= at)
            .saturating_sub(1);
        let line_start = self.line_starts[line];
        // So much of a line holds more tokens than the budget (see
        // BYTES_PER_TOKEN): no need to count them.
        let in_line = if at - line_start > self.budget * BYTES_PER_TOKEN {
            usize::MAX / 2
        } else {
            tokenizer.encode(&text[line_start..at])?.len()
        };
        let before = self.tokens_before[line] + in_line;
        let first = self
            .anchors
            .partition_point(|&a| self.tokens_before[a] + self.limit < before);
        match self.anchors.get(first) {
            // After a line of more than about a quarter of the budget, anchors
            // lie further apart than the budget: a place just past one would
            // see hardly any prefix (an eighth of the budget is the least an
            // ordinary anchor leaves, less the line that crosses it). It
            // takes the anchor before, and the prompt builder cuts that to
            // the budget (no sharing for such places).
            Some(&anchor) if anchor <= line => {
                let held = before - self.tokens_before[anchor];
                match first.checked_sub(1).map(|i| self.anchors[i]) {
                    Some(previous) if held < self.limit / 8 => Ok(self.line_starts[previous]),
                    _ => Ok(self.line_starts[anchor]),
                }
            }
            _ => Ok(long_line_start(text, at, self.budget).max(line_start)),
        }
    }
}

/// A start inside a very long line, rounded down to [`LONG_LINE_STEP`] so
/// the prefix holds at least `budget` tokens' worth of bytes and at most
/// [`LONG_LINE_STEP`] more.
fn long_line_start(text: &str, at: usize, budget: usize) -> usize {
    match at.checked_sub(budget * BYTES_PER_TOKEN) {
        // `limit` < `at`, a boundary, so the walk to the next boundary stops by `at`.
        Some(limit) => text.ceil_char_boundary(limit / LONG_LINE_STEP * LONG_LINE_STEP),
        None => 0,
    }
}

/// The start of `text`, whole lines, enough for `budget` tokens; cut
/// inside a line that runs on past twice that.
pub(super) fn suffix_head(text: &str, budget: usize) -> &str {
    let end = budget * BYTES_PER_TOKEN;
    if end >= text.len() {
        return text;
    }
    let end = text.ceil_char_boundary(end);
    let line_end = text[end..].find('\n').map(|i| end + i + 1);
    match line_end {
        Some(e) if e - end <= end => &text[..e],
        _ => &text[..text.ceil_char_boundary((2 * end).min(text.len()))],
    }
}

/// `text` up to and including its first newline, at most [`REST_OF_LINE_BYTES`].
pub(super) fn rest_of_line(text: &str) -> &str {
    let line = text.find('\n').map_or(text, |i| &text[..=i]);
    &line[..line.ceil_char_boundary(REST_OF_LINE_BYTES.min(line.len()))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
        Tokenizer::load(&dir).expect("the default model's tokenizer")
    }

    fn code(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("    value_{i} = compute(value_{}, {i}) + 1\n", i / 2))
            .collect()
    }

    #[test]
    fn prefixes_fit_the_budget_and_start_at_few_lines() {
        let tok = tokenizer();
        let text = code(600);
        let budget = 200;
        let prefixes = Prefixes::new(&tok, &text, budget).expect("anchors");
        let mut starts = std::collections::BTreeSet::new();
        let places: Vec<usize> = text.match_indices(" + ").map(|(i, _)| i + 1).collect();
        for &at in &places {
            let start = prefixes.start(&tok, &text, at).expect("start");
            assert!(
                start == 0 || text.as_bytes()[start - 1] == b'\n',
                "a line's start"
            );
            let held = tok.encode(&text[start..at]).expect("encode").len();
            assert!(held <= budget, "{held} tokens at {at}");
            // A quarter of the budget, less a line and the line-by-line
            // count's error.
            if start > 0 {
                assert!(held >= budget / 8, "only {held} tokens at {at}");
            }
            starts.insert(start);
        }
        let total = tok.encode(&text).expect("encode").len();
        // About one start per three quarters of a budget of text.
        assert!(
            starts.len() <= total / (budget / 2) + 1,
            "{} starts for {total} tokens",
            starts.len()
        );
        assert!(starts.len() >= 3);
    }

    #[test]
    fn a_place_just_after_a_long_line_still_sees_code_before_it() {
        let tok = tokenizer();
        let long = format!("    table = [{}]\n", "value_1 + 2, ".repeat(40));
        let text = format!("{}{long}{}", code(60), code(60));
        let budget = 200;
        assert!(tok.encode(&long).expect("encode").len() > budget / 4);
        let prefixes = Prefixes::new(&tok, &text, budget).expect("anchors");
        for (at, _) in text.match_indices(" + ") {
            let start = prefixes.start(&tok, &text, at + 1).expect("start");
            let held = tok.encode(&text[start..at + 1]).expect("encode").len();
            assert!(
                start == 0 || held >= budget / 8,
                "only {held} tokens at {at}"
            );
        }
    }

    #[test]
    fn a_place_s_prefix_does_not_depend_on_the_places_scored_before() {
        let tok = tokenizer();
        let text = code(300);
        let prefixes = Prefixes::new(&tok, &text, 128).expect("anchors");
        let at = text.len() * 2 / 3;
        let once = prefixes.start(&tok, &text, at).expect("start");
        for other in [10, text.len() - 5, at - 300] {
            prefixes.start(&tok, &text, other).expect("start");
        }
        assert_eq!(prefixes.start(&tok, &text, at).expect("start"), once);
    }

    #[test]
    fn one_very_long_line_gives_bounded_prompts_that_nearby_places_share() {
        let tok = tokenizer();
        // A minified file: one line of 200 KB, multi-byte characters included.
        let text: String = "é = a == b; ".repeat(16_000);
        let budget = 100;
        let prefixes = Prefixes::new(&tok, &text, budget).expect("anchors");
        let boundary = |at: usize| {
            (at..)
                .find(|&i| text.is_char_boundary(i))
                .expect("boundary")
        };
        let at = boundary(text.len() / 2 + 3);
        let start = prefixes.start(&tok, &text, at).expect("start");
        let len = at - start;
        assert!(
            len >= budget * BYTES_PER_TOKEN && len <= budget * BYTES_PER_TOKEN + LONG_LINE_STEP,
            "{len}"
        );
        assert!(text.is_char_boundary(start));
        let next = prefixes
            .start(&tok, &text, boundary(at + 20))
            .expect("start");
        // The same start, or the next step (give or take a character).
        assert!(next == start || next.abs_diff(start + LONG_LINE_STEP) < 4);
        let head = suffix_head(&text[at..], budget);
        assert!(
            head.len() <= 2 * budget * BYTES_PER_TOKEN + 4,
            "{}",
            head.len()
        );
        assert!(rest_of_line(&text[at..]).len() <= REST_OF_LINE_BYTES + 4);
        let lines: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let head = suffix_head(&lines, 2);
        assert!(head.ends_with('\n') && head.len() >= 16);
    }
}
