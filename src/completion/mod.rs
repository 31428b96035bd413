//! From a cursor in a document to the text an editor should insert there:
//! context → prompt → engine → post-processing.
//!
//! Shared by `nib complete` and the language server, so both suggest the same.

mod postprocess;

pub use self::postprocess::{Mode, Shape, finish};

use crate::engine::{
    CancelToken, Control, Engine, EngineError, GenerateOutput, GenerateRequest, Overflow,
    SamplingParams,
};
use crate::prompt::{BudgetSplit, CompletionContext, FimOrder, build_prompt};

#[derive(Debug, Clone)]
pub struct CompletionOptions {
    pub max_tokens: usize,
    /// Prompt tokens for prefix, suffix and other files together.
    pub prompt_budget: usize,
    pub sampling: SamplingParams,
}

impl Default for CompletionOptions {
    fn default() -> Self {
        Self {
            max_tokens: 64,
            prompt_budget: 1024,
            sampling: SamplingParams::greedy(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Suggestion {
    /// What to insert at the cursor.
    pub text: String,
    pub mode: Mode,
    pub output: GenerateOutput,
}

/// Stops generation once the suggestion is complete for its mode, or when
/// the request is cancelled.
struct Until<'a> {
    shape: &'a Shape,
    cancel: &'a CancelToken,
}

impl Control for Until<'_> {
    fn keep_going(&mut self, text: &str) -> bool {
        !self.cancel.is_cancelled() && !self.shape.is_complete(text)
    }
}

/// Completes at the cursor described by `ctx`. `Ok(None)` means the model
/// had nothing worth showing.
pub fn complete(
    engine: &mut dyn Engine,
    ctx: &CompletionContext,
    options: &CompletionOptions,
    cancel: &CancelToken,
) -> Result<Option<Suggestion>, EngineError> {
    let order = if engine.info().fim_spm {
        FimOrder::Spm
    } else {
        FimOrder::Psm
    };
    let budget = options
        .prompt_budget
        .min(
            engine
                .info()
                .context_length
                .saturating_sub(options.max_tokens),
        )
        .max(16);
    let fim = engine.fim().cloned();
    let prompt = build_prompt(
        engine.tokenizer(),
        fim.as_ref(),
        order,
        ctx,
        BudgetSplit::of(budget),
    )
    .map_err(|e| EngineError::BadOutput(format!("tokenizer: {e}")))?;
    let shape = Shape::at(&ctx.prefix, &ctx.suffix);
    let request = GenerateRequest {
        prompt,
        max_tokens: if shape.mode == Mode::SingleLine {
            options.max_tokens.min(48)
        } else {
            options.max_tokens
        },
        sampling: options.sampling,
        stop: Vec::new(),
        stop_tokens: fim.map(|f| f.stop).unwrap_or_default(),
        overflow: Overflow::TruncateLeft,
    };
    let output = engine.generate(
        &request,
        &mut Until {
            shape: &shape,
            cancel,
        },
    )?;
    if cancel.is_cancelled() {
        return Ok(None);
    }
    Ok(finish(&output.text, &shape).map(|text| Suggestion {
        text,
        mode: shape.mode,
        output,
    }))
}
