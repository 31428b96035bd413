//! A model folder in the layout Hugging Face's ONNX exporter writes:
//! `model.onnx` (plus external data), `config.json`, `tokenizer.json`,
//! `generation_config.json`, `tokenizer_config.json`/`special_tokens_map.json`,
//! and optionally nib's own `nib.json` (FIM settings).

mod config;
mod embedded;
mod tokenizer;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use self::config::{ModelConfig, NibSettings};
pub use self::tokenizer::{TextStream, Tokenizer};
use crate::prompt::FimStyle;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder {0} does not exist")]
    MissingDir(PathBuf),
    #[error("no ONNX graph in {0}: expected model.onnx (or exactly one *.onnx file)")]
    MissingGraph(PathBuf),
    #[error(
        "{dir} holds several ONNX graphs ({names}); pass the one to use as --model DIR/NAME.onnx"
    )]
    AmbiguousGraph { dir: PathBuf, names: String },
    #[error(
        "{file} is missing: a model folder needs it (the exporter writes it beside model.onnx)"
    )]
    MissingFile { file: PathBuf },
    #[error("cannot read {file}: {error}")]
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{file} is not valid: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error(
        "the tokenizer's vocabulary ({tokenizer} tokens) does not fit the model's ({model} logits): \
         tokenizer.json belongs to another model"
    )]
    VocabMismatch { tokenizer: usize, model: usize },
}

/// The files of one model, found and checked but not loaded.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub graph: PathBuf,
}

impl ModelFiles {
    /// Accepts a model folder or the path of an `.onnx` file inside one.
    /// The Hugging Face Hub's layout, the graphs in `onnx/` below the
    /// folder with `config.json` and the tokenizer, is accepted both ways.
    pub fn locate(path: &Path) -> Result<Self, ModelError> {
        if path.is_file() {
            let parent = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let dir = match parent.parent() {
                Some(up)
                    if !parent.join("config.json").is_file()
                        && up.join("config.json").is_file() =>
                {
                    up.to_path_buf()
                }
                _ => parent,
            };
            return Ok(Self {
                dir,
                graph: path.to_path_buf(),
            });
        }
        if !path.is_dir() {
            return Err(ModelError::MissingDir(path.to_path_buf()));
        }
        for preferred in [path.join("model.onnx"), path.join("onnx/model.onnx")] {
            if preferred.is_file() {
                return Ok(Self {
                    dir: path.to_path_buf(),
                    graph: preferred,
                });
            }
        }
        let entries = std::fs::read_dir(path).map_err(|error| ModelError::Io {
            file: path.to_path_buf(),
            error,
        })?;
        let mut graphs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            // Regular files only: opening a FIFO would block the load.
            .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file())
            .collect();
        graphs.sort();
        match graphs.len() {
            0 => Err(ModelError::MissingGraph(path.to_path_buf())),
            1 => Ok(Self {
                dir: path.to_path_buf(),
                graph: graphs.remove(0),
            }),
            _ => Err(ModelError::AmbiguousGraph {
                dir: path.to_path_buf(),
                names: graphs
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What nib knows about a loaded model, for `nib doctor` and status reports.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub architecture: String,
    pub parameters: u64,
    pub layers: usize,
    pub hidden_size: usize,
    pub attention_heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub fim: FimStyle,
    /// Whether the suffix-prefix-middle order may be used.
    pub fim_spm: bool,
    /// Element type of the graph's logits and KV cache: "float32" or "float16".
    pub dtype: String,
    /// Whether the graph holds int8-quantized weights.
    pub quantized: bool,
    /// Whether keys and values are updated in place in buffers of the
    /// context's length (else copied each step).
    pub in_place_kv: bool,
    /// Whether a run computes only the logits of the positions it needs
    /// (the graph takes `logits_to_keep`), else of every position.
    pub logits_to_keep: bool,
    pub eos_token_ids: Vec<u32>,
}

impl ModelInfo {
    /// What `config.json` and the tokenizer's FIM markers say, as for an
    /// fp32 graph with copied keys and values; engines set how they run it.
    pub fn from_config(
        path: PathBuf,
        config: &ModelConfig,
        fim: Option<&crate::prompt::FimTokens>,
        spm: bool,
    ) -> Self {
        Self {
            path,
            architecture: config.model_type.clone(),
            parameters: config.parameters(),
            layers: config.layers,
            hidden_size: config.hidden_size,
            attention_heads: config.attention_heads,
            kv_heads: config.kv_heads,
            head_dim: config.head_dim,
            vocab_size: config.vocab_size,
            context_length: config.context_length,
            fim: fim.map_or(FimStyle::None, |f| f.style),
            fim_spm: spm && fim.is_some(),
            dtype: "float32".into(),
            quantized: false,
            in_place_kv: false,
            logits_to_keep: false,
            eos_token_ids: config.eos_token_ids.clone(),
        }
    }
}

/// Reads and parses a JSON file of the model folder.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, ModelError> {
    let text = crate::files::read_text(file, crate::files::MODEL_JSON_LIMIT).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                file: file.to_path_buf(),
            }
        } else {
            ModelError::Io {
                file: file.to_path_buf(),
                error,
            }
        }
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Invalid {
        file: file.to_path_buf(),
        message: e.to_string(),
    })
}

/// Where nib looks for its own model when no `--model` or `NIB_MODEL` is
/// given: the model of the release bundle this binary came in
/// (`../share/nib/models/default` beside the executable: an unpacked or
/// installed bundle, or the .vsix's server), then the per-user folder
/// (where `install.sh` puts it), then the model compiled into this binary,
/// then the source tree it was built from.
pub fn default_model_dir() -> anyhow::Result<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let bundle = exe_dir
        .as_deref()
        .and_then(Path::parent)
        .map(|prefix| prefix.join("share/nib/models/default"));
    let user =
        directories::ProjectDirs::from("", "", "nib").map(|d| d.data_dir().join("models/default"));
    let has_model = |p: &&PathBuf| p.join("config.json").is_file();
    if let Some(dir) = bundle.iter().chain(&user).find(has_model) {
        return Ok(dir.clone());
    }
    match embedded::dir() {
        Some(Ok(dir)) => return Ok(dir),
        Some(Err(e)) => tracing::warn!("cannot unpack the embedded model: {e}"),
        None => {}
    }
    let mut candidates: Vec<PathBuf> = bundle.into_iter().chain(user).collect();
    // target/{debug,release}/nib in a checkout.
    candidates.extend(exe_dir.map(|d| d.join("../../models/default")));
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/default"));
    candidates.iter().find(has_model).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no model given and nib's default model was not found; pass --model DIR or set NIB_MODEL. Searched: {}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}
