//! The ONNX Runtime backend: prefill, decode loop, stop conditions.

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use half::f16;
use ort::memory::MemoryInfo;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType};

use super::kv_cache::{KvCache, PrefixCache, bytes_per_token};
use super::sampling::Sampler;
use super::session::{self, Device, SessionOptions};
use super::signature::{IntInput, Signature};
use super::{
    Control, Engine, EngineError, FinishReason, GenerateOutput, GenerateRequest, Overflow, Timings,
    ms,
};
use crate::model::{
    ModelConfig, ModelError, ModelFiles, ModelInfo, NibSettings, TextStream, Tokenizer,
};
use crate::prompt::FimTokens;

/// Most logits one prefill call may produce; longer prompts run in chunks so
/// a 150k-token vocabulary does not need gigabytes for the prompt's logits.
const MAX_PREFILL_LOGITS: usize = 32 << 20;
/// Recent prompts whose keys and values are kept for reuse.
const PREFIX_CACHE_ENTRIES: usize = 4;
const PREFIX_CACHE_BYTES: usize = 512 << 20;
/// Largest in-place KV buffer set (one context window's worth); bigger
/// models copy keys and values per step instead of reserving this much.
const IN_PLACE_KV_BYTES: usize = 256 << 20;

pub struct OrtEngine {
    session: Session,
    signature: Signature,
    info: ModelInfo,
    tokenizer: Tokenizer,
    fim: Option<FimTokens>,
    device: Device,
    cuda_note: Option<String>,
    cache: PrefixCache,
    /// Vocabulary size as the graph's logits have it.
    logits_width: Option<usize>,
    /// Each token's text, for token healing; filled on first use.
    token_texts: Vec<String>,
    /// Positions of the in-place KV buffers, when the graph supports them.
    kv_capacity: Option<usize>,
    /// A run over several tokens gives each row the logits a run over one
    /// would (fp32 graphs), so prompt-lookup guesses change no token. fp16
    /// kernels and dynamic int8 quantization (one activation scale over all
    /// the rows of a run) round differently by batch size.
    exact_rows: bool,
}

impl OrtEngine {
    /// Loads a model folder (or an `.onnx` file inside one).
    pub fn load(path: &Path, options: &SessionOptions) -> Result<Self, EngineError> {
        let files = ModelFiles::locate(path)?;
        let config = ModelConfig::load(&files.dir)?;
        let tokenizer = Tokenizer::load(&files.dir)?;
        let settings = NibSettings::load(&files.dir)?;
        if tokenizer.id_bound() > config.vocab_size {
            return Err(ModelError::VocabMismatch {
                tokenizer: tokenizer.id_bound(),
                model: config.vocab_size,
            }
            .into());
        }
        let runtime = crate::runtime::runtime()?;
        let graph_len = std::fs::metadata(&files.graph)
            .map(|m| m.len())
            .unwrap_or(0);
        if graph_len == 0 {
            return Err(ModelError::Invalid {
                file: files.graph.clone(),
                message: "the file is empty".into(),
            }
            .into());
        }
        let (session, device, cuda_note) = session::create(runtime, &files.graph, options)
            .map_err(|e| match e {
                EngineError::Ort(err) => EngineError::Model(ModelError::Invalid {
                    file: files.graph.clone(),
                    message: format!("ONNX Runtime cannot load it: {err}"),
                }),
                other => other,
            })?;
        let signature = Signature::read(session.inputs(), session.outputs(), &config)?;
        let fim = FimTokens::detect(&tokenizer);
        let ops = GraphOps::scan(&files.graph);
        let kv_capacity = if options.copy_kv {
            None
        } else {
            in_place_kv(&ops, &signature, &config, device)
        };
        let info = ModelInfo {
            path: files.graph.clone(),
            architecture: config.model_type.clone(),
            parameters: config.parameters(),
            layers: config.layers,
            hidden_size: config.hidden_size,
            attention_heads: config.attention_heads,
            kv_heads: config.kv_heads,
            head_dim: config.head_dim,
            vocab_size: config.vocab_size,
            context_length: config.context_length,
            fim: fim
                .as_ref()
                .map_or(crate::prompt::FimStyle::None, |f| f.style),
            fim_spm: settings.fim.spm && fim.is_some(),
            dtype: match signature.logits_ty {
                TensorElementType::Float16 => "float16".into(),
                _ => "float32".into(),
            },
            quantized: ops.quantized,
            in_place_kv: kv_capacity.is_some(),
            eos_token_ids: config.eos_token_ids.clone(),
        };
        let cache = PrefixCache::new(
            PREFIX_CACHE_ENTRIES,
            PREFIX_CACHE_BYTES,
            bytes_per_token(&signature),
        );
        let fp32 = std::iter::once(signature.logits_ty)
            .chain(signature.kv.iter().map(|slot| slot.ty))
            .all(|ty| ty == TensorElementType::Float32);
        let exact_rows = fp32 && !info.quantized;
        tracing::info!(
            model = %info.path.display(),
            arch = %info.architecture,
            %device,
            in_place_kv = kv_capacity.is_some(),
            "model loaded"
        );
        Ok(Self {
            session,
            signature,
            info,
            tokenizer,
            fim,
            device,
            cuda_note,
            cache,
            logits_width: None,
            token_texts: Vec::new(),
            kv_capacity,
            exact_rows,
        })
    }

