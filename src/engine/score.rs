//! Scoring for [`OrtEngine`]: the log-probability of continuations of a
//! prompt (what review ranks members by). One prefill serves all the
//! continuations; each then runs alone and is cut off the cache again.

use super::EngineError;
use super::kv_cache::KvCache;
use super::ort::OrtEngine;

impl OrtEngine {
    /// The body of [`super::Engine::score`].
    pub(super) fn score_continuations(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
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
        let result = self.score_all(&mut cache, prompt, continuations);
        self.cache.put(cache);
        result
    }

    fn score_all(
        &mut self,
        cache: &mut KvCache,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
        let done = cache.len();
        let first = self.prefill(cache, &prompt[done..])?;
        let first_norm = log_sum_exp(&first);
        let width = first.len();
        let mut scores = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            let Some((&head, rest)) = continuation.split_first() else {
                return Err(EngineError::EmptyPrompt);
            };
            let mut total = f64::from(logit(&first, head)? - first_norm);
            if !rest.is_empty() {
                // Each token but the last predicts the next one.
                let fed = &continuation[..continuation.len() - 1];
                let rows = self.step_rows(cache, fed, fed.len())?;
                for (row, &next) in rows.chunks_exact(width).zip(rest) {
                    total += f64::from(logit(row, next)? - log_sum_exp(row));
                }
                cache.truncate(prompt.len(), &self.signature)?;
            }
            scores.push(total);
        }
        Ok(scores)
    }
}

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
