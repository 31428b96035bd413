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
//! | `backend`       | `onnx`, `openai`, `llama.cpp` | `--backend` (`onnx`) | in-process ONNX Runtime, or an inference server; `model` then names the folder with its `tokenizer.json` and `config.json` |
//! | `server.url`    | `http(s)://HOST:PORT` or null | `--url` | the server's base URL, the only address contacted |
//! | `server.model`  | string or null              | none | model name sent to the server |
//! | `server.apiKeyEnv` | string or null           | none | environment variable of nib's process holding the API key |
//! | `server.timeoutMs` | integer 100–600000       | 30000 | longest one request may take |
//! | `server.fim`    | `nib`, `server`             | `nib` | who lays out fill-in-the-middle prompts: nib from `model`'s tokenizer, or the server (llama.cpp's `/infill`, with `backend: llama.cpp`) |
//!
//! `backend` and `server` should come from the user's own settings only
//! (VS Code: machine-scoped), never from a workspace's.
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

use crate::engine::{Api, Backend, DeviceRequest, Fim, RemoteSettings};

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
    /// `None`: ONNX Runtime in process; else the server API.
    pub api: Option<Api>,
    pub server: ServerSettings,
}

/// The `server` settings, kept whichever backend is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub timeout_ms: u64,
    pub fim: Fim,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            url: None,
            model: None,
            api_key_env: None,
            timeout_ms: RemoteSettings::DEFAULT_TIMEOUT.as_millis() as u64,
            fim: Fim::Nib,
        }
    }
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
            api: None,
            server: ServerSettings::default(),
        }
    }
}

impl Config {
    /// The defaults with the command line's backend.
    pub fn with_backend(backend: &Backend) -> Self {
        let mut config = Self::default();
        if let Backend::Remote(remote) = backend {
            config.api = Some(remote.api);
            config.server = ServerSettings {
                url: Some(remote.url.clone()),
                model: remote.model.clone(),
                api_key_env: remote.api_key_env.clone(),
                timeout_ms: remote.timeout.as_millis() as u64,
                fim: remote.fim,
            };
        }
        config
    }