    /// Why `auto` did not pick CUDA, when it did not.
    pub fn cuda_note(&self) -> Option<&str> {
        self.cuda_note.as_deref()
    }

    /// Forgets all cached keys and values.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Runs `tokens` through the model after `cache`, extending it, and
    /// returns the logits of the last token. On error the cache is emptied.
    fn step(&mut self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.step_rows(cache, tokens, 1)
    }

    /// [`Self::step`], returning the logits of the last `rows` tokens, row
    /// after row.
    fn step_rows(
        &mut self,
        cache: &mut KvCache,
        tokens: &[u32],
        rows: usize,
    ) -> Result<Vec<f32>, EngineError> {
        let result = self.run(cache, tokens, rows);
        if result.is_err() {
            cache.tokens.clear();
            cache.values.clear();
        }
        result
    }

    fn run(
        &mut self,
        cache: &mut KvCache,
        tokens: &[u32],
        rows: usize,
    ) -> Result<Vec<f32>, EngineError> {
        if cache.capacity.is_some() {
            return self.run_in_place(cache, tokens, rows);
        }
        let sig = &self.signature;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(sig.kv.len() + 4);
        for (name, value) in token_inputs(sig, cache.len(), tokens)? {
            inputs.push((name.into(), value.into()));
        }
        for (slot, value) in sig.kv.iter().zip(&cache.values) {
            inputs.push((slot.input.as_str().into(), value.into()));
        }
        let mut outputs = self.session.run(inputs)?;
        let last = logits_of(&outputs, sig, rows)?;
        let mut values = Vec::with_capacity(sig.kv.len());
        for slot in &sig.kv {
            values.push(
                outputs.remove(&slot.output).ok_or_else(|| {
                    EngineError::BadOutput(format!("no `{}` output", slot.output))
                })?,
            );
        }
        cache.values = values;
        cache.tokens.extend_from_slice(tokens);
        Ok(last)
    }

    /// [`Self::run`] for in-place buffers: each past input and its present
    /// output are bound to the same tensor, so the graph (GroupQueryAttention
    /// sharing past and present) appends the new positions where they lie and
    /// nothing is copied. The attention mask's length tells it how many
    /// positions hold data.
    fn run_in_place(
        &mut self,
        cache: &mut KvCache,
        tokens: &[u32],
        rows: usize,
    ) -> Result<Vec<f32>, EngineError> {
        let past = cache.len();
        let n = tokens.len();
        if past + n > cache.footprint() {
            return Err(EngineError::PromptTooLong {
                prompt: past + n,
                context: cache.footprint(),
            });
        }
        let sig = &self.signature;
        let mut binding = self.session.create_binding()?;
        for (name, value) in token_inputs(sig, past, tokens)? {
            binding.bind_input(name, &value)?;
        }
        for (slot, value) in sig.kv.iter().zip(cache.values.iter_mut()) {
            binding.bind_input(slot.input.as_str(), value)?;
            binding.bind_output(slot.output.as_str(), value)?;
        }
        binding.bind_output_to_device(sig.logits.as_str(), &MemoryInfo::default())?;
        let outputs = self.session.run_binding(&binding)?;
        let last = logits_of(&outputs, sig, rows)?;
        cache.tokens.extend_from_slice(tokens);
        Ok(last)
    }

    /// Runs a prompt in chunks that bound the size of the logits.
    fn prefill(&mut self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let width = self.logits_width.unwrap_or(self.info.vocab_size).max(1);
        let chunk = (MAX_PREFILL_LOGITS / width).max(1);
        let mut last = Vec::new();
        for piece in tokens.chunks(chunk) {
            last = self.step(cache, piece)?;
        }
        self.logits_width = Some(last.len());
        Ok(last)
    }

