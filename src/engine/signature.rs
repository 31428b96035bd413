//! What a decoder graph takes and returns, read from the graph itself.
//!
//! Exports differ: Llama-style graphs take `attention_mask` and
//! `position_ids`, GPT-2 and GPTBigCode ones may not; merged decoders take
//! `use_cache_branch`; KV tensors may be grouped-query or multi-query and
//! float32 or float16. Nothing here assumes one layout: every input is found
//! by name and every KV shape comes from the graph, with `config.json`
//! filling only the dimensions the graph leaves symbolic.

use ort::value::{Outlet, TensorElementType, ValueType};

use crate::model::ModelConfig;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the graph has no `{0}` input: it is not a text-generation decoder")]
    MissingInput(&'static str),
    #[error("the graph has no `logits` output: it is not a causal language model")]
    MissingLogits,
    #[error(
        "the graph has no past key/value inputs: export it with \
         `optimum-cli export onnx --task text-generation-with-past`"
    )]
    NoKvCache,
    #[error("the graph input `{input}` has no matching output (looked for `{output}`)")]
    UnpairedKv { input: String, output: String },
    #[error("the graph input `{name}` has an unsupported type {ty}")]
    UnsupportedType { name: String, ty: String },
    #[error("the graph has inputs nib does not know how to fill: {0}")]
    UnknownInputs(String),
    #[error("the graph input `{name}` has rank {rank}; keys and values need at least 3 axes")]
    KvRank { name: String, rank: usize },
}

/// An integer input and the element type it wants.
#[derive(Debug, Clone)]
pub struct IntInput {
    pub name: String,
    pub ty: TensorElementType,
}

/// One past-key/value input, its present output and the shape of its
/// tensors with the sequence axis marked.
#[derive(Debug, Clone)]
pub struct KvSlot {
    pub input: String,
    pub output: String,
    pub ty: TensorElementType,
    /// Shape for batch 1 with the sequence length set to 0.
    pub empty_shape: Vec<i64>,
    pub seq_axis: usize,
}

/// An input that takes how many of the last positions' logits to compute
/// (Hugging Face's `logits_to_keep`; nib's fused graphs have it, with a
/// default of all): a prompt's run needs only its last position's.
#[derive(Debug, Clone)]
pub struct KeepInput {
    pub input: IntInput,
    /// Whether it is a scalar rather than a one-element vector.
    pub scalar: bool,
}

/// The names exporters give the logits-to-keep input.
const KEEP_NAMES: [&str; 2] = ["logits_to_keep", "num_logits_to_keep"];

#[derive(Debug, Clone)]
pub struct Signature {
    pub input_ids: IntInput,
    pub attention_mask: Option<IntInput>,
    pub position_ids: Option<IntInput>,
    pub use_cache_branch: Option<String>,
    pub logits_to_keep: Option<KeepInput>,
    pub logits: String,
    pub logits_ty: TensorElementType,
    pub kv: Vec<KvSlot>,
}

fn tensor_parts(outlet: &Outlet) -> Option<(TensorElementType, Vec<i64>, Vec<String>)> {
    match outlet.dtype() {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => Some((
            *ty,
            shape.to_vec(),
            dimension_symbols.iter().cloned().collect(),
        )),
        _ => None,
    }
}

fn int_input(outlet: &Outlet) -> Result<IntInput, SignatureError> {
    int_typed(outlet.name(), outlet.dtype()).map(|(input, _)| input)
}

/// An integer input of this name and type, and its rank.
fn int_typed(name: &str, dtype: &ValueType) -> Result<(IntInput, usize), SignatureError> {
    match dtype {
        ValueType::Tensor {
            ty: ty @ (TensorElementType::Int64 | TensorElementType::Int32),
            shape,
            ..
        } => Ok((
            IntInput {
                name: name.to_owned(),
                ty: *ty,
            },
            shape.len(),
        )),
        other => Err(SignatureError::UnsupportedType {
            name: name.to_owned(),
            ty: format!("{other:?}"),
        }),
    }
}

fn keep_input(name: &str, dtype: &ValueType) -> Result<KeepInput, SignatureError> {
    let (input, rank) = int_typed(name, dtype)?;
    Ok(KeepInput {
        input,
        scalar: rank == 0,
    })
}

/// `past_key_values.3.key` → `present.3.key`; `past.3.key` → `present.3.key`.
fn present_name(past: &str) -> String {
    if let Some(rest) = past.strip_prefix("past_key_values") {
        format!("present{rest}")
    } else {
        past.replacen("past", "present", 1)
    }
}

