//! The remote backend: a model served by an inference server (vLLM, TGI,
//! llama.cpp's server, llama-cpp-python, Ollama) over its OpenAI-style
//! `/v1/completions` API, behind the same [`Engine`] trait as ONNX Runtime.
//!
//! nib still lays out every prompt itself, from the model's own tokenizer
//! (a local folder with `tokenizer.json` and `config.json`), so the FIM
//! templates, budgets and post-processing are the ones the local engine
//! uses. The prompt goes as text with its special tokens written out,
//! which every server accepts and tokenizes back into the same tokens
//! (each text piece lies between special tokens, so no merge crosses them).
//!
//! Generation streams: the worker thread reads the answer as it arrives, so
//! a superseded or cancelled request stops at once and its connection is
//! closed (the server then stops generating). At most [`IN_FLIGHT`]
//! requests to one server are open at a time, counting ones still closing.

mod completions;
mod http;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use self::completions::Streamed;
use self::http::Client;
use super::generate::{Fitted, earliest_stop, fit};
use super::{
    Control, Device, Engine, EngineError, FinishReason, GenerateOutput, GenerateRequest,
    InfillRequest, Timings, ms,
};
use crate::model::{ModelConfig, ModelError, ModelInfo, NibSettings, Tokenizer};
use crate::prompt::FimTokens;

/// Requests open to one server at once, counting those being closed.
const IN_FLIGHT: usize = 2;
/// How often a waiting worker looks at its cancel token.
const POLL: Duration = Duration::from_millis(5);

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI-style `/v1/completions` (vLLM, TGI, Ollama).
    OpenAi,
    /// The same endpoint on llama.cpp's samplers (llama.cpp's server,
    /// llama-cpp-python): their repeat penalty and tail cuts turned off,
    /// `cache_prompt`, `ignore_eos`, and a BOS before scored prompts.
    LlamaCpp,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::LlamaCpp => "llama.cpp",
        }
    }
}

/// Who lays out fill-in-the-middle prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fim {
    /// nib, from the model folder's tokenizer (its templates, budgets and
    /// token healing's cut).
    #[default]
    Nib,
    /// The server, from its own tokenizer (llama.cpp's `/infill`): for a
    /// model whose tokenizer.json nib does not have; nib's tokenizer then
    /// only sizes the parts.
    Server,
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    pub api: Api,
    /// Base URL (`http://host:port`, with or without `/v1`).
    pub url: String,
    /// The model name sent in requests (vLLM and Ollama need one).
    pub model: Option<String>,
    /// The environment variable holding the API key (sent as a bearer
    /// token); the key itself is never stored in settings or shown.
    pub api_key_env: Option<String>,
    /// Longest a request may take, from connecting to its last byte.
    pub timeout: Duration,
    pub fim: Fim,
}

impl RemoteSettings {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(api: Api, url: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            api,
            url: check_url(url)?,
            model: None,
            api_key_env: None,
            timeout: Self::DEFAULT_TIMEOUT,
            fim: Fim::Nib,
        })
    }
}

/// Accepts `http://` and `https://` URLs with a host and no credentials,
/// query or fragment; returns the base without `/v1` and trailing `/`.
pub fn check_url(url: &str) -> Result<String, RemoteError> {
    let bad = |reason: &str| RemoteError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: ureq::http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("expected http://HOST:PORT or https://HOST")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL would be logged; name an environment variable for the API key",
        ));
    }
    if uri.query().is_some() {
        return Err(bad("a query is not expected"));
    }
    let path = uri.path().trim_end_matches('/');
    let path = path.strip_suffix("/v1").unwrap_or(path);
    Ok(format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        authority,
        path
    ))
}

