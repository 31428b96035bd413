//! Settings from `initializationOptions` and `workspace/didChangeConfiguration`.
//!
//! Both accept the keys under a `"nib"` object or at the top level:
//!
//! | key             | type                        | default | meaning |
//! |-----------------|-----------------------------|---------|---------|
//! | `model`         | string (folder or .onnx)    | `--model`, `$NIB_MODEL`, nib's model | model to load |
//! | `device`        | `auto`, `cpu`, `cuda`, `cuda:N` | `--device` (`auto`) | execution provider |
//! | `threads`       | integer ≥ 1 or null         | `--threads` (one per core) | ONNX Runtime intra-op threads |
//! | `maxTokens`     | integer 1–512               | 64 | longest suggestion, in tokens (single-line ones stop at 48); must leave the model 64 tokens of prompt (half of a smaller context) |
//! | `temperature`   | number 0–2                  | 0 | 0 is greedy |
//! | `debounceMs`    | integer 0–2000              | 10 | wait before automatic inline requests (and menu completions) |
//! | `enable`        | bool, or map language → bool (`"*"` for the rest) | true | where to suggest |
//! | `promptTokens`  | integer 64–16384            | 1024 | prompt budget for prefix, suffix and other files |
//! | `contextFiles`  | integer 0–16                | 3 | other open files of the same language offered as context |
//! | `review.enable` | bool                        | true | review documents on open, on save and on `nib.reviewFile` |
//! | `review.minConfidence` | number 0–1           | each rule's calibrated threshold (or nib.toml's) | findings the model is less sure of are not shown |
//!
//! `review` is an object; an update may carry either key alone, and
//! `"review": null` resets both.
//!
//! A key with a wrong type or value is reported (see [`Update::errors`]) and
//! the previous value stays; the other keys of the same update apply.
//! Unknown keys are ignored with a log line. `null` resets a key to its default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::engine::DeviceRequest;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `None`: nib's default model.
    pub model: Option<PathBuf>,
    pub device: DeviceRequest,
    pub threads: Option<usize>,
    pub max_tokens: usize,
    pub temperature: f32,
    pub debounce_ms: u64,
    pub enable: Enable,
    pub prompt_tokens: usize,
    pub context_files: usize,
    pub review: ReviewSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: None,
            device: DeviceRequest::Auto,
            threads: None,
            max_tokens: 64,
            temperature: 0.0,
            debounce_ms: 10,
            enable: Enable::default(),
            prompt_tokens: 1024,
            context_files: 3,
            review: ReviewSettings::default(),
        }
    }
}

/// The `review` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewSettings {
    pub enable: bool,
    /// `None`: the configuration's, else each rule's calibrated default.
    pub min_confidence: Option<f64>,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            enable: true,
            min_confidence: None,
        }
    }
}

/// Where completions are on: a default and per-language exceptions
/// (LSP `languageId`s).
#[derive(Debug, Clone, PartialEq)]
pub struct Enable {
    pub default: bool,
    pub languages: BTreeMap<String, bool>,
}

impl Default for Enable {
    fn default() -> Self {
        Self {
            default: true,
            languages: BTreeMap::new(),
        }
    }
}

impl Enable {
    pub fn allows(&self, language: &str) -> bool {
        self.languages
            .get(language)
            .copied()
            .unwrap_or(self.default)
    }
}

/// The result of applying settings to a [`Config`].
#[derive(Debug, Default)]
pub struct Update {
    /// One line per rejected key.
    pub errors: Vec<String>,
    /// Keys that were not recognised.
    pub unknown: Vec<String>,
    /// The model, device or threads changed: the engine must be reloaded.
    pub reload: bool,
}

impl Config {
    /// Applies `settings` (either `{"nib": {...}}` or the keys themselves).
    pub fn apply(&mut self, settings: &Value) -> Update {
        let mut update = Update::default();
        let map = match settings {
            Value::Null => return update,
            Value::Object(map) => match map.get("nib") {
                Some(Value::Object(inner)) => inner,
                Some(Value::Null) => return update,
                Some(_) => {
                    update.errors.push("`nib` must be an object".into());
                    return update;
                }
                None => map,
            },
            _ => {
                update.errors.push("settings must be a JSON object".into());
                return update;
            }
        };
        let before = (self.model.clone(), self.device, self.threads);
        for (key, value) in map {
            if let Err(e) = self.apply_key(key, value) {
                match e {
                    KeyError::Unknown => update.unknown.push(key.clone()),
                    KeyError::Invalid(message) => update.errors.push(format!("`{key}`: {message}")),
                    KeyError::Nested { unknown, errors } => {
                        update
                            .unknown
                            .extend(unknown.into_iter().map(|k| format!("{key}.{k}")));
                        update.errors.extend(
                            errors
                                .into_iter()
                                .map(|(k, message)| format!("`{key}.{k}`: {message}")),
                        );
                    }
                }
            }
        }
        update.reload = before != (self.model.clone(), self.device, self.threads);
        update
    }

