//! A minimal LSP client for tests: runs the real `nib serve`, speaks JSON-RPC
//! with Content-Length framing over its stdio, answers the server's own
//! requests, and never waits without a deadline.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn fixture_model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

pub fn llama() -> String {
    fixture_model("llama").display().to_string()
}

pub struct Lsp {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Responses that arrived while waiting for another.
    responses: HashMap<i64, Value>,
    /// Notifications from the server, in order.
    pub notifications: Vec<Value>,
    /// Requests from the server, in order (already answered).
    pub server_requests: Vec<Value>,
    /// What `workspace/configuration` answers.
    pub configuration: Value,
    /// Error answers with a null id (to messages too broken to match).
    pub unmatched: Vec<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Lsp {
    /// Runs `nib serve ARGS` with extra environment variables.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nib"));
        cmd.arg("serve").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn_command(cmd)
    }

    /// Runs a command that serves LSP on its stdio (`nib serve` itself,
    /// or a tracer running it).
    pub fn spawn_command(mut cmd: Command) -> Self {
        cmd.env("NIB_LOG", "nib=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn nib serve");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("stderr lock").push_str(&line);
                line.clear();
            }
        });
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse::<usize>().ok();
                    }
                }
                let Some(length) = length else { return };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("server sent bad JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            rx,
            next_id: 0,
            responses: HashMap::new(),
            notifications: Vec::new(),
            server_requests: Vec::new(),
            configuration: Value::Null,
            unmatched: Vec::new(),
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("json");
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
            .and_then(|_| stdin.write_all(&body))
            .and_then(|_| stdin.flush())
            .expect("write to nib");
    }

    /// Bytes as they are, framed or not.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .expect("write to nib");
    }

    pub fn request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Takes the next message, answering server requests and keeping
    /// notifications; `None` when the deadline passes.
    fn pump(&mut self, deadline: Instant) -> Option<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = match self.rx.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => {
                panic!("nib closed its output; stderr:\n{}", self.stderr())
            }
        };
        match (message.get("id"), message.get("method")) {
            (Some(id), Some(method)) => {
                let result = match method.as_str() {
                    Some("workspace/configuration") => json!([self.configuration.clone()]),
                    _ => Value::Null,
                };
                let id = id.clone();
                self.server_requests.push(message);
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
            (None, Some(_)) => self.notifications.push(message),
            (Some(Value::Null), None) => self.unmatched.push(message),
            (Some(id), None) => {
                let id = id.as_i64().expect("numeric id");
                self.responses.insert(id, message);
            }
            (None, None) => panic!("odd message {message}"),
        }
        Some(())
    }

    /// The whole response message to request `id`.
    pub fn response_within(&mut self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.responses.remove(&id) {
                return r;
            }
            if self.pump(deadline).is_none() {
                panic!(
                    "no response to request {id} within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Whether the response to `id` has arrived, among the messages read so
    /// far (the server's output is read in order).
    pub fn has_response(&self, id: i64) -> bool {
        self.responses.contains_key(&id)
    }

    pub fn response(&mut self, id: i64) -> Value {
        self.response_within(id, TIMEOUT)
    }

    /// Sends a request and returns its result (panics on an error response).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params);
        let response = self.response(id);
        match response.get("error") {
            Some(e) => panic!("{method} failed: {e}"),
            None => response["result"].clone(),
        }
    }

    /// Waits for a notification matching `pred` (also among those already received).
    pub fn notification(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.notification_after(0, pred, timeout)
    }

    /// Waits for a notification matching `pred` among those from the
    /// `from`th on (`notifications.len()` before an action: one it caused).
    pub fn notification_after(
        &mut self,
        from: usize,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = from;
        loop {
            if let Some(n) = self.notifications[seen..].iter().find(|n| pred(n)) {
                return n.clone();
            }
            seen = self.notifications.len();
            if self.pump(deadline).is_none() {
                panic!(
                    "no matching notification within {timeout:?}; got {:#?}\nstderr:\n{}",
                    self.notifications,
                    self.stderr()
                );
            }
        }
    }

    pub fn initialize(&mut self, capabilities: Value, options: Value) -> Value {
        let result = self.call(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": capabilities,
                "initializationOptions": options,
            }),
        );
        self.notify("initialized", json!({}));
        result
    }

    /// A request the service answers in order (a code action for a
    /// document that is not open): once it is answered, every message sent
    /// before it has been taken in. (`nib/status` is answered as soon as
    /// it is read, ahead of the service's queue.)
    pub fn barrier(&mut self) {
        self.call(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": "file:///nib-test/barrier"},
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                "context": {"diagnostics": []},
            }),
        );
    }

    pub fn status(&mut self) -> Value {
        self.call("nib/status", Value::Null)
    }

    /// Waits until the model's state is `state`. Every load ends with a log
    /// message ("... ready on ...", "cannot load the model"), sent after
    /// the state changed, so between looks at `nib/status` this waits for
    /// the server's next message rather than for time to pass.
    pub fn wait_state(&mut self, state: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if status["state"] == state {
                return status;
            }
            assert!(
                self.pump(deadline).is_some(),
                "state stayed {status} instead of {state}; stderr:\n{}",
                self.stderr()
            );
        }
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        );
    }

    pub fn change(&mut self, uri: &str, version: i32, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        );
    }

    /// Sends an inline completion request; `automatic` picks the trigger kind.
    pub fn inline_request(&mut self, uri: &str, line: u32, character: u32, automatic: bool) -> i64 {
        self.request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": if automatic { 2 } else { 1 }},
            }),
        )
    }

    /// The items of an inline completion.
    pub fn inline(&mut self, uri: &str, line: u32, character: u32) -> Vec<Value> {
        let id = self.inline_request(uri, line, character, false);
        items(&self.response(id))
    }

    /// Sends shutdown and exit; returns the exit status (panics after 5 s).
    pub fn shutdown_and_exit(mut self) -> ExitStatus {
        let result = self.call("shutdown", Value::Null);
        assert_eq!(result, Value::Null);
        self.notify("exit", Value::Null);
        self.wait_exit(Duration::from_secs(5))
    }

    /// Waits for the server to close its output, then for the process.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(message) => self.notifications.push(message),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "nib did not exit within {timeout:?}; stderr:\n{}",
                        self.stderr()
                    );
                }
            }
        }
        self.child.wait().expect("wait for nib")
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The items of an inline completion response (list or array form).
pub fn items(response: &Value) -> Vec<Value> {
    assert!(
        response.get("error").is_none(),
        "error response: {response}"
    );
    let result = &response["result"];
    let list = if result.is_array() {
        result
    } else {
        &result["items"]
    };
    list.as_array().cloned().unwrap_or_default()
}

pub fn pos(line: u32, character: u32) -> Value {
    json!({"line": line, "character": character})
}

pub fn range(a: (u32, u32), b: (u32, u32)) -> Value {
    json!({"start": pos(a.0, a.1), "end": pos(b.0, b.1)})
}