/// The layer number in a KV name, for ordering.
fn layer_of(name: &str) -> usize {
    name.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn is_sequence_symbol(symbol: &str) -> bool {
    let s = symbol.to_ascii_lowercase();
    s.contains("seq") || s.contains("past") || s.contains("total") || s.contains("length")
}

impl Signature {
    /// `overridable`: the graph's initializers that a run may override
    /// (inputs with a default), by name and type.
    pub fn read(
        inputs: &[Outlet],
        outputs: &[Outlet],
        overridable: &[(String, ValueType)],
        config: &ModelConfig,
    ) -> Result<Self, SignatureError> {
        let mut logits_to_keep = overridable
            .iter()
            .find(|(name, _)| KEEP_NAMES.contains(&name.as_str()))
            .map(|(name, dtype)| keep_input(name, dtype))
            .transpose()?;
        let mut input_ids = None;
        let mut attention_mask = None;
        let mut position_ids = None;
        let mut use_cache_branch = None;
        let mut kv = Vec::new();
        let mut unknown = Vec::new();
        for input in inputs {
            match input.name() {
                "input_ids" => input_ids = Some(int_input(input)?),
                "attention_mask" => attention_mask = Some(int_input(input)?),
                "position_ids" => position_ids = Some(int_input(input)?),
                "use_cache_branch" => use_cache_branch = Some(input.name().to_owned()),
                name if KEEP_NAMES.contains(&name) => {
                    logits_to_keep = Some(keep_input(name, input.dtype())?);
                }
                name if name.contains("past") => kv.push(Self::kv_slot(input, outputs, config)?),
                name => unknown.push(name.to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(SignatureError::UnknownInputs(unknown.join(", ")));
        }
        let input_ids = input_ids.ok_or(SignatureError::MissingInput("input_ids"))?;
        if kv.is_empty() {
            return Err(SignatureError::NoKvCache);
        }
        kv.sort_by_key(|s| (layer_of(&s.input), s.input.clone()));
        let logits = outputs
            .iter()
            .find(|o| o.name() == "logits")
            .ok_or(SignatureError::MissingLogits)?;
        let logits_ty = match tensor_parts(logits) {
            Some((ty @ (TensorElementType::Float32 | TensorElementType::Float16), _, _)) => ty,
            other => {
                return Err(SignatureError::UnsupportedType {
                    name: "logits".into(),
                    ty: format!("{:?}", other.map(|o| o.0)),
                });
            }
        };
        Ok(Self {
            input_ids,
            attention_mask,
            position_ids,
            use_cache_branch,
            logits_to_keep,
            logits: logits.name().to_owned(),
            logits_ty,
            kv,
        })
    }

    fn kv_slot(
        input: &Outlet,
        outputs: &[Outlet],
        config: &ModelConfig,
    ) -> Result<KvSlot, SignatureError> {
        let name = input.name().to_owned();
        let output = present_name(&name);
        if !outputs.iter().any(|o| o.name() == output) {
            return Err(SignatureError::UnpairedKv {
                input: name,
                output,
            });
        }
        let Some((ty, dims, symbols)) = tensor_parts(input) else {
            return Err(SignatureError::UnsupportedType {
                name,
                ty: "non-tensor".into(),
            });
        };
        if !matches!(
            ty,
            TensorElementType::Float32 | TensorElementType::Float16 | TensorElementType::Bfloat16
        ) {
            return Err(SignatureError::UnsupportedType {
                name,
                ty: format!("{ty:?}"),
            });
        }
        let rank = dims.len();
        // Batch, sequence and at least one head axis.
        if rank < 3 {
            return Err(SignatureError::KvRank { name, rank });
        }
        let symbol = |i: usize| symbols.get(i).map(String::as_str).unwrap_or("");
        let seq_axis = (1..rank)
            .find(|&i| dims[i] < 0 && is_sequence_symbol(symbol(i)))
            .unwrap_or(if rank == 4 { 2 } else { 1 });
        // GPTBigCode may fuse key and value into one tensor of twice the head size.
        let fused = name.ends_with("key_value");
        let empty_shape = dims
            .iter()
            .enumerate()
            .map(|(i, &d)| match i {
                0 => 1,
                _ if i == seq_axis => 0,
                _ if d > 0 => d,
                _ if i == rank - 1 => (config.head_dim * if fused { 2 } else { 1 }) as i64,
                _ => config.kv_heads as i64,
            })
            .collect();
        Ok(KvSlot {
            input: name,
            output,
            ty,
            empty_shape,
            seq_axis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_names_follow_the_exporters() {
        assert_eq!(present_name("past_key_values.0.key"), "present.0.key");
        assert_eq!(present_name("past_key_values.11.value"), "present.11.value");
        assert_eq!(present_name("past.2.key_value"), "present.2.key_value");
    }

    #[test]
    fn layers_sort_numerically() {
        let mut names = vec![
            "past_key_values.10.key",
            "past_key_values.2.key",
            "past_key_values.1.value",
        ];
        names.sort_by_key(|n| layer_of(n));
        assert_eq!(
            names,
            [
                "past_key_values.1.value",
                "past_key_values.2.key",
                "past_key_values.10.key"
            ]
        );
    }
}
