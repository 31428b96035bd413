//! The ONNX Runtime backend: `OrtEngine`, loading a model, and the runs of
//! its graph (copied or in-place keys and values, chunked prefill). The
//! generation and scoring paths built on these runs live in `generate.rs`
//! and `score.rs`, so this file is only about talking to ONNX Runtime.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::f16;
use ort::memory::MemoryInfo;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType};

use super::kv_cache::{KvCache, PrefixCache, bytes_per_token};
use super::session::{self, Device, SessionOptions};
use super::signature::{IntInput, Signature};
use super::weights::Weights;
use super::{Control, Engine, EngineError, GenerateOutput, GenerateRequest};
use crate::model::{ModelConfig, ModelError, ModelFiles, ModelInfo, NibSettings, Tokenizer};
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
    pub(super) signature: Signature,
    pub(super) info: ModelInfo,
    pub(super) tokenizer: Tokenizer,
    fim: Option<FimTokens>,
    device: Device,
    cuda_note: Option<String>,
    pub(super) cache: PrefixCache,
    /// Vocabulary size as the graph's logits have it.
    pub(super) logits_width: Option<usize>,
    /// Each token's text, for token healing; filled on first use.
    pub(super) token_texts: Vec<String>,
    /// Positions of the in-place KV buffers, when the graph supports them.
    kv_capacity: Option<usize>,
    /// A run over several tokens gives each row the logits a run over one
    /// would (fp32 graphs, also with MatMulNBits weights), so prompt-lookup
    /// guesses change no token. fp16
    /// kernels and dynamic int8 quantization (one activation scale over all
    /// the rows of a run) round differently by batch size.
    pub(super) exact_rows: bool,
    /// What the model was read from: the graph, its weights, its JSON files.
    source_files: Vec<PathBuf>,
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
        let weights = Weights::read(&files.graph)?;
        let source_files = weights
            .files(&files.graph)
            .into_iter()
            .chain(MODEL_JSON_FILES.iter().map(|name| files.dir.join(name)))
            .filter(|p| p.exists())
            .collect();
        let (session, device, cuda_note) =
            session::create(runtime, &weights, options).map_err(|e| match e {
                EngineError::Ort(err) => EngineError::Model(ModelError::Invalid {
                    file: files.graph.clone(),
                    message: format!("ONNX Runtime cannot load it: {err}"),
                }),
                other => other,
            })?;
        let overridable: Vec<_> = session
            .overridable_initializers()
            .into_iter()
            .map(|i| (i.name().to_owned(), i.dtype().clone()))
            .collect();
        let signature =
            Signature::read(session.inputs(), session.outputs(), &overridable, &config)?;
        let fim = FimTokens::detect(&tokenizer);
        let ops = GraphOps::scan(&weights.graph);
        let kv_capacity = if options.copy_kv {
            None
        } else {
            in_place_kv(&ops, &signature, &config, device)
        };
        let info = ModelInfo {
            dtype: match signature.logits_ty {
                TensorElementType::Float16 => "float16".into(),
                _ => "float32".into(),
            },
            quantized: ops.quantized,
            in_place_kv: kv_capacity.is_some(),
            logits_to_keep: signature.logits_to_keep.is_some(),
            ..ModelInfo::from_config(files.graph.clone(), &config, fim.as_ref(), settings.fim.spm)
        };
        let cache = PrefixCache::new(
            PREFIX_CACHE_ENTRIES,
            PREFIX_CACHE_BYTES,
            bytes_per_token(&signature),
        );
        let fp32 = std::iter::once(signature.logits_ty)
            .chain(signature.kv.iter().map(|slot| slot.ty))
            .all(|ty| ty == TensorElementType::Float32);
        let exact_rows = fp32 && !ops.scale_per_run;
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
            source_files,
        })
    }

    /// Forgets all cached keys and values.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Runs `tokens` through the model after `cache`, extending it, and
    /// returns the logits of the last token. On error the cache is emptied.
    pub(super) fn step(
        &mut self,
        cache: &mut KvCache,
        tokens: &[u32],
    ) -> Result<Vec<f32>, EngineError> {
        self.step_rows(cache, tokens, 1)
    }

    /// [`Self::step`], returning the logits of the last `rows` tokens, row
    /// after row.
    pub(super) fn step_rows(
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
        for (name, value) in token_inputs(sig, cache.len(), tokens, rows)? {
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
        for (name, value) in token_inputs(sig, past, tokens, rows)? {
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
    pub(super) fn prefill(
        &mut self,
        cache: &mut KvCache,
        tokens: &[u32],
    ) -> Result<Vec<f32>, EngineError> {
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
    pub(super) fn cache_for(&mut self, prompt: &[u32]) -> Result<KvCache, EngineError> {
        if let Some((mut cache, shared)) = self.cache.take_best(prompt) {
            let keep = shared.min(prompt.len() - 1);
            if keep > 0 {
                cache.truncate(keep, &self.signature)?;
                return Ok(cache);
            }
        }
        Ok(KvCache::empty(&self.signature, self.kv_capacity)?)
    }

    /// Fails on a token id outside the vocabulary the graph's logits have.
    pub(super) fn check_tokens<'a>(
        &self,
        tokens: impl IntoIterator<Item = &'a u32>,
    ) -> Result<(), EngineError> {
        let vocab = self.logits_width.unwrap_or(self.info.vocab_size);
        match tokens.into_iter().find(|&&id| id as usize >= vocab) {
            Some(&id) => Err(EngineError::TokenOutOfRange { id, vocab }),
            None => Ok(()),
        }
    }
}

/// The inputs besides keys and values for running `tokens` after `past`
/// cached ones, as the graph declares them; the logits of the last `rows`
/// positions are wanted.
fn token_inputs<'s>(
    sig: &'s Signature,
    past: usize,
    tokens: &[u32],
    rows: usize,
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
    if let Some(keep) = &sig.logits_to_keep {
        let shape: &[i64] = if keep.scalar { &[] } else { &[1] };
        let rows = rows.clamp(1, n) as i64;
        let value = match keep.input.ty {
            TensorElementType::Int32 => Tensor::from_array((shape, vec![rows as i32]))?.into_dyn(),
            _ => Tensor::from_array((shape, vec![rows]))?.into_dyn(),
        };
        inputs.push((keep.input.name.as_str(), value));
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

/// The JSON files a model folder may hold, all read at load.
pub(super) const MODEL_JSON_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "nib.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Operator types that change how the engine treats a graph.
#[derive(Debug, Default)]
struct GraphOps {
    /// Quantized weights: integer matrix ops, or blockwise ones (MatMulNBits).
    quantized: bool,
    /// Activations quantized with one scale over all the rows of a run
    /// (dynamic quantization), so a row's logits depend on the run's other
    /// rows. MatMulNBits quantizes each row's blocks on their own.
    scale_per_run: bool,
    group_query_attention: bool,
}

impl GraphOps {
    /// Operator names are plain bytes in the protobuf, so a scan finds them
    /// without parsing it.
    fn scan(bytes: &[u8]) -> Self {
        let mentions = |needles: &[&[u8]]| {
            needles
                .iter()
                .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
        };
        let scale_per_run =
            mentions(&[b"MatMulInteger", b"DynamicQuantizeLinear", b"QLinearMatMul"]);
        Self {
            quantized: scale_per_run || mentions(&[b"MatMulNBits"]),
            scale_per_run,
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

    fn source_files(&self) -> &[PathBuf] {
        &self.source_files
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn device(&self) -> Device {
        self.device
    }

    /// Why `auto` did not pick CUDA, when it did not.
    fn device_note(&self) -> Option<&str> {
        self.cuda_note.as_deref()
    }

    fn reset(&mut self) {
        self.clear_cache();
    }

    fn fim(&self) -> Option<&FimTokens> {
        self.fim.as_ref()
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError> {
        self.generate_from(request, control)
    }

    fn score(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
        self.score_continuations(prompt, continuations, None)
            .map(|scores| scores.unwrap_or_default())
    }

    fn score_above_first(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        margin: f64,
    ) -> Result<Option<Vec<f64>>, EngineError> {
        self.score_continuations(prompt, continuations, Some(margin))
    }
}
