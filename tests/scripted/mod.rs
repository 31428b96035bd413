//! The language server in this process, on in-memory streams, with an
//! engine whose every step the test decides: each model load, generated
//! piece of text and scoring call waits for the test's [`Action`], and
//! reports a [`Call`] when it starts. Scheduling tests (debounce,
//! supersession, cancellation, review preemption, publishing) are exact
//! this way: nothing sleeps, nothing races. Time is tokio's paused clock
//! (`start_paused`), so a debounce passes as soon as nothing else can run.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use nib::engine::{
    Control, Device, Engine, EngineError, FinishReason, GenerateOutput, GenerateRequest, Timings,
};
use nib::lsp::ServeOptions;
use nib::lsp::worker::{LoadRequest, Loaded, Loader};
use nib::model::{ModelInfo, Tokenizer};
use nib::prompt::{FimStyle, FimTokens};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the scripted engine is doing, as the test sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// A model load started; it waits for [`Action::Load`].
    Load { model: Option<PathBuf> },
    /// A generation started with a prompt of this many tokens; each piece
    /// waits for an [`Action::Piece`] or [`Action::End`].
    Generate { prompt_tokens: usize },
    /// The caller's control was consulted after a piece: whether it let
    /// the generation go on.
    Checked { keep_going: bool },
    /// A scoring call of this many continuations; waits for [`Action::Scores`].
    Score { continuations: usize },
    /// The engine was told to forget its caches (after a panic).
    Reset,
}

/// What the test lets the engine do next.
#[derive(Debug, Clone)]
pub enum Action {
    /// Finish the load: ready, or failed with this message.
    Load(Result<(), String>),
    /// Generate this text as the next step.
    Piece(String),
    /// End the generation (EOS).
    End,
    /// Answer a scoring call: the written member's score, then every
    /// alternative's.
    Scores { written: f64, others: f64 },
    /// Fail the running call.
    Fail(String),
    /// Panic in the running call, as a bug in the engine would.
    Panic,
}

/// The test's end of the script.
pub struct Script {
    actions: std_mpsc::Sender<Action>,
    calls: mpsc::UnboundedReceiver<Call>,
}

impl Script {
    pub fn act(&self, action: Action) {
        self.actions.send(action).expect("the engine is gone");
    }

    /// The engine's next call.
    pub async fn next(&mut self) -> Call {
        self.calls.recv().await.expect("the engine is gone")
    }

    /// Expects the engine's next call to be `want`.
    pub async fn expect(&mut self, want: Call) {
        let got = self.next().await;
        assert_eq!(got, want);
    }

    /// Expects a generation to start, and returns its prompt length.
    pub async fn expect_generate(&mut self) -> usize {
        match self.next().await {
            Call::Generate { prompt_tokens } => prompt_tokens,
            other => panic!("expected a generation, got {other:?}"),
        }
    }

    /// Lets the running generation produce `text`, and returns whether the
    /// server let it go on.
    pub async fn piece(&mut self, text: &str) -> bool {
        self.act(Action::Piece(text.to_owned()));
        match self.next().await {
            Call::Checked { keep_going } => keep_going,
            other => panic!("expected a check after a piece, got {other:?}"),
        }
    }

    /// Answers the next `n` scoring calls with the same scores.
    pub async fn score(&mut self, n: usize, written: f64, others: f64) {
        for _ in 0..n {
            match self.next().await {
                Call::Score { .. } => self.act(Action::Scores { written, others }),
                other => panic!("expected a scoring call, got {other:?}"),
            }
        }
    }
}

/// The engine's end of the script, shared by every engine the loader makes.
#[derive(Clone)]
struct Channel {
    actions: Arc<Mutex<std_mpsc::Receiver<Action>>>,
    calls: mpsc::UnboundedSender<Call>,
}

impl Channel {
    fn report(&self, call: Call) {
        let _ = self.calls.send(call);
    }

    /// Blocks the worker thread until the test acts.
    fn wait(&self) -> Action {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        // The test ended without acting: end whatever runs.
        actions.recv().unwrap_or(Action::End)
    }
}

/// A real tokenizer (the tiny test model's, with StarCoder FIM markers)
/// and scripted output.
pub struct ScriptedEngine {
    info: ModelInfo,
    tokenizer: Tokenizer,
    fim: Option<FimTokens>,
    channel: Channel,
    source_files: Vec<PathBuf>,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/llama")
}

