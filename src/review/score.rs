//! Asking the model about each candidate place: how likely is what is
//! written there, against each alternative, given the code around it.

use std::path::Path;

use super::sites::{Site, sites_of};
use super::window::{Prefixes, rest_of_line, suffix_head};
use super::{Finding, Review, ReviewError, ReviewOptions};
use crate::engine::{CancelToken, Engine, EngineError};
use crate::prompt::{BudgetSplit, CompletionContext, FimOrder, build_prompt};

/// Tokens left free after a prompt for the longest continuation (a member
/// and the end-of-middle marker, or a member and the rest of its line).
const CONTINUATION_TOKENS: usize = 64;

/// Tokens of text after a place in its prompt: a few lines. The prefix
/// gets the rest of the budget; what decides a member is mostly before it
/// and on its own line, and every suffix token is run anew for each place.
const SUFFIX_TOKENS: usize = 32;

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
    if sites.is_empty() {
        return Ok(review);
    }
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
    let suffix = SUFFIX_TOKENS.min(budget / 4);
    let split = BudgetSplit {
        prefix: budget - suffix,
        suffix,
        snippets: 0,
    };
    let fim = engine.fim().cloned();
    let end_of_middle = fim.as_ref().and_then(|f| f.middle_stops().first().copied());
    // Without FIM markers the prompt builder gives the prefix the whole budget.
    let prefix_budget = if fim.is_some() { split.prefix } else { budget };
    let prefixes =
        Prefixes::new(engine.tokenizer(), text, prefix_budget).map_err(tokenizer_error)?;
    let margin = winning_margin(options.min_confidence);
    for site in sites.iter().take(options.max_sites) {
        if cancel.is_cancelled() {
            return Err(ReviewError::Cancelled);
        }
        let tokenizer = engine.tokenizer();
        let prefix_start = prefixes
            .start(tokenizer, text, site.start)
            .map_err(tokenizer_error)?;
        let ctx = CompletionContext {
            prefix: text[prefix_start..site.start].to_owned(),
            suffix: suffix_head(&text[site.end..], split.suffix).to_owned(),
            path: path.map(|p| p.to_string_lossy().into_owned()),
            snippets: Vec::new(),
        };
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
        review.scored += 1;
        let scores = match margin {
            Some(margin) => {
                match engine.score_above_first(&prompt.tokens, &continuations, margin)? {
                    Some(scores) => scores,
                    // No alternative can reach `min_confidence`.
                    None => continue,
                }
            }
            None => engine.score(&prompt.tokens, &continuations)?,
        };
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

/// How far above the original's score an alternative's must be for it to
/// take `min_confidence` of the probability (with the original alone
/// beside it; more candidates only lower its share): the log-odds of
/// `min_confidence`. `None` where every or no score passes.
fn winning_margin(min_confidence: f64) -> Option<f64> {
    (min_confidence > 0.0 && min_confidence < 1.0)
        .then(|| (min_confidence / (1.0 - min_confidence)).ln())
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
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
}
