//! Asking the model about each candidate place: how likely is what is
//! written there, against each alternative, given the code around it.

use std::path::Path;

use super::sites::{Site, sites_of};
use super::{Finding, Review, ReviewError, ReviewOptions};
use crate::engine::{CancelToken, Engine, EngineError};
use crate::prompt::{BudgetSplit, CompletionContext, FimOrder, build_prompt};

/// Tokens left free after a prompt for the longest continuation (a member
/// and the end-of-middle marker, or a member and the rest of its line).
const CONTINUATION_TOKENS: usize = 64;

/// Generous bytes per token: text this long before or after a place holds
/// more tokens than the budget, so the rest need not be tokenized at all.
const BYTES_PER_TOKEN: usize = 8;

/// Lines are dropped from the top in blocks of the prompt builder's size,
/// so consecutive places share their prompt's start and the engine reuses
/// its keys and values.
const LINE_BLOCK: usize = crate::prompt::PREFIX_CUT_LINES;

/// Reviews one file's text. `path` picks the language (by extension);
/// files of languages without rules produce an empty review.
///
/// Each place is scored with a fill-in-the-middle prompt (prefix, suffix,
/// middle: consecutive places share the prefix, so the engine's KV cache
/// makes them cheap); models without FIM markers score the member and the
/// rest of its line after the prefix alone.
pub fn review(
    engine: &mut dyn Engine,
    path: Option<&Path>,
    text: &str,
    options: &ReviewOptions,
    cancel: &CancelToken,
) -> Result<Review, ReviewError> {
    if super::looks_minified(text) {
        return Ok(Review::default());
    }
    let Some(mut sites) = path.and_then(|p| sites_of(p, text)) else {
        return Ok(Review::default());
    };
    if let Some(only) = &options.only {
        sites.retain(|s| only.iter().any(|r| r.start <= s.start && s.start < r.end));
    }
    if !options.unscored_rules.is_empty() {
        for site in &mut sites {
            site.alternatives
                .retain(|a| !options.unscored_rules.iter().any(|r| r == a.rule));
        }
        sites.retain(|s| !s.alternatives.is_empty());
    }
    let mut review = Review {
        sites: sites.len(),
        ..Review::default()
    };
    let budget = options
        .prompt_tokens
        .min(
            engine
                .info()
                .context_length
                .saturating_sub(CONTINUATION_TOKENS),
        )
        .max(16);
    // No other files: the prefix and suffix share the whole budget.
    let split = BudgetSplit {
        prefix: budget - budget / 4,
        suffix: budget / 4,
        snippets: 0,
    };
    let fim = engine.fim().cloned();
    let end_of_middle = fim.as_ref().and_then(|f| f.middle_stops().first().copied());
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    for site in sites.iter().take(options.max_sites) {
        if cancel.is_cancelled() {
            return Err(ReviewError::Cancelled);
        }
        let ctx = CompletionContext {
            prefix: text[prefix_start(text, &line_starts, site.start, split.prefix)..site.start]
                .to_owned(),
            suffix: suffix_head(&text[site.end..], split.suffix).to_owned(),
            path: path.map(|p| p.to_string_lossy().into_owned()),
            snippets: Vec::new(),
        };
        let tokenizer = engine.tokenizer();
        let prompt = build_prompt(tokenizer, fim.as_ref(), FimOrder::Psm, &ctx, split)
            .map_err(tokenizer_error)?;
        // Without an end-of-middle marker, the rest of the line is what
        // tells a fitting member from one that merely reads well so far.
        let tail = match end_of_middle {
            Some(_) => "",
            None => rest_of_line(&text[site.end..]),
        };
        let candidates = candidates(text, site);
        let continuations = candidates
            .iter()
            .map(|c| {
                let mut ids = tokenizer
                    .encode(&format!("{}{c}{tail}", prompt.healed))
                    .map_err(tokenizer_error)?;
                ids.truncate(CONTINUATION_TOKENS - 1);
                ids.extend(end_of_middle);
                Ok(ids)
            })
            .collect::<Result<Vec<_>, ReviewError>>()?;
        let scores = engine.score(&prompt.tokens, &continuations)?;
        review.scored += 1;
        tracing::trace!(at = site.start, member = site.member, ?scores, "scored");
        if let Some(finding) = judge(site, &candidates, &scores, options.min_confidence) {
            review.findings.push(finding);
        }
    }
    Ok(review)
}

fn tokenizer_error(e: String) -> ReviewError {
    EngineError::BadOutput(format!("tokenizer: {e}")).into()
}

/// The text as written, then each alternative as it would be written there.
fn candidates(text: &str, site: &Site) -> Vec<String> {
    std::iter::once(text[site.start..site.end].to_owned())
        .chain(site.alternatives.iter().map(|a| site.written(text, a.text)))
        .collect()
}

