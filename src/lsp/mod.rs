//! The language server: `nib serve` speaks LSP over stdio and suggests
//! inline completions (`textDocument/inlineCompletion`, LSP 3.18) and, for
//! clients without them, `textDocument/completion` items built from the
//! same suggestion.
//!
//! Data flow: the async handlers ([`server`]) keep documents
//! ([`crate::documents`]) and settings ([`config`]) in one shared state
//! ([`state`]); completion requests ([`completion`]) cut the context around
//! the cursor ([`context`]) and hand a job to the inference worker
//! ([`worker`]), a dedicated thread that owns the engine. Newer requests and
//! edits supersede older jobs; dropped requests cancel theirs. Reviews of
//! whole documents ([`review`]) go to the same worker at a lower priority,
//! and [`diagnostics`] turns their findings into diagnostics and quick
//! fixes. [`capabilities`] negotiates with the client; [`progress`] reports
//! model loads.
//!
//! Custom protocol:
//! - request `nib/status` (no params), answered as soon as the transport
//!   reads it, ahead of requests and notifications still queued (it never
//!   waits behind inference; it may not yet count what was sent just
//!   before it) →
//!   `{ "state": "loading"|"ready"|"error", "model": string|null,
//!      "device": "cpu"|"cuda:N"|null, "message": string|null,
//!      "positionEncoding": "utf-8"|"utf-16", "documents": n,
//!      "stats": { "requests", "debounced", "superseded", "cancelled",
//!                 "interrupted", "completed", "discarded", "failed",
//!                 "shown", "notReady", "tokens", "wastedTokens",
//!                 "busyMs", "wastedMs" },
//!      "review": { "enabled", "minConfidence", "running", "queued",
//!                  "requested", "completed", "preempted", "superseded",
//!                  "cancelled", "failed", "findings", "busyMs" } }`.
//!   Fields may be added.
//! - command `nib.reviewFile` (`workspace/executeCommand`, argument: the
//!   document's URI; none: the document opened or edited last) reviews an
//!   open document now and publishes its findings; it answers
//!   `{ "state": "published"|"stale"|"superseded"|"cancelled", "version",
//!      "findings", "sites", "scored" }` once the review ended, or an error
//!   when review is off or no model is loaded. Reviews also run on
//!   `didOpen` and `didSave`, and for every open document when a model has
//!   loaded, while `review.enable` is on.
//! - review findings are `textDocument/publishDiagnostics` with source
//!   `nib`, the rule as code, and `data: { rule, original, replacement,
//!   confidence }`; `textDocument/codeAction` turns them into quick fixes.
//!
//! Privacy: the server opens no network connection (ONNX Runtime's
//! telemetry is off, see [`crate::runtime::disable_telemetry_before_threads`]);
//! it reads stdin, writes stdout (protocol) and stderr (logs), and reads
//! model files.

mod capabilities;
mod completion;
pub mod config;
pub mod context;
mod diagnostics;
mod progress;
mod review;
mod server;
mod state;
pub mod transport;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tower::Service;
use tower_lsp_server::jsonrpc::Request;
use tower_lsp_server::{LspService, Server};

pub use self::config::Config;
use self::server::Backend;
use self::worker::{LoadRequest, Loaded, Loader, Scheduler};
use crate::engine::DeviceRequest;

/// Settings from the command line; `initializationOptions` override them.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub model: Option<PathBuf>,
    pub device: DeviceRequest,
    pub threads: Option<usize>,
    pub backend: crate::engine::Backend,
}

/// How many requests tower-lsp-server runs at once. Completion handlers
/// mostly wait (debounce, worker), and notifications must not queue behind
/// them, so this is far above the number of requests that do work.
const CONCURRENCY: usize = 64;

/// Serves LSP on stdin/stdout until `exit` or the end of input. Returns
/// whether `shutdown` came first (exit code 0, else 1).
pub fn serve_stdio(options: ServeOptions) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("nib-lsp")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let clean = runtime.block_on(serve(
        tokio::io::stdin(),
        tokio::io::stdout(),
        options,
        engine_loader(),
    ))?;
    // Reading stdin blocks a thread that cannot be interrupted; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(clean)
}

/// Serves LSP on any byte streams with any loader (tests use fakes).
pub async fn serve<I, O>(
    input: I,
    output: O,
    options: ServeOptions,
    loader: Loader,
) -> anyhow::Result<bool>
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite,
{
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let scheduler =
        Scheduler::spawn(loader, events_tx).context("cannot start the inference thread")?;
    let base = Config {
        model: options.model,
        device: options.device,
        threads: options.threads,
        ..Config::with_backend(&options.backend)
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let worker = scheduler.clone();
    let fast = Arc::new(state::Fast::default());
    let fast_in = fast.clone();
    let (service, socket) = LspService::build(move |client| {
        let backend = Backend::new(client, worker, events_rx, base, flag);
        fast_in.set(backend.shared.clone());
        backend
    })
    .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
    .custom_method("nib/status", Backend::status)
    .finish();
    // The client's bytes pass through `transport` on both sides: the
    // service sees only valid messages, and the client gets answers to
    // the rest between whole frames of the service's output.
    let (to_service, service_in) = tokio::io::duplex(1 << 20);
    let (service_out, from_service) = tokio::io::duplex(1 << 20);
    let (replies_tx, replies_rx) = mpsc::unbounded_channel();
    let read = transport::read_client(input, to_service, replies_tx, fast);
    let write = transport::write_client(from_service, Box::pin(output), replies_rx);
    let run = Server::new(service_in, service_out, socket)
        .concurrency_level(CONCURRENCY)
        .serve(EmptyParamsAsNone(service));
    let serve_then_stop_reading = async {
        tokio::pin!(run);
        tokio::select! {
            // `exit`: the client may keep its end open; stop reading it.
            () = &mut run => {}
            // End of input: the service finishes what it has.
            () = read => run.await,
        }
    };
    tokio::join!(serve_then_stop_reading, write);
    scheduler.shutdown();
    Ok(server::clean_exit(&shutdown))
}

/// Lets requests without parameters (`nib/status`) also arrive with `{}`,
/// `[]` or `null`, which some clients send (Neovim sends `{}`).
struct EmptyParamsAsNone<S>(S);

impl<S: Service<Request>> Service<Request> for EmptyParamsAsNone<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let empty = |v: &serde_json::Value| match v {
            serde_json::Value::Null => true,
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if request.method() == "nib/status" && request.params().is_some_and(empty) {
            let (method, id, _) = request.into_parts();
            let mut builder = Request::build(method);
            if let Some(id) = id {
                builder = builder.id(id);
            }
            return self.0.call(builder.finish());
        }
        self.0.call(request)
    }
}

/// Loads models with the requested backend; the default model when none
/// is set.
pub fn engine_loader() -> Loader {
    Box::new(|request: &LoadRequest| {
        let path = match &request.model {
            Some(p) => p.clone(),
            None => crate::model::default_model_dir()?,
        };
        let engine = crate::engine::load(&path, &request.options, &request.backend)?;
        let note = engine.device_note().map(str::to_owned);
        let model = match &request.backend {
            crate::engine::Backend::Onnx => path.display().to_string(),
            crate::engine::Backend::Remote(settings) => {
                format!("{} at {}", path.display(), settings.url)
            }
        };
        Ok(Loaded {
            engine,
            model,
            note,
        })
    })
}
