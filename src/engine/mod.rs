//! The inference engine: turns prompt tokens into generated tokens.
//!
//! The [`Engine`] trait is the boundary every caller (CLI, language server,
//! review) goes through; [`OrtEngine`] is the ONNX Runtime backend and
//! [`RemoteEngine`] a model on an inference server.
//!
//! Architecture invariant: the engine speaks tokens and text, never LSP or
//! file positions. It does blocking work and is driven from a dedicated
//! thread, never from an async task.

mod generate;
mod kv_cache;
mod lookup;
mod ort;
mod remote;
pub mod sampling;
mod score;
mod session;
mod signature;
mod weights;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

pub use self::ort::OrtEngine;
pub use self::remote::{Api, Fim, RemoteEngine, RemoteError, RemoteSettings, check_url};
pub use self::sampling::SamplingParams;
pub use self::session::{Device, DeviceRequest, SessionOptions};
pub use self::signature::SignatureError;
use crate::model::{ModelError, ModelInfo};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Prompt token ids, already templated (FIM tokens included).
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Generation stops when the decoded text contains one of these; the
    /// returned text ends before it.
    pub stop: Vec<String>,
    /// Token ids that end generation like EOS (FIM end markers, file separators).
    pub stop_tokens: Vec<u32>,
    /// When the prompt does not fit the context window: drop tokens from the
    /// left (completions) or fail (raw generation).
    pub overflow: Overflow,
    /// Keep generating past EOS (benchmarks that need a fixed length).
    pub ignore_eos: bool,
    /// The generated text must start with this; the first tokens are
    /// restricted to ones that agree with it (token healing).
    pub required_prefix: String,
    /// Most tokens guessed ahead from the text so far when decoding greedily
    /// (prompt lookup): the guesses are checked in one run of the model and
    /// the ones it agrees with cost no step of their own. 0 turns it off.
    pub lookahead: usize,
}

impl GenerateRequest {
    /// Greedy generation of up to `max_tokens`, stopping only at EOS, failing
    /// on a prompt longer than the context window.
    pub fn new(prompt: Vec<u32>, max_tokens: usize) -> Self {
        Self {
            prompt,
            max_tokens,
            sampling: SamplingParams::greedy(),
            stop: Vec::new(),
            stop_tokens: Vec::new(),
            overflow: Overflow::Error,
            ignore_eos: false,
            required_prefix: String::new(),
            lookahead: DEFAULT_LOOKAHEAD,
        }
    }
}

/// A completion whose prompt the server lays out: the text around the
/// cursor (already cut to the prompt budget) and other files.
#[derive(Debug, Clone, Copy)]
pub struct InfillRequest<'a> {
    pub prefix: &'a str,
    pub suffix: &'a str,
    /// Other files.
    pub extra: &'a [crate::prompt::Snippet],
    pub max_tokens: usize,
    pub sampling: SamplingParams,
}

/// Tokens guessed ahead by default: code repeats names and lines of its
/// context, and checking 8 guesses costs a small model little more than one
/// step.
pub const DEFAULT_LOOKAHEAD: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    TruncateLeft,
    Error,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Eos,
    MaxTokens,
    Stop,
    /// The caller's [`CancelToken`] fired or its [`Control`] asked to stop.
    Cancelled,
    /// The context window is full.
    Length,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Time to run the prompt through the model and pick the first token.
    pub prefill_ms: f64,
    /// Time spent on the tokens after the first.
    pub decode_ms: f64,
    /// Prompt tokens actually computed (the rest came from the KV cache).
    pub prefill_tokens: usize,
    /// Prompt tokens whose keys and values were reused from an earlier request.
    pub reused_tokens: usize,
    /// Generated tokens the model confirmed in the run of the token before
    /// them (prompt lookup guesses), so they needed no step of their own.
    pub guessed_tokens: usize,
}

impl Timings {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_ms)
    }

    pub fn decode_tokens_per_s(&self, generated: usize) -> f64 {
        rate(generated.saturating_sub(1), self.decode_ms)
    }
}