    /// The engine the settings ask for; [`Config::apply`] keeps them valid.
    pub fn backend(&self) -> Backend {
        let (Some(api), Some(url)) = (self.api, &self.server.url) else {
            return Backend::Onnx;
        };
        Backend::Remote(RemoteSettings {
            api,
            url: url.clone(),
            model: self.server.model.clone(),
            api_key_env: self.server.api_key_env.clone(),
            timeout: std::time::Duration::from_millis(self.server.timeout_ms),
            fim: self.server.fim,
        })
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
        let before = (
            self.model.clone(),
            self.device,
            self.threads,
            self.backend(),
        );
        let backend_before = (self.api, self.server.clone());
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
        if self.api.is_some() && self.server.url.is_none() {
            update.errors.push(format!(
                "`backend`: {} needs `server.url`",
                self.api.map_or("", Api::name)
            ));
            (self.api, self.server) = backend_before;
        }
        update.reload = before
            != (
                self.model.clone(),
                self.device,
                self.threads,
                self.backend(),
            );
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
            "backend" => {
                self.api = match value {
                    Value::Null => None,
                    Value::String(s) => match s.as_str() {
                        "onnx" => None,
                        "openai" => Some(Api::OpenAi),
                        "llama.cpp" => Some(Api::LlamaCpp),
                        _ => return Err(invalid("expected onnx, openai or llama.cpp")),
                    },
                    _ => return Err(invalid("expected onnx, openai or llama.cpp")),
                }
            }
            "server" => self.server.apply(value)?,
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

impl ServerSettings {
    /// Applies a `server` object key by key; `null` resets all of it.
    fn apply(&mut self, value: &Value) -> Result<(), KeyError> {
        let map = match value {
            Value::Null => {
                *self = Self::default();
                return Ok(());
            }
            Value::Object(map) => map,
            _ => return Err(invalid("expected {\"url\": \"http://HOST:PORT\", …}")),
        };
        let mut unknown = Vec::new();
        let mut errors = Vec::new();
        let text = |value: &Value| match value {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.trim().to_owned())),
            _ => Err("expected a string or null".to_owned()),
        };
        for (key, value) in map {
            let applied = match key.as_str() {
                "url" => text(value).and_then(|url| {
                    self.url = url
                        .map(|u| crate::engine::check_url(&u).map_err(|e| e.to_string()))
                        .transpose()?;
                    Ok(())
                }),
                "model" => text(value).map(|m| self.model = m),
                "apiKeyEnv" => text(value).map(|v| self.api_key_env = v),
                "fim" => match value {
                    Value::Null => Ok(Fim::Nib),
                    Value::String(s) if s == "nib" => Ok(Fim::Nib),
                    Value::String(s) if s == "server" => Ok(Fim::Server),
                    _ => Err("expected nib or server".to_owned()),
                }
                .map(|fim| self.fim = fim),
                "timeoutMs" => if value.is_null() {
                    Ok(Self::default().timeout_ms)
                } else {
                    integer(value, 100, 600_000)
                        .map_err(|_| "expected an integer from 100 to 600000".to_owned())
                }
                .map(|ms| self.timeout_ms = ms),
                _ => {
                    unknown.push(key.clone());
                    Ok(())
                }
            };
            if let Err(message) = applied {
                errors.push((key.clone(), message));
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

    /// `{"a": {"b": value}}` for the dotted key `a.b`.
    fn nested(key: &str, value: Value) -> Value {
        key.rsplit('.').fold(value, |v, k| json!({ k: v }))
    }

    /// VS Code's manifest offers exactly the server's settings, with the
    /// server's ranges: each bound is accepted and the value past it refused.
    #[test]
    fn the_vscode_manifest_matches_the_settings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/editors/vscode/package.json");
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("package.json"))
                .expect("package.json is JSON");
        let props = manifest["contributes"]["configuration"]["properties"]
            .as_object()
            .expect("the manifest's settings");
        // The extension's own settings, which it does not send to the server.
        let client_only = [
            "serverPath",
            "serverArgs",
            "inlineCompletions.enable",
            "trace.server",
            "debug.eventLog",
        ];
        let mut checked = 0;
        for (name, schema) in props {
            let key = name.strip_prefix("nib.").expect("settings start with nib.");
            if client_only.contains(&key) {
                continue;
            }
            checked += 1;
            let applies = |v: Value| {
                let mut c = Config::default();
                // A URL first, so that the server backends are valid choices.
                c.apply(&json!({"server": {"url": "http://127.0.0.1:9"}}));
                let u = c.apply(&nested(key, v.clone()));
                assert!(u.unknown.is_empty(), "{name}: the server does not know it");
                u.errors.is_empty()
            };
            assert!(
                applies(schema["default"].clone()),
                "{name}: the default is refused"
            );
            let integer = schema["type"] == "integer"
                || schema["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("integer")));
            let step = if integer { 1.0 } else { 0.01 };
            let number = |x: f64| if integer { json!(x as i64) } else { json!(x) };
            if let Some(min) = schema["minimum"].as_f64() {
                assert!(applies(number(min)), "{name}: the minimum {min} is refused");
                assert!(
                    !applies(number(min - step)),
                    "{name}: below the minimum is accepted"
                );
            }
            if let Some(max) = schema["maximum"].as_f64() {
                assert!(applies(number(max)), "{name}: the maximum {max} is refused");
                assert!(
                    !applies(number(max + step)),
                    "{name}: above the maximum is accepted"
                );
            } else if schema["minimum"].is_number() {
                panic!("{name}: a minimum without a maximum");
            }
            if let Some(values) = schema["enum"].as_array() {
                for v in values {
                    assert!(applies(v.clone()), "{name}: {v} is refused");
                }
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                let re = regex::Regex::new(pattern).expect("the pattern compiles");
                for v in schema["examples"]
                    .as_array()
                    .expect("examples beside a pattern")
                {
                    let s = v.as_str().expect("string examples");
                    assert!(re.is_match(s) && applies(v.clone()), "{name}: {s}");
                }
                let bad: &[&str] = match key {
                    "device" => &["tpu", "cuda:", "cuda:x", "cuda:-1", "cpu0"],
                    _ => &["ftp://host", "127.0.0.1:8080"],
                };
                for bad in bad {
                    assert_eq!(re.is_match(bad), applies(json!(bad)), "{name}: {bad}");
                }
            }
        }
        // And the other way: every key `apply_key` takes is offered.
        for key in [
            "model",
            "device",
            "threads",
            "maxTokens",
            "temperature",
            "debounceMs",
            "promptTokens",
            "contextFiles",
            "enable",
            "backend",
            "review.enable",
            "review.minConfidence",
            "server.url",
            "server.model",
            "server.apiKeyEnv",
            "server.timeoutMs",
            "server.fim",
        ] {
            assert!(
                props.contains_key(&format!("nib.{key}")),
                "the manifest lacks nib.{key}"
            );
        }
        assert_eq!(
            checked, 17,
            "a setting in the manifest that this test does not list"
        );
    }

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
    fn a_server_backend_needs_a_url_and_reloads() {
        let mut c = Config::default();
        let update = c.apply(&json!({"backend": "openai"}));
        assert_eq!(update.errors.len(), 1, "{:?}", update.errors);
        assert!(!update.reload);
        assert_eq!(c.backend(), Backend::Onnx);
        let update = c.apply(&json!({
            "backend": "llama.cpp",
            "server": {"url": "http://127.0.0.1:8080/v1", "apiKeyEnv": "KEY", "timeoutMs": 500}
        }));
        assert!(
            update.errors.is_empty() && update.reload,
            "{:?}",
            update.errors
        );
        let Backend::Remote(remote) = c.backend() else {
            panic!("expected a server backend");
        };
        assert_eq!(remote.url, "http://127.0.0.1:8080");
        assert_eq!(remote.api_key_env.as_deref(), Some("KEY"));
        assert_eq!(remote.timeout.as_millis(), 500);
        let update = c.apply(&json!({"server": {"url": "file:///etc/passwd", "timeoutMs": 5}}));
        assert_eq!(update.errors.len(), 2, "{:?}", update.errors);
        assert!(!update.reload);
        assert!(c.apply(&json!({"backend": "onnx"})).reload);
        assert_eq!(c.backend(), Backend::Onnx);
        assert_eq!(c.server.url.as_deref(), Some("http://127.0.0.1:8080"));
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