impl ScriptedEngine {
    fn new(channel: Channel, model: &Path) -> Self {
        let tokenizer = Tokenizer::load(&fixture_dir()).expect("the fixture tokenizer");
        let fim = FimTokens::detect(&tokenizer);
        let info = ModelInfo {
            path: model.to_path_buf(),
            architecture: "scripted".into(),
            parameters: 0,
            layers: 1,
            hidden_size: 8,
            attention_heads: 1,
            kv_heads: 1,
            head_dim: 8,
            vocab_size: tokenizer.id_bound(),
            context_length: 2048,
            fim: fim.as_ref().map_or(FimStyle::None, |f| f.style),
            fim_spm: false,
            dtype: "float32".into(),
            quantized: false,
            in_place_kv: false,
            logits_to_keep: false,
            eos_token_ids: Vec::new(),
        };
        // A model folder's `model.onnx`, where the test made one, stands
        // for the files a real engine reads.
        let source_files = Some(model.join("model.onnx"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect();
        Self {
            info,
            tokenizer,
            fim,
            channel,
            source_files,
        }
    }
}

impl Engine for ScriptedEngine {
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
        Device::Cpu
    }

    fn fim(&self) -> Option<&FimTokens> {
        self.fim.as_ref()
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        control: &mut dyn Control,
    ) -> Result<GenerateOutput, EngineError> {
        self.channel.report(Call::Generate {
            prompt_tokens: request.prompt.len(),
        });
        // Token healing: the real engine's first tokens agree with the
        // required prefix; here it is simply written first.
        let mut text = request.required_prefix.clone();
        let finish_reason = loop {
            match self.channel.wait() {
                Action::Piece(piece) => {
                    text.push_str(&piece);
                    let keep_going = control.keep_going(&text);
                    self.channel.report(Call::Checked { keep_going });
                    if !keep_going {
                        break FinishReason::Cancelled;
                    }
                }
                Action::End => break FinishReason::Eos,
                Action::Fail(message) => return Err(EngineError::BadOutput(message)),
                Action::Panic => panic!("a scripted panic"),
                other => {
                    return Err(EngineError::BadOutput(format!(
                        "the script sent {other:?} to a generation"
                    )));
                }
            }
        };
        let tokens = self.tokenizer.encode(&text).unwrap_or_default();
        Ok(GenerateOutput {
            tokens,
            text,
            finish_reason,
            prompt_tokens: request.prompt.len(),
            truncated_tokens: 0,
            timings: Timings {
                prefill_tokens: request.prompt.len(),
                ..Timings::default()
            },
        })
    }

    fn reset(&mut self) {
        self.channel.report(Call::Reset);
    }

    fn score(
        &mut self,
        _prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>, EngineError> {
        self.channel.report(Call::Score {
            continuations: continuations.len(),
        });
        match self.channel.wait() {
            Action::Scores { written, others } => Ok(std::iter::once(written)
                .chain(std::iter::repeat(others))
                .take(continuations.len())
                .collect()),
            Action::Fail(message) => Err(EngineError::BadOutput(message)),
            other => Err(EngineError::BadOutput(format!(
                "the script sent {other:?} to a scoring call"
            ))),
        }
    }
}

/// A loader that makes scripted engines, each load waiting for [`Action::Load`].
fn scripted_loader(channel: Channel) -> Loader {
    Box::new(move |request: &LoadRequest| {
        channel.report(Call::Load {
            model: request.model.clone(),
        });
        match channel.wait() {
            Action::Load(Ok(())) => {
                let model = request
                    .model
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("scripted"));
                Ok(Loaded {
                    engine: Box::new(ScriptedEngine::new(channel.clone(), &model)),
                    model: model.display().to_string(),
                    note: None,
                })
            }
            Action::Load(Err(message)) => Err(anyhow::anyhow!(message)),
            other => Err(anyhow::anyhow!("the script sent {other:?} to a load")),
        }
    })
}

/// Aborts the test process when a test runs far past any reasonable time:
/// a scheduling bug shows as a hang, and tests never wait with timeouts of
/// their own (the clock is paused).
pub struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    pub fn new(name: &'static str) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            for _ in 0..1200 {
                std::thread::sleep(Duration::from_millis(100));
                if flag.load(Ordering::Acquire) {
                    return;
                }
            }
            eprintln!("{name}: no progress for 120 s; aborting");
            std::process::abort();
        });
        Self(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// An LSP client on the server's in-memory streams. A reader task answers
/// the server's own requests at once (`workspace/configuration` with
/// [`Client::configuration`]) and queues everything else in order.
pub struct Client {
    writer: Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>,
    incoming: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
    responses: HashMap<i64, Value>,
    /// Notifications from the server, in order.
    pub notifications: Vec<Value>,
    /// Requests from the server, in order (already answered).
    pub server_requests: Arc<Mutex<Vec<Value>>>,
    /// What `workspace/configuration` answers.
    pub configuration: Arc<Mutex<Value>>,
    server: Option<JoinHandle<bool>>,
    _watchdog: Watchdog,
}

async fn write_frame(writer: &tokio::sync::Mutex<WriteHalf<DuplexStream>>, message: &Value) {
    let body = message.to_string();
    let mut w = writer.lock().await;
    let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
    w.write_all(frame.as_bytes())
        .await
        .expect("write to the server");
}

/// Reads one Content-Length frame.
async fn read_frame(reader: &mut ReadHalf<DuplexStream>) -> Option<Value> {
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if reader.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        header.push(byte[0]);
    }
    let header = String::from_utf8(header).expect("ASCII header");
    let length: usize = header
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(serde_json::from_slice(&body).expect("JSON from the server"))
}

