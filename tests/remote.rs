//! nib on inference servers, through the real binary.
//!
//! A real server: llama-cpp-python's OpenAI-style server (the project's
//! .venv, `scripts/python-env.sh`) on the loopback address, serving nib's
//! default model converted to GGUF by `nib-gguf`; completions, review and
//! a server stopped and started again mid-session, over LSP and the CLI.
//! Misbehaving servers (errors, garbage, silence, no log-probabilities)
//! are small TCP listeners in the test that answer in those ways.

mod common;
mod lsp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lsp_support::{Lsp, TIMEOUT, items};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    common::python("it installs llama-cpp-python's server")
}

/// nib's default model as an f32 GGUF, written once per build folder.
fn gguf() -> &'static Path {
    static GGUF: OnceLock<PathBuf> = OnceLock::new();
    GGUF.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nib-default-f32.gguf");
        let source = root().join("models/default/model.onnx.data");
        let fresh = |p: &Path| {
            let (Ok(a), Ok(b)) = (p.metadata(), source.metadata()) else {
                return false;
            };
            a.modified().ok() >= b.modified().ok()
        };
        if !fresh(&out) {
            let status = Command::new(python())
                .args(["-I", "-m", "nib_models.gguf_export"])
                .arg(root().join("models/default"))
                .arg(&out)
                .args(["--type", "f32"])
                .current_dir("/")
                .stdout(Stdio::null())
                .status()
                .expect("run nib-gguf");
            assert!(status.success(), "nib-gguf failed");
        }
        out
    })
}

/// Whether `GET path` on the local `port` answers 200.
fn answers_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A real inference server on 127.0.0.1, stopped when dropped:
/// llama-cpp-python's ([`Server::start`], [`Server::start_on`]) or
/// llama.cpp's own ([`Server::llama_cpp`]).
struct Server {
    child: Option<Child>,
    port: u16,
}

/// Which server a [`Server`] runs: its name in messages, and the path
/// that answers 200 once its model is loaded.
struct Kind {
    name: &'static str,
    ready: &'static str,
}

const LLAMA_CPP_PYTHON: Kind = Kind {
    name: "llama-cpp-python's server",
    ready: "/v1/models",
};
const LLAMA_CPP: Kind = Kind {
    name: "llama-server",
    ready: "/health",
};

impl Server {
    fn start() -> Self {
        Self::start_on(free_port())
    }