    fn apply_key(&mut self, key: &str, value: &Value) -> Result<(), KeyError> {
        let defaults = Self::default();
        let null = value.is_null();
        match key {
            "model" => {
                self.model = if null {
                    None
                } else {
                    let s = value.as_str().ok_or_else(|| invalid("expected a path"))?;
                    let path = PathBuf::from(expand_home(s.trim()));
                    if s.trim().is_empty() {
                        None
                    } else if !path.exists() {
                        return Err(invalid(format!("{} does not exist", path.display())));
                    } else {
                        Some(path)
                    }
                }
            }
            "device" => {
                self.device = if null {
                    defaults.device
                } else {
                    value
                        .as_str()
                        .ok_or_else(|| invalid("expected auto, cpu, cuda or cuda:N"))?
                        .parse()
                        .map_err(invalid)?
                }
            }
            "threads" => {
                self.threads = if null {
                    None
                } else {
                    Some(integer(value, 1, 256)? as usize)
                }
            }
            "maxTokens" => {
                self.max_tokens = if null {
                    defaults.max_tokens
                } else {
                    integer(value, 1, 512)? as usize
                }
            }
            "temperature" => {
                self.temperature = if null {
                    defaults.temperature
                } else {
                    let t = value
                        .as_f64()
                        .filter(|t| (0.0..=2.0).contains(t))
                        .ok_or_else(|| invalid("expected a number from 0 to 2"))?;
                    t as f32
                }
            }
            "debounceMs" => {
                self.debounce_ms = if null {
                    defaults.debounce_ms
                } else {
                    integer(value, 0, 2000)?
                }
            }
            "promptTokens" => {
                self.prompt_tokens = if null {
                    defaults.prompt_tokens
                } else {
                    integer(value, 64, 16384)? as usize
                }
            }
            "contextFiles" => {
                self.context_files = if null {
                    defaults.context_files
                } else {
                    integer(value, 0, 16)? as usize
                }
            }
            "review" => self.review.apply(value)?,
            "enable" => {
                self.enable = match value {
                    Value::Null => Enable::default(),
                    Value::Bool(b) => Enable {
                        default: *b,
                        languages: BTreeMap::new(),
                    },
                    Value::Object(map) => enable_map(map)?,
                    _ => return Err(invalid("expected true, false or {\"language\": bool}")),
                }
            }
            _ => return Err(KeyError::Unknown),
        }
        Ok(())
    }
}

enum KeyError {
    Unknown,
    Invalid(String),
    /// Some keys of an object setting were unknown or invalid; the others applied.
    Nested {
        unknown: Vec<String>,
        errors: Vec<(String, String)>,
    },
}

impl ReviewSettings {
    /// Applies a `review` object key by key; `null` resets all of it.
    fn apply(&mut self, value: &Value) -> Result<(), KeyError> {
        let defaults = Self::default();
        let map = match value {
            Value::Null => {
                *self = defaults;
                return Ok(());
            }
            Value::Object(map) => map,
            _ => {
                return Err(invalid(
                    "expected {\"enable\": bool, \"minConfidence\": number}",
                ));
            }
        };
        let mut unknown = Vec::new();
        let mut errors = Vec::new();
        for (key, value) in map {
            match key.as_str() {
                "enable" => match value {
                    Value::Null => self.enable = defaults.enable,
                    Value::Bool(b) => self.enable = *b,
                    _ => errors.push((key.clone(), "expected true or false".to_owned())),
                },
                "minConfidence" => match value {
                    Value::Null => self.min_confidence = defaults.min_confidence,
                    _ => match value.as_f64().filter(|c| (0.0..=1.0).contains(c)) {
                        Some(c) => self.min_confidence = Some(c),
                        None => {
                            errors.push((key.clone(), "expected a number from 0 to 1".to_owned()))
                        }
                    },
                },
                _ => unknown.push(key.clone()),
            }
        }
        if unknown.is_empty() && errors.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Nested { unknown, errors })
        }
    }
}

fn invalid(message: impl Into<String>) -> KeyError {
    KeyError::Invalid(message.into())
}