/// What can go wrong talking to a server; every message names it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    #[error("the inference server at {url} cannot be reached ({reason}); is it running?")]
    Unreachable { url: String, reason: String },
    #[error("the inference server at {url} did not answer in time")]
    Timeout { url: String },
    #[error("the inference server at {url} answered {status}: {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("the inference server at {url} sent an answer nib cannot use: {message}")]
    BadResponse { url: String, message: String },
    #[error(
        "the inference server at {url} does not return the log-probabilities of given text, \
         which review needs (servers that do: vLLM, llama-cpp-python with --logits_all true)"
    )]
    NoLogprobs { url: String },
    #[error(
        "review needs nib to lay out the prompts it scores, from the model's tokenizer; \
         the server at {url} is set to lay them out itself (fim: server)"
    )]
    NoTokenizer { url: String },
    #[error(
        "the server lays out prompts (fim: server) only with the llama.cpp API \
         (llama.cpp's /infill): use --backend llama.cpp"
    )]
    InfillNeedsLlamaCpp,
    #[error("the API key's environment variable {0} is not set")]
    MissingKey(String),
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// A model on an inference server.
pub struct RemoteEngine {
    client: Client,
    settings: RemoteSettings,
    info: ModelInfo,
    tokenizer: Tokenizer,
    fim: Option<FimTokens>,
    /// The text of the model's BOS token (`config.json`'s `bos_token_id`).
    bos: Option<String>,
    slots: Arc<Slots>,
    source_files: Vec<PathBuf>,
}

impl RemoteEngine {
    /// `path` is the folder with the model's `tokenizer.json` and
    /// `config.json` (or a file inside it); no weights are read. The
    /// server is not contacted: it may start after nib does.
    pub fn load(path: &Path, settings: &RemoteSettings) -> Result<Self, EngineError> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new("/")).to_path_buf()
        } else if path.is_dir() {
            path.to_path_buf()
        } else {
            return Err(ModelError::MissingDir(path.to_path_buf()).into());
        };
        if settings.fim == Fim::Server && settings.api != Api::LlamaCpp {
            return Err(RemoteError::InfillNeedsLlamaCpp.into());
        }
        let config = ModelConfig::load(&dir)?;
        let tokenizer = Tokenizer::load(&dir)?;
        let nib = NibSettings::load(&dir)?;
        let api_key = match &settings.api_key_env {
            Some(name) => Some(
                std::env::var(name)
                    .ok()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| RemoteError::MissingKey(name.clone()))?,
            ),
            None => None,
        };
        let fim = FimTokens::detect(&tokenizer);
        let info = ModelInfo {
            dtype: "server".into(),
            ..ModelInfo::from_config(
                PathBuf::from(&settings.url),
                &config,
                fim.as_ref(),
                nib.fim.spm,
            )
        };
        let source_files = crate::engine::ort::MODEL_JSON_FILES
            .iter()
            .map(|name| dir.join(name))
            .filter(|p| p.exists())
            .collect();
        Ok(Self {
            client: Client::new(&settings.url, api_key, settings.timeout),
            settings: settings.clone(),
            info,
            bos: config.bos_token_id.and_then(|id| tokenizer.id_to_token(id)),
            tokenizer,
            fim,
            slots: Arc::new(Slots::default()),
            source_files,
        })
    }

    fn prompt(&self, tokens: &[u32]) -> String {
        self.tokenizer.decode_with_special(tokens)
    }

    /// Stop strings: the request's and the text of its stop tokens.
    fn stops(&self, request: &GenerateRequest) -> Vec<String> {
        let mut stops = request.stop.clone();
        stops.extend(
            request
                .stop_tokens
                .iter()
                .chain(&self.info.eos_token_ids)
                .filter_map(|&id| self.tokenizer.id_to_token(id)),
        );
        stops.sort();
        stops.dedup();
        stops
    }

    /// Streams one request's text after `start`, cut at `stops`, asking
    /// `control` after every piece and while waiting; `None` when the
    /// caller gave up before a slot was free. Returns the text, why it
    /// ended, and when the first piece and the end came.
    fn stream(
        &self,
        path: &'static str,
        body: serde_json::Value,
        stops: &[String],
        start: &str,
        control: &mut dyn Control,
        started: Instant,
    ) -> Result<Option<(String, FinishReason, Duration, Duration)>, EngineError> {
        tracing::debug!(%body, path, "server request");
        let Some(slot) = Slots::acquire(&self.slots, control, start) else {
            return Ok(None);
        };
        let events = spawn_stream(self.client.clone(), path, body, slot);
        let mut text = start.to_owned();
        let mut first_at = None;
        let deadline = started + self.settings.timeout;
        let finish_reason = loop {
            let event = match events.recv_timeout(POLL) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    if !control.keep_going(&text) {
                        break FinishReason::Cancelled;
                    }
                    if Instant::now() > deadline {
                        return Err(RemoteError::Timeout {
                            url: self.client.base().to_owned(),
                        }
                        .into());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break FinishReason::Eos,
            };
            match event {
                Streamed::Text(piece) => {
                    first_at.get_or_insert_with(|| started.elapsed());
                    text.push_str(&piece);
                    if let Some(cut) = earliest_stop(&text, stops) {
                        text.truncate(cut);
                        break FinishReason::Stop;
                    }
                    if !control.keep_going(&text) {
                        break FinishReason::Cancelled;
                    }
                }
                Streamed::Finished(reason) => break reason,
                Streamed::Failed(e) => return Err(e.into()),
            }
        };
        // Dropping the receiver makes the reader close the connection.
        drop(events);
        let done = started.elapsed();
        Ok(Some((text, finish_reason, first_at.unwrap_or(done), done)))
    }
}

