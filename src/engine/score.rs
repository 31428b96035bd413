//! Scoring for [`OrtEngine`]: the log-probability of continuations of a
//! prompt (what review ranks members by). One prefill serves all the
//! continuations; each then runs alone and is cut off the cache again,
//! unless its first token already shows it cannot matter.

use super::EngineError;
use super::kv_cache::KvCache;
use super::ort::OrtEngine;

impl OrtEngine {
    /// The body of [`super::Engine::score`] (`margin` `None`: always every
    /// score) and of [`super::Engine::score_above_first`].
    pub(super) fn score_continuations(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        margin: Option<f64>,
    ) -> Result<Option<Vec<f64>>, EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        self.check_tokens(prompt.iter().chain(continuations.iter().flatten()))?;
        let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
        let context = self.info.context_length;
        if prompt.len() + longest > context {
            return Err(EngineError::PromptTooLong {
                prompt: prompt.len() + longest,
                context,
            });
        }
        let mut cache = self.cache_for(prompt)?;
        let result = self.score_all(&mut cache, prompt, continuations, margin);
        self.cache.put(cache);
        result
    }

    fn score_all(
        &mut self,
        cache: &mut KvCache,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        margin: Option<f64>,
    ) -> Result<Option<Vec<f64>>, EngineError> {
        let done = cache.len();
        let first = self.prefill(cache, &prompt[done..])?;
        let first_norm = log_sum_exp(&first);
        // A continuation scores at most its first token's log-probability
        // (the others add log-probabilities, none above 0 but for f32
        // rounding, which the slack covers).
        let bounds = continuations
            .iter()
            .map(|c| match c.first() {
                Some(&head) => Ok(f64::from(logit(&first, head)? - first_norm)),
                None => Err(EngineError::EmptyPrompt),
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let mut scores = Vec::with_capacity(continuations.len());
        if let (Some(margin), Some(reference)) = (margin, continuations.first()) {
            let reference = self.score_rest(cache, prompt.len(), &first, bounds[0], reference)?;
            if bounds
                .iter()
                .skip(1)
                .all(|&b| b + BOUND_SLACK < reference + margin)
            {
                return Ok(None);
            }
            scores.push(reference);
        }
        for (continuation, &bound) in continuations.iter().zip(&bounds).skip(scores.len()) {
            scores.push(self.score_rest(cache, prompt.len(), &first, bound, continuation)?);
        }
        if margin.is_some_and(|m| !super::any_above_first(&scores, m)) {
            return Ok(None);
        }
        Ok(Some(scores))
    }

    /// A continuation's score, given its first token's (`head_score`, from
    /// the prompt's last logits `first`): its other tokens run after the
    /// prompt, and are then cut off the cache again.
    fn score_rest(
        &mut self,
        cache: &mut KvCache,
        prompt_len: usize,
        first: &[f32],
        head_score: f64,
        continuation: &[u32],
    ) -> Result<f64, EngineError> {
        let mut total = head_score;
        if continuation.len() > 1 {
            // Each token but the last predicts the next one.
            let fed = &continuation[..continuation.len() - 1];
            let rows = self.step_rows(cache, fed, fed.len())?;
            for (row, &next) in rows.chunks_exact(first.len()).zip(&continuation[1..]) {
                total += f64::from(logit(row, next)? - log_sum_exp(row));
            }
            cache.truncate(prompt_len, &self.signature)?;
        }
        Ok(total)
    }
}

/// How far f32 rounding may lift a sum of log-probabilities above its
/// first term: far more than it can, far less than any margin that matters.
const BOUND_SLACK: f64 = 1e-3;

fn logit(logits: &[f32], id: u32) -> Result<f32, EngineError> {
    logits
        .get(id as usize)
        .copied()
        .ok_or(EngineError::TokenOutOfRange {
            id,
            vocab: logits.len(),
        })
}

/// `ln Σ exp(l)`: a token's log-probability is its logit minus this.
fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    max + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_matches_the_direct_sum() {
        let logits = [1.5f32, -2.0, 0.25, 3.0];
        let direct = logits.iter().map(|&l| l.exp()).sum::<f32>().ln();
        assert!((log_sum_exp(&logits) - direct).abs() < 1e-5);
        // Subtracting the maximum first keeps large logits finite, where
        // the direct sum would overflow to infinity.
        let large = [1000.0f32, 1000.0];
        assert!(large.iter().map(|&l| l.exp()).sum::<f32>().is_infinite());
        assert!((log_sum_exp(&large) - (1000.0 + 2f32.ln())).abs() < 1e-3);
    }
}