    /// A cache holding as much of `prompt` as an earlier request computed,
    /// always leaving at least one token to run (its logits are needed).
    fn cache_for(&mut self, prompt: &[u32]) -> Result<KvCache, EngineError> {
        if let Some((mut cache, shared)) = self.cache.take_best(prompt) {
            let keep = shared.min(prompt.len() - 1);
            if keep > 0 {
                cache.truncate(keep, &self.signature)?;
                return Ok(cache);
            }
        }
        Ok(KvCache::empty(&self.signature, self.kv_capacity)?)
    }
}

/// The inputs besides keys and values for running `tokens` after `past`
/// cached ones, as the graph declares them.
fn token_inputs<'s>(
    sig: &'s Signature,
    past: usize,
    tokens: &[u32],
) -> Result<Vec<(&'s str, DynValue)>, EngineError> {
    let n = tokens.len();
    let mut inputs = vec![(
        sig.input_ids.name.as_str(),
        int_tensor(&sig.input_ids, tokens.iter().map(|&t| t as i64))?,
    )];
    if let Some(mask) = &sig.attention_mask {
        inputs.push((
            mask.name.as_str(),
            int_tensor(mask, std::iter::repeat_n(1, past + n))?,
        ));
    }
    if let Some(pos) = &sig.position_ids {
        inputs.push((
            pos.name.as_str(),
            int_tensor(pos, (past..past + n).map(|p| p as i64))?,
        ));
    }
    if let Some(name) = &sig.use_cache_branch {
        inputs.push((
            name.as_str(),
            Tensor::from_array(([1i64], vec![past > 0]))?.into_dyn(),
        ));
    }
    Ok(inputs)
}

/// The logits of the last `rows` positions of a run's outputs.
fn logits_of(
    outputs: &ort::session::SessionOutputs<'_>,
    sig: &Signature,
    rows: usize,
) -> Result<Vec<f32>, EngineError> {
    let logits = outputs
        .get(&sig.logits)
        .ok_or_else(|| EngineError::BadOutput("no logits".into()))?;
    logit_rows(logits, sig.logits_ty, rows)
}

fn int_tensor(
    input: &IntInput,
    values: impl Iterator<Item = i64>,
) -> Result<DynValue, EngineError> {
    let values: Vec<i64> = values.collect();
    let shape = [1i64, values.len() as i64];
    Ok(match input.ty {
        TensorElementType::Int32 => Tensor::from_array((
            shape,
            values.into_iter().map(|v| v as i32).collect::<Vec<_>>(),
        ))?
        .into_dyn(),
        _ => Tensor::from_array((shape, values))?.into_dyn(),
    })
}

/// The logits of the last `n` positions, as f32, row after row.
fn logit_rows(logits: &DynValue, ty: TensorElementType, n: usize) -> Result<Vec<f32>, EngineError> {
    fn tail<'a, T: Copy>(shape: &[i64], data: &'a [T], n: usize) -> Result<&'a [T], EngineError> {
        let width = shape.last().copied().unwrap_or(0).max(0) as usize;
        if width == 0 || data.len() < width * n {
            return Err(EngineError::BadOutput(format!(
                "logits of shape {shape:?} where {n} rows were needed"
            )));
        }
        Ok(&data[data.len() - width * n..])
    }
    Ok(match ty {
        TensorElementType::Float16 => {
            let (shape, data) = logits.try_extract_tensor::<f16>()?;
            tail(shape, data, n)?.iter().map(|v| v.to_f32()).collect()
        }
        _ => {
            let (shape, data) = logits.try_extract_tensor::<f32>()?;
            tail(shape, data, n)?.to_vec()
        }
    })
}

/// Operator types that change how the engine treats a graph.
#[derive(Debug, Default)]
struct GraphOps {
    /// Dynamic quantization leaves integer matrix ops in the graph.
    quantized: bool,
    group_query_attention: bool,
}

impl GraphOps {
    /// Operator names are plain bytes in the protobuf, so one read and a scan
    /// find them without parsing it.
    fn scan(graph: &Path) -> Self {
        const LIMIT: u64 = 512 << 20;
        let bytes = match std::fs::metadata(graph) {
            Ok(meta) if meta.len() <= LIMIT => std::fs::read(graph).unwrap_or_default(),
            _ => return Self::default(),
        };
        let mentions = |needles: &[&[u8]]| {
            needles
                .iter()
                .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
        };
        Self {
            quantized: mentions(&[
                b"MatMulInteger",
                b"DynamicQuantizeLinear",
                b"MatMulNBits",
                b"QLinearMatMul",
            ]),
            group_query_attention: mentions(&[b"GroupQueryAttention"]),
        }
    }
}

