//! `config.json`, `generation_config.json` and `nib.json`, with the field
//! names of every supported family folded into one view.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{ModelError, read_json};

/// The subset of a Hugging Face `config.json` nib needs, whatever the family.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub model_type: String,
    pub layers: usize,
    pub hidden_size: usize,
    pub attention_heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub tied_embeddings: bool,
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
}

fn usize_of(v: &Value, keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_u64))
        .map(|n| n as usize)
}

/// `eos_token_id` is an int or a list of ints.
fn ids_of(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let file = dir.join("config.json");
        let v: Value = read_json(&file)?;
        let invalid = |message: String| ModelError::Invalid {
            file: file.clone(),
            message,
        };
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let layers = usize_of(&v, &["num_hidden_layers", "n_layer", "num_layers"])
            .ok_or_else(|| invalid("no num_hidden_layers/n_layer".into()))?;
        let hidden_size = usize_of(&v, &["hidden_size", "n_embd", "d_model"])
            .ok_or_else(|| invalid("no hidden_size/n_embd".into()))?;
        let attention_heads = usize_of(&v, &["num_attention_heads", "n_head"])
            .ok_or_else(|| invalid("no num_attention_heads/n_head".into()))?;
        if attention_heads == 0 || layers == 0 {
            return Err(invalid("zero layers or attention heads".into()));
        }
        // GPTBigCode says `multi_query: true` instead of giving a KV head count.
        let multi_query = v
            .get("multi_query")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let kv_heads = if multi_query {
            1
        } else {
            usize_of(&v, &["num_key_value_heads", "n_head_kv"]).unwrap_or(attention_heads)
        };
        let head_dim = usize_of(&v, &["head_dim"]).unwrap_or(hidden_size / attention_heads);
        let intermediate_size =
            usize_of(&v, &["intermediate_size", "n_inner"]).unwrap_or(4 * hidden_size);
        let vocab_size =
            usize_of(&v, &["vocab_size"]).ok_or_else(|| invalid("no vocab_size".into()))?;
        let context_length = usize_of(
            &v,
            &[
                "max_position_embeddings",
                "n_positions",
                "n_ctx",
                "seq_length",
                "max_sequence_length",
            ],
        )
        .unwrap_or(2048);
        let tied_embeddings = v
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(
                // GPT-2 and GPTBigCode tie by default and do not say so.
                matches!(model_type.as_str(), "gpt2" | "gpt_bigcode"),
            );
        let mut eos_token_ids = ids_of(v.get("eos_token_id"));
        let bos_token_id = v
            .get("bos_token_id")
            .and_then(Value::as_u64)
            .map(|n| n as u32);
        // generation_config.json wins where it exists: transformers' generate reads it.
        if let Ok(g) = read_json::<Value>(&dir.join("generation_config.json")) {
            let ids = ids_of(g.get("eos_token_id"));
            if !ids.is_empty() {
                eos_token_ids = ids;
            }
        }
        Ok(Self {
            model_type,
            layers,
            hidden_size,
            attention_heads,
            kv_heads,
            head_dim,
            intermediate_size,
            vocab_size,
            context_length,
            tied_embeddings,
            eos_token_ids,
            bos_token_id,
        })
    }

    /// Parameter count estimated from the shapes the config implies.
    pub fn parameters(&self) -> u64 {
        let h = self.hidden_size as u64;
        let q = (self.attention_heads * self.head_dim) as u64;
        let kv = (self.kv_heads * self.head_dim) as u64;
        let i = self.intermediate_size as u64;
        let v = self.vocab_size as u64;
        // Gated MLPs (Llama, Qwen, Mistral, Phi-3) have three matrices, GPT-2 style two.
        let mlp = if matches!(self.model_type.as_str(), "gpt2" | "gpt_bigcode") {
            2 * h * i
        } else {
            3 * h * i
        };
        let attention = h * q + 2 * h * kv + q * h;
        let per_layer = attention + mlp + 2 * h;
        let embeddings = if self.tied_embeddings {
            v * h
        } else {
            2 * v * h
        };
        let positions = if matches!(self.model_type.as_str(), "gpt2" | "gpt_bigcode") {
            self.context_length as u64 * h
        } else {
            0
        };
        embeddings + positions + self.layers as u64 * per_layer + h
    }
}

/// nib's own optional settings in `nib.json`, for models nib trained.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NibSettings {
    #[serde(default)]
    pub fim: FimSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FimSettings {
    /// The model was trained on the suffix-prefix-middle order too.
    #[serde(default)]
    pub spm: bool,
}

impl NibSettings {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let file = dir.join("nib.json");
        if file.exists() {
            read_json(&file)
        } else {
            Ok(Self::default())
        }
    }
}