impl From<RemoteError> for EngineError {
    fn from(e: RemoteError) -> Self {
        Self::Remote(e)
    }
}

impl Engine for RemoteEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn device(&self) -> Device {
        Device::Server
    }

    fn fim(&self) -> Option<&FimTokens> {
        self.fim.as_ref()
    }

    fn source_files(&self) -> &[PathBuf] {
        &self.source_files
    }

    /// `GET /v1/models`: the server is up and speaks the API.
    fn check_server(&self) -> Option<Result<Vec<String>, EngineError>> {
        Some(
            self.client
                .get_json("/v1/models")
                .map(|answer| completions::model_names(&answer))
                .map_err(EngineError::from),
        )
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError> {
        // Token healing needs control over the first token's choice, which
        // the API does not give: the healed text goes back into the prompt.
        let mut healed = request.clone();
        if !request.required_prefix.is_empty() {
            let tail = self
                .tokenizer
                .encode(&request.required_prefix)
                .map_err(|e| EngineError::BadOutput(format!("tokenizer: {e}")))?;
            healed.prompt.extend(tail);
        }
        let Fitted {
            prompt,
            truncated,
            max_new,
        } = fit(&healed, self.info.context_length)?;
        let started = Instant::now();
        let nothing = |finish_reason| GenerateOutput {
            tokens: Vec::new(),
            text: request.required_prefix.clone(),
            finish_reason,
            prompt_tokens: prompt.len(),
            truncated_tokens: truncated,
            timings: Timings::default(),
        };
        if max_new == 0 {
            return Ok(nothing(FinishReason::Length));
        }
        if !control.keep_going(&request.required_prefix) {
            return Ok(nothing(FinishReason::Cancelled));
        }
        let stops = self.stops(request);
        let body = completions::generate_body(
            &self.settings,
            &self.prompt(prompt),
            max_new,
            &request.sampling,
            &stops,
            request.ignore_eos,
        );
        let Some(streamed) = self.stream(
            "/v1/completions",
            body,
            &stops,
            &request.required_prefix,
            control,
            started,
        )?
        else {
            return Ok(nothing(FinishReason::Cancelled));
        };
        let (text, finish_reason, first, done) = streamed;
        let generated = text.strip_prefix(&request.required_prefix).unwrap_or(&text);
        let tokens = self.tokenizer.encode(generated).unwrap_or_default();
        let finish_reason = match finish_reason {
            FinishReason::MaxTokens if max_new < request.max_tokens => FinishReason::Length,
            other => other,
        };
        Ok(GenerateOutput {
            tokens,
            text,
            finish_reason,
            prompt_tokens: prompt.len(),
            truncated_tokens: truncated,
            timings: Timings {
                prefill_ms: ms(first),
                decode_ms: ms(done.saturating_sub(first)),
                prefill_tokens: prompt.len(),
                reused_tokens: 0,
                guessed_tokens: 0,
            },
        })
    }

    fn infill(
        &mut self,
        request: &InfillRequest<'_>,
        control: &mut dyn Control,
    ) -> Option<Result<GenerateOutput, EngineError>> {
        if self.settings.fim != Fim::Server {
            return None;
        }
        let started = Instant::now();
        let body = completions::infill_body(&self.settings, request);
        let stops: Vec<String> = Vec::new();
        Some(
            self.stream("/infill", body, &stops, "", control, started)
                .map(|streamed| {
                    let (text, finish_reason, first, done) = streamed.unwrap_or((
                        String::new(),
                        FinishReason::Cancelled,
                        started.elapsed(),
                        started.elapsed(),
                    ));
                    GenerateOutput {
                        tokens: self.tokenizer.encode(&text).unwrap_or_default(),
                        text,
                        finish_reason,
                        prompt_tokens: 0,
                        truncated_tokens: 0,
                        timings: Timings {
                            prefill_ms: ms(first),
                            decode_ms: ms(done.saturating_sub(first)),
                            ..Timings::default()
                        },
                    }
                }),
        )
    }

    fn score(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
        if self.settings.fim == Fim::Server {
            return Err(RemoteError::NoTokenizer {
                url: self.client.base().to_owned(),
            }
            .into());
        }
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        continuations
            .iter()
            .map(|continuation| {
                let whole: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
                if whole.len() >= self.info.context_length {
                    return Err(EngineError::PromptTooLong {
                        prompt: whole.len(),
                        context: self.info.context_length,
                    });
                }
                let mut text = self.prompt(&whole);
                if self.settings.api == Api::LlamaCpp {
                    // llama-cpp-python pairs each echoed token with the
                    // right log-probability only after a BOS; any server
                    // scores the text after it the same.
                    if let Some(bos) = self.bos.as_deref() {
                        text.insert_str(0, bos);
                    }
                }
                let body = completions::score_body(&self.settings, &text);
                let answer = self.client.post_json("/v1/completions", &body)?;
                Ok(completions::continuation_logprob(
                    &answer,
                    continuation.len(),
                    self.client.base(),
                )?)
            })
            .collect()
    }
}