    /// llama-cpp-python's server on `port`.
    fn start_on(port: u16) -> Self {
        let mut cmd = Command::new(python());
        cmd.args(["-I", "-m", "llama_cpp.server", "--model"])
            .arg(gguf())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "512", "--n_threads", "1", "--verbose", "false"])
            // Ping comments every 15 s would only be noise in the streams.
            .args(["--disable_ping_events", "true"]);
        Self::spawn(cmd, port, &LLAMA_CPP_PYTHON)
    }

    /// llama.cpp's own server (`scripts/llama-server.sh` builds it).
    fn llama_cpp() -> Self {
        let bin = std::env::var_os("NIB_LLAMA_SERVER")
            .map(PathBuf::from)
            .or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
                    })?;
                Some(cache.join("nib/llama-server-0.3.36/llama-server"))
            })
            .filter(|p| p.is_file())
            .expect("llama-server is missing: run scripts/llama-server.sh (scripts/test.sh does)");
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("--model")
            .arg(gguf())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--ctx-size", "512", "--threads", "1", "--parallel", "1"]);
        Self::spawn(cmd, port, &LLAMA_CPP)
    }

    fn spawn(mut cmd: Command, port: u16, kind: &Kind) -> Self {
        let child = cmd
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name));
        let server = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !answers_ok(port, kind.ready) {
            assert!(Instant::now() < deadline, "{} did not start", kind.name);
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

const CODE: &str = "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n\n\ndef total(items):\n    s = 0\n    for i in range(len(items)):\n        s += items[i]\n    return s\n";

/// `nib check --format json` findings keyed by place and fix, with their confidence.
fn findings(args: &[&str]) -> Vec<((u64, u64, String), f64)> {
    let out = common::run(args);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                (
                    f["start"]["line"].as_u64().unwrap_or(0),
                    f["start"]["column"].as_u64().unwrap_or(0),
                    f["fix"]["replacement"].as_str().unwrap_or("").to_owned(),
                ),
                f["confidence"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[test]
fn review_through_the_server_agrees_with_the_engine_in_process() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = write_file(tmp.path(), "a.py", CODE);
    let file = file.to_str().expect("utf-8");
    let args = ["check", file, "--format", "json", "--min-confidence", "0"];
    let local = findings(&args);
    let url = server.url();
    let remote_args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--backend", "llama.cpp", "--url", &url])
        .collect();
    let remote = findings(&remote_args);
    assert!(!local.is_empty(), "the file has places the model doubts");
    // The same weights score the same places alike; the server's prompts
    // start with a BOS (see engine/remote), so not to the last digit.
    for (key, confidence) in &local {
        match remote.iter().find(|(k, _)| k == key) {
            Some((_, theirs)) => assert!(
                (confidence - theirs).abs() < 0.1,
                "{key:?}: {confidence} in process, {theirs} on the server"
            ),
            None => assert!(
                *confidence < 0.15,
                "{key:?} ({confidence}) missing: {remote:?}"
            ),
        }
    }
}

#[test]
fn generate_and_complete_through_the_server() {
    let server = Server::start();
    let url = server.url();
    let remote = ["--backend", "llama.cpp", "--url", url.as_str()];
    let mut args = vec![
        "generate",
        "--max-tokens",
        "8",
        "--format",
        "json",
        "--ignore-eos",
    ];
    args.extend(remote);
    args.extend(["--prompt", "def add(a, b):\n    return"]);
    let out = common::nib_json(&args);
    assert_eq!(out["device"], "server", "{out}");
    assert!(!out["text"].as_str().unwrap_or("").is_empty(), "{out}");
    assert_eq!(out["finish_reason"], "max_tokens", "{out}");

    let tmp = tempfile::tempdir().expect("tmp");
    let file = write_file(tmp.path(), "a.py", CODE);
    let at = format!("{}:13:5", file.display());
    let mut args = vec!["complete", at.as_str(), "--format", "json"];
    args.extend(remote);
    let out = common::nib_json(&args);
    assert_eq!(out["line"], 13, "{out}");

    // The model's files are the tokenizer only: --model may be a folder
    // without any weights.
    let tokenizer_only = tempfile::tempdir().expect("tmp");
    for name in ["config.json", "tokenizer.json", "nib.json"] {
        std::fs::copy(
            root().join("models/default").join(name),
            tokenizer_only.path().join(name),
        )
        .expect("copy");
    }
    let model = tokenizer_only.path().to_str().expect("utf-8");
    let mut args = vec![
        "generate",
        "--max-tokens",
        "4",
        "--format",
        "json",
        "--model",
        model,
    ];
    args.extend(remote);
    args.extend(["--prompt", "import os\n"]);
    assert_eq!(common::nib_json(&args)["device"], "server");
}

const URI: &str = "file:///p/a.py";

fn serve_remote(url: &str, timeout_ms: u64) -> Lsp {
    let mut lsp = Lsp::spawn(&["--stdio", "--backend", "llama.cpp", "--url", url], &[]);
    lsp.initialize(
        json!({}),
        json!({"nib": {
            "debounceMs": 0,
            "review": {"minConfidence": 0},
            "server": {"timeoutMs": timeout_ms},
        }}),
    );
    lsp.wait_state("ready", TIMEOUT);
    lsp
}

fn shown_messages(lsp: &Lsp, needle: &str) -> usize {
    lsp.notifications
        .iter()
        .filter(|n| {
            n["method"] == "window/showMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
        })
        .count()
}

#[test]
fn an_lsp_session_survives_its_server_stopping_and_starting_again() {
    let port = free_port();
    let mut server = Server::start_on(port);
    let mut lsp = serve_remote(&server.url(), 10_000);
    let status = lsp.status();
    assert_eq!(status["device"], "server", "{status}");
    lsp.open(URI, "python", CODE);
    // Review runs through the server: findings arrive as diagnostics.
    let published = lsp.notification(
        |n| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
        },
        Duration::from_secs(60),
    );
    assert_eq!(published["params"]["uri"], URI);
    // Its quick fix, from the diagnostic the client hands back.
    let diagnostic = published["params"]["diagnostics"][0].clone();
    let actions = lsp.call(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": URI},
            "range": diagnostic["range"],
            "context": {"diagnostics": [diagnostic]},
        }),
    );
    let actions = actions.as_array().cloned().unwrap_or_default();
    assert!(
        actions.iter().any(|a| a["kind"] == "quickfix"),
        "{actions:?}"
    );
    let response = lsp.call(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": {"uri": URI},
            "position": {"line": 12, "character": 4},
            "context": {"triggerKind": 1},
        }),
    );
    assert!(response.is_object() || response.is_array(), "{response}");
    assert!(lsp.status()["lastError"].is_null());
    // The review command and the completion menu run through it too.
    let reviewed = lsp.call(
        "workspace/executeCommand",
        json!({"command": "nib.reviewFile", "arguments": [URI]}),
    );
    assert_eq!(reviewed["state"], "published", "{reviewed}");
    let menu = lsp.call(
        "textDocument/completion",
        json!({"textDocument": {"uri": URI}, "position": {"line": 12, "character": 4}}),
    );
    assert!(
        menu.is_null() || menu.is_array() || menu.is_object(),
        "{menu}"
    );
    assert!(lsp.status()["lastError"].is_null(), "{}", lsp.status());

    // The server goes away: requests are answered, empty, and one message
    // says why.
    server.stop();
    let start = Instant::now();
    assert!(lsp.inline(URI, 12, 4).is_empty());
    assert!(lsp.inline(URI, 12, 4).is_empty());
    assert!(start.elapsed() < Duration::from_secs(10), "no hang");
    lsp.barrier();
    assert_eq!(
        shown_messages(&lsp, "cannot be reached"),
        1,
        "{:#?}",
        lsp.notifications
    );
    let status = lsp.status();
    assert_eq!(status["state"], "ready");
    assert!(
        status["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be reached")),
        "{status}"
    );

    // Edits made meanwhile are kept: the document grows a line the next
    // completion is asked at.
    lsp.change(
        URI,
        2,
        json!([{
            "range": {"start": {"line": 13, "character": 0}, "end": {"line": 13, "character": 0}},
            "text": "\n\ndef mean(items):\n    return total(items) / "
        }]),
    );
    let _server = Server::start_on(port);
    let response = lsp.call(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": {"uri": URI},
            "position": {"line": 16, "character": 27},
            "context": {"triggerKind": 1},
        }),
    );
    let suggestion = items(&response);
    assert!(lsp.status()["lastError"].is_null(), "{}", lsp.stderr());
    assert!(
        suggestion
            .iter()
            .all(|item| item["insertText"].as_str().is_some()),
        "{response}"
    );
    assert!(lsp.shutdown_and_exit().success());
}