fn integer(value: &Value, min: u64, max: u64) -> Result<u64, KeyError> {
    value
        .as_u64()
        .or_else(|| {
            // 30.0 from a JavaScript client is still 30.
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| invalid(format!("expected an integer from {min} to {max}")))
}

fn enable_map(map: &Map<String, Value>) -> Result<Enable, KeyError> {
    let mut enable = Enable::default();
    for (language, on) in map {
        let on = on
            .as_bool()
            .ok_or_else(|| invalid(format!("`{language}` must be true or false")))?;
        if language == "*" {
            enable.default = on;
        } else {
            enable.languages.insert(language.clone(), on);
        }
    }
    Ok(enable)
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => format!("{}/{rest}", home.to_string_lossy()),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_and_flat_settings_are_the_same() {
        let mut a = Config::default();
        let mut b = Config::default();
        let keys = json!({"maxTokens": 32, "debounceMs": 0, "temperature": 0.2, "device": "cpu"});
        assert!(a.apply(&json!({ "nib": keys.clone() })).errors.is_empty());
        assert!(b.apply(&keys).errors.is_empty());
        assert_eq!(a, b);
        assert_eq!(a.max_tokens, 32);
        assert_eq!(a.debounce_ms, 0);
        assert_eq!(a.device, DeviceRequest::Cpu);
    }

    #[test]
    fn invalid_keys_keep_the_previous_value_and_others_apply() {
        let mut c = Config::default();
        let update = c.apply(&json!({
            "maxTokens": -1, "temperature": "hot", "device": "tpu",
            "model": "/nonexistent/model", "debounceMs": 50, "colour": "red"
        }));
        assert_eq!(update.errors.len(), 4, "{:?}", update.errors);
        assert_eq!(update.unknown, vec!["colour".to_string()]);
        assert!(!update.reload);
        assert_eq!(c.max_tokens, 64);
        assert_eq!(c.device, DeviceRequest::Auto);
        assert_eq!(c.model, None);
        assert_eq!(c.debounce_ms, 50);
    }

    #[test]
    fn enable_takes_a_bool_or_a_language_map() {
        let mut c = Config::default();
        c.apply(&json!({"enable": {"*": false, "python": true}}));
        assert!(c.enable.allows("python"));
        assert!(!c.enable.allows("rust"));
        c.apply(&json!({"enable": false}));
        assert!(!c.enable.allows("python"));
        let update = c.apply(&json!({"enable": {"rust": "yes"}}));
        assert_eq!(update.errors.len(), 1);
        assert!(!c.enable.allows("rust"));
    }

    #[test]
    fn model_or_device_changes_ask_for_a_reload() {
        let mut c = Config::default();
        assert!(c.apply(&json!({"device": "cpu"})).reload);
        assert!(!c.apply(&json!({"device": "cpu"})).reload);
        assert!(!c.apply(&json!({"maxTokens": 10})).reload);
        let dir = env!("CARGO_MANIFEST_DIR");
        assert!(c.apply(&json!({ "model": dir })).reload);
        assert!(c.apply(&json!({ "model": null })).reload);
    }

    #[test]
    fn review_settings_apply_key_by_key() {
        let mut c = Config::default();
        assert!(c.review.enable);
        let update = c.apply(&json!({"nib": {"review": {"enable": false, "minConfidence": 0.8}}}));
        assert!(
            update.errors.is_empty() && !update.reload,
            "{:?}",
            update.errors
        );
        assert_eq!(
            c.review,
            ReviewSettings {
                enable: false,
                min_confidence: Some(0.8)
            }
        );
        // One key alone leaves the other; a bad value keeps the old one and
        // is reported under its full name.
        let update =
            c.apply(&json!({"review": {"minConfidence": 1.5, "enable": true, "depth": 3}}));
        assert_eq!(update.errors.len(), 1, "{:?}", update.errors);
        assert!(update.errors[0].contains("review.minConfidence"));
        assert_eq!(update.unknown, vec!["review.depth".to_string()]);
        assert!(c.review.enable);
        assert_eq!(c.review.min_confidence, Some(0.8));
        assert_eq!(c.apply(&json!({"review": "on"})).errors.len(), 1);
        assert!(c.apply(&json!({"review": null})).errors.is_empty());
        assert_eq!(c.review, ReviewSettings::default());
        assert_eq!(c.review.min_confidence, None, "each rule's own threshold");
    }

    #[test]
    fn non_objects_are_rejected() {
        let mut c = Config::default();
        assert_eq!(c.apply(&json!([1])).errors.len(), 1);
        assert_eq!(c.apply(&json!({"nib": 3})).errors.len(), 1);
        assert!(c.apply(&Value::Null).errors.is_empty());
        assert_eq!(c, Config::default());
    }
}