/// Runs one streamed request on a thread of its own and passes its pieces
/// on; it ends (closing the connection) when the receiver is dropped and
/// the next piece arrives, or when the answer ends.
fn spawn_stream(
    client: Client,
    path: &'static str,
    body: serde_json::Value,
    slot: Slot,
) -> mpsc::Receiver<Streamed> {
    let (tx, rx) = mpsc::channel();
    let url = client.base().to_owned();
    let spawned = std::thread::Builder::new()
        .name("nib-http".into())
        .spawn(move || {
            let _slot = slot;
            completions::stream(&client, path, &body, |event| tx.send(event).is_ok());
        });
    if let Err(e) = spawned {
        // `rx` then reports the sender gone: answer with the reason instead.
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(Streamed::Failed(RemoteError::BadResponse {
            url,
            message: format!("cannot start a request thread: {e}"),
        }));
        return rx;
    }
    rx
}

/// Counts the requests open to a server.
#[derive(Default)]
struct Slots {
    open: Mutex<usize>,
    freed: Condvar,
}

/// One open request; dropping it frees the slot.
struct Slot(Arc<Slots>);

impl Slots {
    /// Waits for a free slot, looking at `control` meanwhile; `None` when
    /// the caller gave up.
    fn acquire(slots: &Arc<Slots>, control: &mut dyn Control, text: &str) -> Option<Slot> {
        let mut open = slots.open.lock().unwrap_or_else(PoisonError::into_inner);
        while *open >= IN_FLIGHT {
            if !control.keep_going(text) {
                return None;
            }
            open = slots
                .freed
                .wait_timeout(open, POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *open += 1;
        Some(Slot(slots.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        *open = open.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalised() {
        assert_eq!(
            check_url("http://127.0.0.1:8080").expect("valid"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_url("http://127.0.0.1:8080/v1/").expect("valid"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_url("https://gpu.example/llm/v1").expect("valid"),
            "https://gpu.example/llm"
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:8080",
            "http://user:pw@host",
            "http://host/?q=1",
            "",
            "http://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