/// A listener that answers every connection with `respond`, recording
/// the request heads it read.
struct FakeServer {
    port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn fake_server(respond: fn(&mut TcpStream, &str)) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().expect("heads").push(head.clone());
                respond(&mut stream, &String::from_utf8_lossy(&body));
            });
        }
    });
    FakeServer { port, heads }
}

impl FakeServer {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn reply(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn with_server<'a>(args: &[&'a str], url: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--backend", "llama.cpp", "--url", url]);
    all
}

fn nib_failing(args: &[&str]) -> String {
    let started = Instant::now();
    let out = common::run(args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "no hang");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn servers_that_are_down_fail_or_stall_get_clear_errors() {
    let closed = format!("http://127.0.0.1:{}", free_port());

    let err = nib_failing(&with_server(&["generate", "--prompt", "x"], &closed));
    assert!(
        err.contains("cannot be reached") && err.contains(&closed),
        "{err}"
    );

    let errors = fake_server(|s, _| {
        reply(
            s,
            "500 Internal Server Error",
            "application/json",
            r#"{"error": {"message": "CUDA out of memory", "type": "server_error"}}"#,
        )
    });
    let err = nib_failing(&with_server(&["generate", "--prompt", "x"], &errors.url()));
    assert!(err.contains("answered 500: CUDA out of memory"), "{err}");

    let garbage =
        fake_server(|s, _| reply(s, "200 OK", "text/event-stream", "data: {not json\n\n"));
    let err = nib_failing(&with_server(&["generate", "--prompt", "x"], &garbage.url()));
    assert!(
        err.contains("cannot use") && err.contains("not JSON"),
        "{err}"
    );

    let silent = fake_server(|_, _| std::thread::sleep(Duration::from_secs(30)));
    let err = nib_failing(&with_server(
        &["generate", "--prompt", "x", "--timeout", "1"],
        &silent.url(),
    ));
    assert!(err.contains("did not answer in time"), "{err}");

    // A server that generates but cannot score: review says which it is.
    let no_logprobs = fake_server(|s, _| {
        reply(
            s,
            "200 OK",
            "application/json",
            r#"{"choices": [{"text": " x", "finish_reason": "length", "logprobs": null}]}"#,
        )
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let file = write_file(tmp.path(), "a.py", CODE);
    let err = nib_failing(&with_server(
        &["check", file.to_str().expect("utf-8")],
        &no_logprobs.url(),
    ));
    assert!(
        err.contains("does not return the log-probabilities"),
        "{err}"
    );

    let doctor = common::run(&with_server(&["doctor"], &closed));
    assert_eq!(doctor.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("NOT ANSWERING"));
}

#[test]
fn the_api_key_is_sent_to_the_server_and_shown_nowhere() {
    let key = "sk-nib-test-0123456789";
    let server = fake_server(|s, _| {
        reply(
            s,
            "401 Unauthorized",
            "application/json",
            r#"{"error": {"message": "invalid api key"}}"#,
        )
    });
    let url = server.url();
    let out = common::nib()
        .args([
            "generate",
            "--prompt",
            "x",
            "--backend",
            "openai",
            "--url",
            &url,
        ])
        .args(["--api-key-env", "NIB_TEST_KEY", "--server-model", "coder"])
        .env("NIB_TEST_KEY", key)
        .env("NIB_LOG", "nib=trace")
        .output()
        .expect("run nib");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("answered 401: invalid api key"), "{stderr}");
    assert!(!stderr.contains(key), "{stderr}");
    let heads = server.heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].contains(&format!("authorization: Bearer {key}"))
            || heads[0].contains(&format!("Authorization: Bearer {key}")),
        "{}",
        heads[0]
    );
    assert!(
        heads[0].starts_with("POST /v1/completions "),
        "{}",
        heads[0]
    );

    let missing = common::nib()
        .args([
            "generate",
            "--prompt",
            "x",
            "--backend",
            "openai",
            "--url",
            &url,
        ])
        .args(["--api-key-env", "NIB_TEST_KEY_UNSET"])
        .env_remove("NIB_TEST_KEY_UNSET")
        .output()
        .expect("run nib");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NIB_TEST_KEY_UNSET is not set"));
}