/// Starts the server with a scripted engine; `initialize` and `initialized`
/// are sent, and the first load is under way (it waits for the script).
pub async fn start(name: &'static str, capabilities: Value, options: Value) -> (Client, Script) {
    start_with(name, ServeOptions::default(), capabilities, options).await
}

pub async fn start_with(
    name: &'static str,
    serve_options: ServeOptions,
    capabilities: Value,
    options: Value,
) -> (Client, Script) {
    let watchdog = Watchdog::new(name);
    let (actions_tx, actions_rx) = std_mpsc::channel();
    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let channel = Channel {
        actions: Arc::new(Mutex::new(actions_rx)),
        calls: calls_tx,
    };
    let (client_side, server_side) = tokio::io::duplex(16 << 20);
    let (server_read, server_write) = tokio::io::split(server_side);
    let server = tokio::spawn(async move {
        nib::lsp::serve(
            server_read,
            server_write,
            serve_options,
            scripted_loader(channel),
        )
        .await
        .expect("serve")
    });
    let (mut reader, writer) = tokio::io::split(client_side);
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    let (incoming_tx, incoming) = mpsc::unbounded_channel();
    let server_requests = Arc::new(Mutex::new(Vec::new()));
    let configuration = Arc::new(Mutex::new(Value::Null));
    {
        let writer = writer.clone();
        let server_requests = server_requests.clone();
        let configuration = configuration.clone();
        tokio::spawn(async move {
            while let Some(message) = read_frame(&mut reader).await {
                if let (Some(id), Some(method)) = (message.get("id"), message.get("method")) {
                    let result = match method.as_str() {
                        Some("workspace/configuration") => {
                            json!([configuration.lock().expect("lock").clone()])
                        }
                        _ => Value::Null,
                    };
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    server_requests.lock().expect("lock").push(message);
                    write_frame(&writer, &reply).await;
                } else if incoming_tx.send(message).is_err() {
                    return;
                }
            }
        });
    }
    let mut client = Client {
        writer,
        incoming,
        next_id: 1,
        responses: HashMap::new(),
        notifications: Vec::new(),
        server_requests,
        configuration,
        server: Some(server),
        _watchdog: watchdog,
    };
    client
        .call(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": capabilities,
                "initializationOptions": options,
            }),
        )
        .await;
    client.notify("initialized", json!({})).await;
    let script = Script {
        actions: actions_tx,
        calls: calls_rx,
    };
    (client, script)
}

/// Starts the server and lets its first load succeed; returns once the
/// server says the model is ready.
pub async fn ready(name: &'static str, capabilities: Value, options: Value) -> (Client, Script) {
    let (mut client, mut script) = start(name, capabilities, options).await;
    script.expect(Call::Load { model: None }).await;
    script.act(Action::Load(Ok(())));
    client.wait_ready().await;
    (client, script)
}

