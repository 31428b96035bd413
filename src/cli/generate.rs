//! `nib generate`: raw generation from a prompt.

use anyhow::Context as _;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{Format, ModelArgs, print_out};
use crate::engine::{FinishReason, GenerateRequest, Overflow, RunToEnd, SamplingParams, Timings};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt; read from standard input when absent.
    #[arg(long)]
    prompt: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Tokens guessed ahead by prompt lookup when decoding greedily (0: off).
    #[arg(long, default_value_t = crate::engine::DEFAULT_LOOKAHEAD)]
    lookahead: usize,
    /// Sampling temperature; 0 (the default) is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling: draw from the likeliest tokens that make up this probability (1: all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Draw from the K likeliest tokens only (0: no limit).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the sampler: the same seed gives the same output.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the output contains this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Generate exactly --max-tokens tokens, past any end-of-text (for benchmarks).
    #[arg(long)]
    ignore_eos: bool,
    /// Output: the text, or JSON with tokens, finish reason and timings.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// The JSON that `--format json` prints; fields may be added, never renamed.
#[derive(Serialize)]
struct JsonOutput<'a> {
    /// [`super::JSON_VERSION`].
    version: u32,
    text: &'a str,
    tokens: &'a [u32],
    prompt_tokens: usize,
    finish_reason: FinishReason,
    device: String,
    timings: JsonTimings<'a>,
}

#[derive(Serialize)]
struct JsonTimings<'a> {
    #[serde(flatten)]
    raw: &'a Timings,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let prompt = match args.prompt {
        Some(p) => p,
        None => {
            let bytes =
                crate::files::read_limited(std::io::stdin().lock(), crate::files::TEXT_LIMIT)
                    .context("cannot read the prompt from stdin")?;
            String::from_utf8(bytes).context("the prompt on stdin is not UTF-8 text")?
        }
    };
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        anyhow::bail!("--top-p must be in (0, 1]");
    }
    if args.temperature < 0.0 || !args.temperature.is_finite() {
        anyhow::bail!("--temperature must be 0 or more");
    }
    let mut engine = args.model.load()?;
    let ids = engine
        .tokenizer()
        .encode_prompt(&prompt)
        .map_err(|e| anyhow::anyhow!("cannot tokenize the prompt: {e}"))?;
    let request = GenerateRequest {
        prompt: ids,
        max_tokens: args.max_tokens,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        stop: args.stop,
        stop_tokens: Vec::new(),
        overflow: Overflow::Error,
        ignore_eos: args.ignore_eos,
        required_prefix: String::new(),
        lookahead: args.lookahead,
    };
    let out = engine.generate(&request, &mut RunToEnd)?;
    match args.format {
        Format::Text => print_out(&format!("{}\n", out.text))?,
        Format::Json => {
            let json = JsonOutput {
                version: super::JSON_VERSION,
                text: &out.text,
                tokens: &out.tokens,
                prompt_tokens: out.prompt_tokens,
                finish_reason: out.finish_reason,
                device: engine.device().to_string(),
                timings: JsonTimings {
                    raw: &out.timings,
                    prefill_tokens_per_s: out.timings.prefill_tokens_per_s(),
                    decode_tokens_per_s: out.timings.decode_tokens_per_s(out.tokens.len()),
                },
            };
            print_out(&format!("{}\n", serde_json::to_string(&json)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
