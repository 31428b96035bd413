//! The generation path of [`OrtEngine`]: fitting the prompt to the context
//! window, the decode loop (sampling, stops, prompt-lookup guesses) and token
//! healing. Kept apart from the graph runs in `ort.rs`, which it drives.

use std::time::Instant;

use super::kv_cache::KvCache;
use super::lookup::lookup;
use super::ort::OrtEngine;
use super::sampling::Sampler;
use super::{
    Control, EngineError, FinishReason, GenerateOutput, GenerateRequest, Overflow, Timings, ms,
};
use crate::model::{TextStream, Tokenizer};

impl OrtEngine {
    /// The body of [`super::Engine::generate`].
    pub(super) fn generate_from(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError> {
        self.check_tokens(&request.prompt)?;
        let Fitted {
            prompt,
            truncated,
            max_new,
        } = fit(request, self.info.context_length)?;
        let started = Instant::now();
        let mut cache = self.cache_for(prompt)?;
        let reused = cache.len();
        let result = self.decode_loop(&mut cache, prompt, max_new, request, control, started);
        self.cache.put(cache);
        let LoopResult {
            tokens,
            text,
            finish_reason,
            first_token_at,
            guessed,
        } = result?;
        let done = started.elapsed();
        let first = first_token_at.unwrap_or(done);
        Ok(GenerateOutput {
            tokens,
            text,
            finish_reason,
            prompt_tokens: prompt.len(),
            truncated_tokens: truncated,
            timings: Timings {
                prefill_ms: ms(first),
                decode_ms: ms(done.saturating_sub(first)),
                prefill_tokens: prompt.len() - reused,
                reused_tokens: reused,
                guessed_tokens: guessed,
            },
        })
    }
}

/// The prompt as it fits the model's context window, and how many tokens
/// may follow it.
pub(super) struct Fitted<'a> {
    pub prompt: &'a [u32],
    /// Tokens dropped from the left.
    pub truncated: usize,
    pub max_new: usize,
}

/// Fits `request.prompt` to a context window of `context` tokens: room for
/// at least one new token, or for all of them when completing (dropping
/// tokens from the left), or an error for raw generation.
pub(super) fn fit(request: &GenerateRequest, context: usize) -> Result<Fitted<'_>, EngineError> {
    if request.prompt.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    let mut prompt: &[u32] = &request.prompt;
    let mut truncated = 0;
    let room = match request.overflow {
        Overflow::TruncateLeft => request.max_tokens.clamp(1, (context / 2).max(1)),
        Overflow::Error => 1,
    };
    if prompt.len() + room > context {
        match request.overflow {
            Overflow::Error => {
                return Err(EngineError::PromptTooLong {
                    prompt: prompt.len(),
                    context,
                });
            }
            Overflow::TruncateLeft => {
                truncated = prompt.len() + room - context;
                prompt = &prompt[truncated..];
            }
        }
    }
    Ok(Fitted {
        prompt,
        truncated,
        max_new: request.max_tokens.min(context - prompt.len()),
    })
}

struct LoopResult {
    tokens: Vec<u32>,
    text: String,
    finish_reason: FinishReason,
    first_token_at: Option<std::time::Duration>,
    /// Generated tokens whose keys and values came from a confirmed guess.
    guessed: usize,
}