/// The best alternative when the model gives it at least `min_confidence`
/// of the probability shared by the original and the alternatives.
fn judge(
    site: &Site,
    candidates: &[String],
    scores: &[f64],
    min_confidence: f64,
) -> Option<Finding> {
    let probabilities = softmax(scores);
    let (best, &confidence) = probabilities
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if confidence.is_nan() || confidence < min_confidence {
        return None;
    }
    let alternative = site.alternatives.get(best - 1)?;
    let original = &candidates[0];
    Some(Finding {
        rule: alternative.rule.to_owned(),
        message: if alternative.text.is_empty() {
            format!(
                "`{}` here looks like a bug; the model expects it removed ({:.0}%)",
                site.member,
                confidence * 100.0
            )
        } else {
            format!(
                "`{original}` here looks like a bug; the model expects `{}` ({:.0}%)",
                alternative.text,
                confidence * 100.0
            )
        },
        confidence,
        start: site.start,
        end: site.end,
        original: original.clone(),
        replacement: candidates[best].clone(),
    })
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Where the prefix text of a place at `at` starts: enough lines for
/// `budget` tokens, dropped from the top in whole blocks of [`LINE_BLOCK`]
/// lines counted from the file's start, so the prompt builder's own cut
/// (also in blocks) lands on the same line for nearby places.
/// On very long lines (minified code) the start is cut inside the line,
/// at a coarse step so that places close together still share it: the
/// text tokenized per place stays bounded whatever the line's length.
fn prefix_start(text: &str, line_starts: &[usize], at: usize, budget: usize) -> usize {
    let want = budget * BYTES_PER_TOKEN;
    let Some(limit) = at.checked_sub(want) else {
        return 0;
    };
    let lines_before_limit = line_starts.partition_point(|&s| s <= limit);
    let block = lines_before_limit.saturating_sub(1) / LINE_BLOCK * LINE_BLOCK;
    let start = line_starts[block];
    if at - start <= want + LONG_LINE_STEP {
        return start;
    }
    // Rounded down, so the prefix holds at least `want` bytes and at most
    // `want + LONG_LINE_STEP`; `limit` < `at`, a boundary, so the walk to
    // the next boundary stops by `at`.
    ceil_boundary(text, limit / LONG_LINE_STEP * LONG_LINE_STEP)
}

/// The step at which prefixes are cut inside very long lines.
const LONG_LINE_STEP: usize = 4096;

/// The start of `text`, whole lines, enough for `budget` tokens; cut
/// inside a line that runs on past twice that.
fn suffix_head(text: &str, budget: usize) -> &str {
    let end = budget * BYTES_PER_TOKEN;
    if end >= text.len() {
        return text;
    }
    let end = ceil_boundary(text, end);
    let line_end = text[end..].find('\n').map(|i| end + i + 1);
    match line_end {
        Some(e) if e - end <= end => &text[..e],
        _ => &text[..ceil_boundary(text, (2 * end).min(text.len()))],
    }
}

/// `text` up to and including its first newline, at most [`REST_OF_LINE_BYTES`].
fn rest_of_line(text: &str) -> &str {
    let line = text.find('\n').map_or(text, |i| &text[..=i]);
    &line[..ceil_boundary(line, REST_OF_LINE_BYTES.min(line.len()))]
}

/// What a prefix-only model sees after a place, at most.
const REST_OF_LINE_BYTES: usize = 256;

/// The first char boundary of `text` at or after `at`, at most its length.
fn ceil_boundary(text: &str, at: usize) -> usize {
    (at.min(text.len())..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::sites::language_of;

    fn site(text: &str) -> Site {
        let lang = language_of(Path::new("a.py")).expect("python");
        lang.sites("python", text).remove(0)
    }

    #[test]
    fn words_get_spaces_between_identifiers() {
        let text = "x==None";
        let s = site(text);
        assert_eq!(candidates(text, &s), ["==", "!=", " is "]);
        let text = "x == None";
        assert_eq!(candidates(text, &site(text)), ["==", "!=", "is"]);
    }

    #[test]
    fn the_likeliest_alternative_wins_when_sure_enough() {
        let text = "x == None";
        let s = site(text);
        let c = candidates(text, &s);
        // Original, `!=`, `is`.
        let scores = [-5.0, -9.0, -2.0];
        let f = judge(&s, &c, &scores, 0.8).expect("a finding");
        assert_eq!(
            (f.rule.as_str(), f.replacement.as_str()),
            ("identity", "is")
        );
        assert!((f.confidence - softmax(&scores)[2]).abs() < 1e-12);
        assert_eq!(
            f.message,
            "`==` here looks like a bug; the model expects `is` (95%)"
        );
        assert!(judge(&s, &c, &scores, 0.99).is_none());
        assert!(judge(&s, &c, &[-1.0, -9.0, -2.0], 0.5).is_none());
    }

    #[test]
    fn prefix_starts_move_in_blocks_of_lines() {
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        assert_eq!(prefix_start(&text, &starts, 50, 10), 0);
        let a = prefix_start(&text, &starts, 900, 10);
        let b = prefix_start(&text, &starts, 905, 10);
        assert_eq!(a, b);
        assert!(
            a > 0
                && 900 - a >= 80
                && starts.iter().position(|&s| s == a).expect("a line") % 16 == 0
        );
        let head = suffix_head(&text, 2);
        assert!(head.ends_with('\n') && head.len() >= 16);
    }

    #[test]
    fn one_very_long_line_gives_bounded_prompts_that_nearby_places_share() {
        // A minified file: one line of 1 MB, multi-byte characters included.
        let text: String = "é = a == b; ".repeat(80_000);
        let starts = [0];
        let budget = 100;
        let at = text.len() / 2 + 3;
        let at = (at..)
            .find(|&i| text.is_char_boundary(i))
            .expect("boundary");
        let start = prefix_start(&text, &starts, at, budget);
        let len = at - start;
        assert!(
            len >= budget * BYTES_PER_TOKEN && len <= budget * BYTES_PER_TOKEN + LONG_LINE_STEP,
            "{len}"
        );
        assert!(text.is_char_boundary(start));
        let near = (at + 20..)
            .find(|&i| text.is_char_boundary(i))
            .expect("boundary");
        let next = prefix_start(&text, &starts, near, budget);
        // The same start, or the next step (give or take a character).
        assert!(next == start || next.abs_diff(start + LONG_LINE_STEP) < 4);
        let head = suffix_head(&text[at..], budget);
        assert!(
            head.len() <= 2 * budget * BYTES_PER_TOKEN + 4,
            "{}",
            head.len()
        );
        assert!(rest_of_line(&text[at..]).len() <= REST_OF_LINE_BYTES + 4);
    }
}