/// The positions of in-place KV buffers for this graph, or `None` to copy
/// keys and values each step. In place needs GroupQueryAttention, which
/// accepts past and present in one buffer and takes the valid length from
/// the attention mask; it runs on the CPU (a CUDA session would copy the
/// host buffers to the device each step anyway).
fn in_place_kv(
    ops: &GraphOps,
    signature: &Signature,
    config: &ModelConfig,
    device: Device,
) -> Option<usize> {
    let positions = config.context_length;
    let fits = bytes_per_token(signature).saturating_mul(positions) <= IN_PLACE_KV_BYTES;
    (device == Device::Cpu
        && fits
        && signature.attention_mask.is_some()
        && ops.group_query_attention)
        .then_some(positions)
}

impl Engine for OrtEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn device(&self) -> Device {
        self.device
    }

    fn fim(&self) -> Option<&FimTokens> {
        self.fim.as_ref()
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError> {
        if request.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        self.check_tokens(&request.prompt)?;
        let context = self.info.context_length;
        let mut prompt: &[u32] = &request.prompt;
        let mut truncated = 0;
        // Room for at least one new token, or for all of them when completing.
        let room = match request.overflow {
            Overflow::TruncateLeft => request.max_tokens.clamp(1, context / 2),
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
        let max_new = request.max_tokens.min(context - prompt.len());

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

    fn score(
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
}

impl OrtEngine {
    fn check_tokens<'a>(
        &self,
        tokens: impl IntoIterator<Item = &'a u32>,
    ) -> Result<(), EngineError> {
        let vocab = self.logits_width.unwrap_or(self.info.vocab_size);
        match tokens.into_iter().find(|&&id| id as usize >= vocab) {
            Some(&id) => Err(EngineError::TokenOutOfRange { id, vocab }),
            None => Ok(()),
        }
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
                let text = self.token_text(next);
                required = if text.len() >= required.len() {
                    ""
                } else {
                    &required[text.len()..]
                };
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

/// Prompt lookup: the tokens that followed the last earlier occurrence of
/// the text's final few tokens, as guesses of what comes next (code repeats
/// names, calls and whole lines of its context).
fn lookup<'a>(prompt: &'a [u32], generated: &'a [u32], most: usize) -> &'a [u32] {
    const LONGEST: usize = 4;
    const SHORTEST: usize = 2;
    if most == 0 {
        return &[];
    }
    let history: Vec<u32> = prompt.iter().chain(generated).copied().collect();
    for n in (SHORTEST..=LONGEST).rev() {
        let Some(tail) = history.len().checked_sub(n).map(|at| &history[at..]) else {
            continue;
        };
        // The latest earlier match, so guesses follow the nearest context.
        let found = (0..history.len() - n)
            .rev()
            .find(|&at| &history[at..at + n] == tail);
        if let Some(at) = found {
            let from = at + n;
            let to = (from + most).min(history.len());
            // Guesses come from the prompt or the generated tokens.
            return if to <= prompt.len() {
                &prompt[from..to]
            } else if from >= prompt.len() {
                &generated[from - prompt.len()..to - prompt.len()]
            } else {
                &prompt[from..]
            };
        }
    }
    &[]
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
fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
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
    fn lookup_guesses_what_followed_the_latest_match() {
        // `7 8` occurred twice before; the latest was followed by `9 1`.
        let prompt = [7, 8, 5, 6, 7, 8, 9, 1, 2];
        assert_eq!(lookup(&prompt, &[7, 8], 2), [9, 1]);
        // Longer matches win: `5 7 8` only matches once, before `0`.
        assert_eq!(lookup(&[5, 7, 8, 0, 7, 8, 3], &[5, 7, 8], 1), [0]);
        // Guesses may come from the generated tokens, and stop at the end.
        assert_eq!(lookup(&[1], &[2, 3, 4, 2, 3], 8), [4, 2, 3]);
        assert_eq!(lookup(&[1, 2, 3], &[9], 8), [] as [u32; 0]);
        assert_eq!(lookup(&prompt, &[7, 8], 0), [] as [u32; 0]);
    }

    #[test]
    fn earliest_stop_picks_the_first_occurrence() {
        let stops = vec!["\n\n".to_string(), "def ".to_string()];
        assert_eq!(earliest_stop("x = 1\ndef f():\n\n", &stops), Some(6));
        assert_eq!(earliest_stop("x = 1", &stops), None);
        assert_eq!(earliest_stop("abc", &[String::new()]), None);
    }
}
