//! From a cursor in a document to the text an editor should insert there:
//! context → prompt → engine → post-processing.
//!
//! Shared by `nib complete` and the language server, so both suggest the same.

#[cfg(test)]
mod golden;
mod postprocess;

pub use self::postprocess::{Lang, Mode, Shape, finish};

use crate::engine::{
    Control, Engine, EngineError, GenerateOutput, GenerateRequest, InfillRequest, Overflow,
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

/// Everything one completion run produced, kept or not: the language
/// server counts the work of runs whose results nobody used.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What to insert, when something is worth showing.
    pub text: Option<String>,
    pub mode: Mode,
    pub output: GenerateOutput,
    /// The caller's control stopped the run before the suggestion was complete.
    pub interrupted: bool,
}

/// Stops generation once the suggestion is complete for its mode, or when
/// the caller's control says so.
struct Until<'a> {
    shape: &'a Shape,
    caller: &'a mut dyn Control,
    interrupted: bool,
    /// Text the model rewrites before the suggestion proper (token healing).
    healed: &'a str,
}

impl Control for Until<'_> {
    fn keep_going(&mut self, text: &str) -> bool {
        let new = text.strip_prefix(self.healed).unwrap_or("");
        if !self.caller.keep_going(new) {
            self.interrupted = true;
            return false;
        }
        !self.shape.is_complete(new)
    }
}

/// The shortest prompt worth completing after (half of a smaller context);
/// a suggestion as long as the context would leave none and always come
/// back empty.
const MIN_PROMPT_TOKENS: usize = 64;

/// Characters per token when cutting text for a server that tokenizes it:
/// generous, since the server trims what does not fit.
const CHARS_PER_TOKEN: usize = 4;

/// The end of `text`, at most `max` bytes, starting on a line.
fn tail_chars(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let start = text[start..].find('\n').map_or(start, |i| start + i + 1);
    &text[start..]
}

/// The start of `text`, at most `max` bytes, ending after a line.
fn head_chars(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(end, |i| i + 1);
    &text[..end]
}

/// Completes at the cursor described by `ctx`, with the caller's
/// [`Control`] consulted after every token (cancellation, supersession).
/// The outcome's `text` is `None` when the model had nothing worth showing.
pub fn complete_with(
    engine: &mut dyn Engine,
    ctx: &CompletionContext,
    options: &CompletionOptions,
    control: &mut dyn Control,
) -> Result<Outcome, EngineError> {
    let order = if engine.info().fim_spm {
        FimOrder::Spm
    } else {
        FimOrder::Psm
    };
    let context = engine.info().context_length;
    let fits = context.saturating_sub(MIN_PROMPT_TOKENS.min(context / 2));
    if options.max_tokens > fits {
        return Err(EngineError::NoRoomForPrompt {
            max_tokens: options.max_tokens,
            context,
            fits,
        });
    }
    let budget = options
        .prompt_budget
        .min(context - options.max_tokens)
        .max(16);
    let shape = Shape::new(
        &ctx.prefix,
        &ctx.suffix,
        Lang::from_path(ctx.path.as_deref()),
    );
    let max_tokens = if shape.mode == Mode::SingleLine {
        options.max_tokens.min(48)
    } else {
        options.max_tokens
    };
    let split = BudgetSplit::of(budget);
    let infill = InfillRequest {
        prefix: tail_chars(&ctx.prefix, split.prefix * CHARS_PER_TOKEN),
        suffix: head_chars(&ctx.suffix, split.suffix * CHARS_PER_TOKEN),
        extra: &ctx.snippets,
        max_tokens,
        sampling: options.sampling,
    };
    let mut until = Until {
        shape: &shape,
        caller: control,
        interrupted: false,
        healed: "",
    };
    if let Some(output) = engine.infill(&infill, &mut until) {
        let output = output?;
        let interrupted = until.interrupted;
        let text = if interrupted {
            None
        } else {
            finish(&output.text, &shape)
        };
        return Ok(Outcome {
            text,
            mode: shape.mode,
            output,
            interrupted,
        });
    }
    let fim = engine.fim().cloned();
    let prompt = build_prompt(engine.tokenizer(), fim.as_ref(), order, ctx, split)
        .map_err(|e| EngineError::BadOutput(format!("tokenizer: {e}")))?;
    let request = GenerateRequest {
        prompt: prompt.tokens,
        // One more token for the text token healing rewrites.
        max_tokens: usize::from(!prompt.healed.is_empty()) + max_tokens,
        sampling: options.sampling,
        stop: Vec::new(),
        stop_tokens: fim.map(|f| f.middle_stops()).unwrap_or_default(),
        overflow: Overflow::TruncateLeft,
        ignore_eos: false,
        required_prefix: prompt.healed.clone(),
        lookahead: crate::engine::DEFAULT_LOOKAHEAD,
    };
    let mut until = Until {
        shape: &shape,
        caller: until.caller,
        interrupted: false,
        healed: &prompt.healed,
    };
    let output = engine.generate(&request, &mut until)?;
    let interrupted = until.interrupted;
    let text = match output.text.strip_prefix(&prompt.healed) {
        Some(new) if !interrupted => finish(new, &shape),
        _ => None,
    };
    Ok(Outcome {
        text,
        mode: shape.mode,
        output,
        interrupted,
    })
}

#[cfg(test)]
mod cut_tests {
    use super::{head_chars, tail_chars};

    #[test]
    fn text_for_a_server_is_cut_at_lines_and_char_boundaries() {
        let text = "alpha\nbéta\ngamma\n";
        assert_eq!(tail_chars(text, 100), text);
        assert_eq!(tail_chars(text, 8), "gamma\n");
        assert_eq!(head_chars(text, 9), "alpha\n");
        assert_eq!(head_chars(text, 100), text);
        // No line end in reach: cut inside the line, never inside a char.
        assert_eq!(tail_chars("ééé", 3), "é");
        assert_eq!(head_chars("ééé", 3), "é");
    }
}