impl Client {
    pub async fn send(&mut self, message: &Value) {
        write_frame(&self.writer, message).await;
    }

    /// Bytes as they are, framed or not.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.expect("write to the server");
    }

    pub async fn request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    async fn pump(&mut self) {
        let message = self
            .incoming
            .recv()
            .await
            .expect("the server closed its output");
        match message.get("id").and_then(Value::as_i64) {
            Some(id) => {
                self.responses.insert(id, message);
            }
            None => self.notifications.push(message),
        }
    }

    /// The whole response message to request `id`.
    pub async fn response(&mut self, id: i64) -> Value {
        loop {
            if let Some(r) = self.responses.remove(&id) {
                return r;
            }
            self.pump().await;
        }
    }

    pub fn has_response(&self, id: i64) -> bool {
        self.responses.contains_key(&id)
    }

    /// Takes every message the server has sent so far, without waiting.
    pub fn drain(&mut self) {
        while let Ok(message) = self.incoming.try_recv() {
            match message.get("id").and_then(Value::as_i64) {
                Some(id) => {
                    self.responses.insert(id, message);
                }
                None => self.notifications.push(message),
            }
        }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        let response = self.response(id).await;
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    /// The first notification (received or to come) matching `pred`.
    pub async fn notification(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.notification_after(0, pred).await
    }

    /// The first notification matching `pred` from the `from`th on
    /// (`notifications.len()` before an action: one it caused).
    pub async fn notification_after(
        &mut self,
        from: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut seen = from;
        loop {
            if let Some(n) = self.notifications[seen..].iter().find(|n| pred(n)) {
                return n.clone();
            }
            seen = self.notifications.len();
            self.pump().await;
        }
    }

    /// `nib/status`, which the transport answers at once, ahead of
    /// messages sent before it (see [`Client::barrier`] for order).
    pub async fn status(&mut self) -> Value {
        self.call("nib/status", Value::Null).await
    }

    /// A request the service itself answers (a code action for a document
    /// that is not open). Its answer shows that every message sent before
    /// it was taken in: the service starts handlers in the order messages
    /// arrive, and notifications act before their first wait.
    pub async fn barrier(&mut self) {
        self.call(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": "file:///nib-test/barrier"},
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                "context": {"diagnostics": []},
            }),
        )
        .await;
    }

    /// [`Client::barrier`], then `nib/status`.
    pub async fn status_after(&mut self) -> Value {
        self.barrier().await;
        self.status().await
    }

    /// Waits for the server's "ready" log message, which it sends once the
    /// model's state is `ready`.
    pub async fn wait_ready(&mut self) -> Value {
        self.notification(|n| {
            n["method"] == "window/logMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(" ready on "))
        })
        .await;
        let status = self.status().await;
        assert_eq!(status["state"], "ready", "{status}");
        status
    }

    pub async fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        )
        .await;
    }

    pub async fn change(&mut self, uri: &str, version: i32, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        )
        .await;
    }

    pub async fn inline_request(
        &mut self,
        uri: &str,
        line: u32,
        character: u32,
        automatic: bool,
    ) -> i64 {
        self.request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": if automatic { 2 } else { 1 }},
            }),
        )
        .await
    }

    pub async fn review_request(&mut self, uri: &str) -> i64 {
        self.request(
            "workspace/executeCommand",
            json!({"command": "nib.reviewFile", "arguments": [uri]}),
        )
        .await
    }

    pub async fn configure(&mut self, settings: Value) {
        self.notify(
            "workspace/didChangeConfiguration",
            json!({ "settings": settings }),
        )
        .await;
    }

    /// `shutdown`, `exit`, and the server's exit code (0 after shutdown).
    pub async fn shutdown_and_exit(mut self) -> i32 {
        self.call("shutdown", Value::Null).await;
        self.notify("exit", Value::Null).await;
        let clean = self
            .server
            .take()
            .expect("server")
            .await
            .expect("the server task");
        if clean { 0 } else { 1 }
    }
}

/// The items of an inline-completion response.
pub fn items(response: &Value) -> Vec<Value> {
    response["result"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