fn rate(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        tokens as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerateOutput {
    /// Generated token ids, stop sequence and EOS excluded.
    pub tokens: Vec<u32>,
    /// Decoded text of `tokens`, cut before a stop sequence.
    pub text: String,
    pub finish_reason: FinishReason,
    /// Prompt tokens after any truncation.
    pub prompt_tokens: usize,
    /// Tokens dropped from the left of the prompt to fit the context window.
    pub truncated_tokens: usize,
    pub timings: Timings,
}

/// A flag another thread sets to abandon a generation between decode steps.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Lets the caller steer a generation while it runs: it sees the text so far
/// after every token and can end it early (a single-line completion stops at
/// the first newline without waiting for a stop sequence).
pub trait Control {
    fn keep_going(&mut self, text_so_far: &str) -> bool;
}

/// Never stops early.
pub struct RunToEnd;

impl Control for RunToEnd {
    fn keep_going(&mut self, _: &str) -> bool {
        true
    }
}

impl Control for CancelToken {
    fn keep_going(&mut self, _: &str) -> bool {
        !self.is_cancelled()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// Not a `#[source]`: the message already carries it, and chained
    /// reports would print it twice.
    #[error("ONNX Runtime failed: {0}")]
    Ort(::ort::Error),
    #[error(
        "the prompt has {prompt} tokens but the model's context window holds {context}; \
         shorten the prompt or lower --max-tokens"
    )]
    PromptTooLong { prompt: usize, context: usize },
    #[error(
        "a suggestion of up to {max_tokens} tokens leaves no room for a prompt in this model's \
         {context}-token context; use at most {fits} (maxTokens, --max-tokens)"
    )]
    NoRoomForPrompt {
        max_tokens: usize,
        context: usize,
        fits: usize,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("token id {id} is outside the model's vocabulary of {vocab}")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("the model returned {0}")]
    BadOutput(String),
    #[error(transparent)]
    Remote(RemoteError),
    #[error("CUDA was requested but cannot be used: {0}")]
    CudaUnavailable(String),
}

impl From<::ort::Error> for EngineError {
    fn from(e: ::ort::Error) -> Self {
        Self::Ort(e)
    }
}

/// A loaded model that generates text. Implementations are not thread-safe
/// by design: one generation at a time, driven by one worker thread.
/// Whether a score after the first is at least `margin` above the first:
/// what [`Engine::score_above_first`] answers.
fn any_above_first(scores: &[f64], margin: f64) -> bool {
    scores
        .split_first()
        .is_some_and(|(&first, rest)| rest.iter().any(|&s| s >= first + margin))
}

pub trait Engine: Send {
    fn info(&self) -> &ModelInfo;

    fn tokenizer(&self) -> &crate::model::Tokenizer;

    /// Which device the model runs on, as actually registered.
    fn device(&self) -> Device;

    /// The model's fill-in-the-middle markers, if its tokenizer has them.
    fn fim(&self) -> Option<&crate::prompt::FimTokens>;

    /// Generates from `request.prompt`, calling `control` after every token.
    fn generate(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError>;

    /// The log-probability (natural log) of each continuation right after
    /// `prompt`: the sum over its tokens. Scoring several continuations of
    /// one prompt costs one prefill; prompts that extend an earlier one
    /// reuse its keys and values like [`Engine::generate`] does.
    fn score(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError>;

    /// [`Engine::score`] for a caller that only cares whether some
    /// continuation after the first scores at least `margin` above the
    /// first: `None` when none does (their scores need not all be computed),
    /// else every score. The ONNX backend stops early: a continuation's
    /// first token bounds its score from above, and no second token is run
    /// for one whose bound falls short.
    fn score_above_first(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        margin: f64,
    ) -> Result<Option<Vec<f64>>, EngineError> {
        let scores = self.score(prompt, continuations)?;
        Ok(any_above_first(&scores, margin).then_some(scores))
    }

    /// Completes between `request.prefix` and `request.suffix` when the
    /// backend's server lays out fill-in-the-middle prompts itself
    /// (llama.cpp's `/infill`, for a model whose tokenizer nib lacks);
    /// `None`: the caller lays out tokens for [`Engine::generate`].
    fn infill(
        &mut self,
        _request: &InfillRequest<'_>,
        _control: &mut dyn Control,
    ) -> Option<Result<GenerateOutput, EngineError>> {
        None
    }

    /// Why the device is not the one asked for (`auto` without a usable GPU).
    fn device_note(&self) -> Option<&str> {
        None
    }

    /// Asks the backend's server, where there is one, whether it is up:
    /// `Some(Ok(models it serves))` or the error. `None` in process.
    fn check_server(&self) -> Option<Result<Vec<String>, EngineError>> {
        None
    }

    /// Forgets what earlier requests left (cached keys and values), after a
    /// request panicked half-way through updating them.
    fn reset(&mut self) {}

    /// The files the model was read from, so that a server can notice
    /// them changing on disk ([`crate::files::Stamp`]).
    fn source_files(&self) -> &[std::path::PathBuf] {
        &[]
    }
}

/// Which engine runs the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backend {
    /// ONNX Runtime in this process.
    #[default]
    Onnx,
    /// An inference server; the model folder supplies the tokenizer.
    Remote(RemoteSettings),
}

impl Backend {
    /// `onnx`, or a server API's name (`openai`, `llama.cpp`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Onnx => "onnx",
            Self::Remote(settings) => settings.api.name(),
        }
    }
}

/// Loads the model at `path` with `backend`.
pub fn load(
    path: &std::path::Path,
    options: &SessionOptions,
    backend: &Backend,
) -> Result<Box<dyn Engine>, EngineError> {
    Ok(match backend {
        Backend::Onnx => Box::new(OrtEngine::load(path, options)?),
        Backend::Remote(settings) => Box::new(RemoteEngine::load(path, settings)?),
    })
}

/// Elapsed milliseconds, for timings.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