#[test]
fn llama_cpp_server_completes_with_nibs_prompts_or_its_own_infill() {
    let server = Server::llama_cpp();
    let url = server.url();
    let prompt = "def fibonacci(n):\n    if n < 2:\n        return n\n    return ";
    let local = common::nib_json(&[
        "generate",
        "--prompt",
        prompt,
        "--max-tokens",
        "12",
        "--format",
        "json",
    ]);
    let remote = common::nib_json(&with_server(
        &[
            "generate",
            "--prompt",
            prompt,
            "--max-tokens",
            "12",
            "--format",
            "json",
        ],
        &url,
    ));
    assert_eq!(remote["device"], "server", "{remote}");
    // The same f32 weights decode alike; at least the first tokens agree
    // (later ones may part on a near tie between the two engines' sums).
    let first = |v: &Value| {
        v["text"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(4)
            .collect::<String>()
    };
    assert_eq!(first(&local), first(&remote), "{local} vs {remote}");

    let tmp = tempfile::tempdir().expect("tmp");
    let file = write_file(tmp.path(), "a.py", CODE);
    let at = format!("{}:13:5", file.display());
    for fim in ["nib", "server"] {
        let out = common::nib_json(&with_server(
            &["complete", &at, "--format", "json", "--server-fim", fim],
            &url,
        ));
        assert_eq!(out["line"], 13, "{fim}: {out}");
        assert!(out.get("text").is_some(), "{fim}: {out}");
    }

    // Its API scores no given text: review says so, once, clearly.
    let err = nib_failing(&with_server(
        &["check", file.to_str().expect("utf-8")],
        &url,
    ));
    assert!(
        err.contains("log-probabilities") || err.contains("answered"),
        "{err}"
    );
    let err = nib_failing(&with_server(
        &[
            "check",
            file.to_str().expect("utf-8"),
            "--server-fim",
            "server",
        ],
        &url,
    ));
    assert!(err.contains("fim: server"), "{err}");
}