impl OrtEngine {
    fn decode_loop(
        &mut self,
        cache: &mut KvCache,
        prompt: &[u32],
        max_new: usize,
        request: &GenerateRequest,
        control: &mut dyn Control,
        started: Instant,
    ) -> Result<LoopResult, EngineError> {
        let mut sampler = Sampler::new(request.sampling);
        let nothing = |finish_reason| LoopResult {
            tokens: Vec::new(),
            text: String::new(),
            finish_reason,
            first_token_at: None,
            guessed: 0,
        };
        if max_new == 0 {
            return Ok(nothing(FinishReason::Length));
        }
        if !control.keep_going("") {
            return Ok(nothing(FinishReason::Cancelled));
        }
        let done_len = cache.len();
        let mut logits = self.prefill(cache, &prompt[done_len..])?;
        let mut first_token_at = None;
        let mut stream = TextStream::after(prompt.last().copied());
        let mut hits = 0;
        let finish = |tokenizer: &Tokenizer, stream: TextStream, finish_reason, at, guessed| {
            // The exact text of all tokens, cut at the stop the stream saw.
            let (mut text, tokens) = stream.finish(tokenizer);
            if let Some(cut) = earliest_stop(&text, &request.stop) {
                text.truncate(cut);
            }
            Ok(LoopResult {
                tokens,
                text,
                finish_reason,
                first_token_at: at,
                guessed,
            })
        };
        let mut required = request.required_prefix.as_str();
        // Tokens guessed ahead and already run, each with the logits after it.
        let mut guessed: std::collections::VecDeque<(u32, Vec<f32>)> = Default::default();
        // How many to guess: a run of the model costs more the more tokens
        // it checks, so guess as far as guesses have been landing lately.
        let mut reach = request.lookahead;
        let mut landed = 0;
        loop {
            if !required.is_empty() {
                self.restrict_to(&mut logits, required);
            }
            let next = sampler.sample(&logits) as u32;
            if !required.is_empty() {
                // What the token leaves of the required text; nothing when
                // it covers it, or when no token agreed with it at all (then
                // the sampled token may not even end on a char boundary of it).
                let text = self.token_text(next);
                required = required.strip_prefix(text).unwrap_or("");
            }
            first_token_at.get_or_insert_with(|| started.elapsed());
            let is_eos = self.info.eos_token_ids.contains(&next) && !request.ignore_eos;
            if is_eos || request.stop_tokens.contains(&next) {
                return finish(
                    &self.tokenizer,
                    stream,
                    FinishReason::Eos,
                    first_token_at,
                    hits,
                );
            }
            let text = stream.push(&self.tokenizer, next);
            if earliest_stop(text, &request.stop).is_some() {
                return finish(
                    &self.tokenizer,
                    stream,
                    FinishReason::Stop,
                    first_token_at,
                    hits,
                );
            }
            if !control.keep_going(text) {
                return finish(
                    &self.tokenizer,
                    stream,
                    FinishReason::Cancelled,
                    first_token_at,
                    hits,
                );
            }
            let generated = stream.tokens().len();
            if generated >= max_new {
                let reason = if generated >= request.max_tokens {
                    FinishReason::MaxTokens
                } else {
                    FinishReason::Length
                };
                return finish(&self.tokenizer, stream, reason, first_token_at, hits);
            }
            // The logits after `next`: computed already when it was guessed
            // right; else run it, with new guesses after it.
            match guessed.pop_front() {
                Some((guess, row)) if guess == next => {
                    hits += 1;
                    landed += 1;
                    if guessed.is_empty() {
                        reach = (reach * 2).min(request.lookahead);
                    }
                    logits = row;
                    continue;
                }
                Some(_) => {
                    // The model disagreed: forget the guesses' keys and values.
                    let wrong = guessed.len() + 1;
                    guessed.clear();
                    cache.truncate(cache.len() - wrong, &self.signature)?;
                    reach = landed + 1;
                }
                None => {}
            }
            let room =
                (max_new - generated).min(self.info.context_length.saturating_sub(cache.len() + 1));
            let guesses = if request.sampling.is_greedy() && required.is_empty() && self.exact_rows
            {
                lookup(prompt, stream.tokens(), reach.min(room))
            } else {
                &[]
            };
            if guesses.is_empty() {
                logits = self.step(cache, &[next])?;
                continue;
            }
            let fed: Vec<u32> = std::iter::once(next)
                .chain(guesses.iter().copied())
                .collect();
            let rows = self.step_rows(cache, &fed, fed.len())?;
            let mut rows = rows
                .chunks_exact(rows.len() / fed.len())
                .map(<[f32]>::to_vec);
            logits = rows
                .next()
                .ok_or_else(|| EngineError::BadOutput("no logits".into()))?;
            guessed = fed[1..].iter().copied().zip(rows).collect();
            landed = 0;
        }
    }
}

impl OrtEngine {
    /// The text of one token alone, for every token id (computed once).
    fn token_text(&mut self, id: u32) -> &str {
        if self.token_texts.is_empty() {
            let n = self.logits_width.unwrap_or(self.info.vocab_size);
            self.token_texts = (0..n as u32).map(|i| self.tokenizer.decode(&[i])).collect();
        }
        self.token_texts.get(id as usize).map_or("", String::as_str)
    }

    /// Masks the tokens whose text does not agree with `required`: it must
    /// start with `required` or be a non-empty start of it. Leaves the
    /// logits alone when no token agrees.
    fn restrict_to(&mut self, logits: &mut [f32], required: &str) {
        self.token_text(0);
        let agrees = |t: &str| {
            !t.is_empty()
                && !t.contains('\u{FFFD}')
                && (t.starts_with(required) || required.starts_with(t))
        };
        if !self
            .token_texts
            .iter()
            .take(logits.len())
            .any(|t| agrees(t))
        {
            return;
        }
        for (logit, text) in logits.iter_mut().zip(&self.token_texts) {
            if !agrees(text) {
                *logit = f32::NEG_INFINITY;
            }
        }
    }
}

/// Byte offset of the first stop sequence in `text`.
pub(super) fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_stop_picks_the_first_occurrence() {
        let stops = vec!["\n\n".to_string(), "def ".to_string()];
        assert_eq!(earliest_stop("x = 1\ndef f():\n\n", &stops), Some(6));
        assert_eq!(earliest_stop("x = 1", &stops), None);
        assert_eq!(earliest_stop("abc", &[String::new()]), None);
    }
}
