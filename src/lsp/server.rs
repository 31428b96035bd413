//! The LSP handlers: documents, configuration, completion requests, code
//! review (diagnostics and quick fixes) and feedback about the model.
//!
//! Architecture invariants:
//! - no handler holds a lock across an `.await`: documents are read as
//!   [`Snapshot`]s (ropes share their chunks) and the locks are released;
//! - notifications (`didOpen`, `didChange`, ...) update state before their
//!   first `.await`, so they apply in the order they arrived;
//! - every completion request is answered: a suggestion, or an empty result
//!   when it was superseded, cancelled, disabled, or no model is ready. Only
//!   malformed requests get errors (and `$/cancelRequest` its standard error);
//! - review diagnostics are published only for the document version that
//!   was reviewed: a review that an edit overtook publishes nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionParams, CodeActionProviderCapability,
    CodeActionResponse, CompletionItem, CompletionItemKind, CompletionList, CompletionOptions,
    CompletionParams, CompletionResponse, ConfigurationItem, DidChangeConfigurationParams,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, Documentation, ExecuteCommandOptions, ExecuteCommandParams,
    InitializeParams, InitializeResult, InitializedParams, InlineCompletionItem,
    InlineCompletionList, InlineCompletionParams, InlineCompletionResponse,
    InlineCompletionTriggerKind, InsertTextFormat, LSPAny, MarkupContent, MarkupKind, MessageType,
    NumberOrString, OneOf, Position, Range, ServerCapabilities, ServerInfo,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextDocumentSyncSaveOptions, TextEdit, Uri,
};
use tower_lsp_server::{Client, LanguageServer};

use super::config::Config;
use super::context::{self, Neighbour};
use super::review::{self as lsp_review, ActionRequest, CommandTarget, Published, REVIEW_COMMAND};
use super::worker::{Event, Job, JobResult, LoadRequest, ReviewJob, Scheduler, Skip, Stats};
use crate::completion::CompletionOptions as EngineCompletionOptions;
use crate::documents::{Documents, PositionEncoding, Snapshot, char_to_position, position_to_char};
use crate::engine::{CancelToken, SamplingParams, SessionOptions};
use crate::review::Review;

/// What the client told us about itself in `initialize`.
#[derive(Debug, Default, Clone)]
struct Session {
    encoding: PositionEncoding,
    /// The client accepts `window/workDoneProgress/create`.
    progress: bool,
    /// The client answers `workspace/configuration`.
    config_pull: bool,
    /// The client applies versioned edits (`documentChanges`).
    versioned_edits: bool,
    root: Option<PathBuf>,
}

/// The newest completion request of one document.
struct Ticket {
    seq: u64,
    superseded: Arc<Notify>,
}

/// Cancels a job when the request's future is dropped: on `$/cancelRequest`
/// tower-lsp-server drops the handler's future, and the worker then stops
/// at its next token.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Stops a review when the request waiting for it is dropped.
struct CancelReviewOnDrop<'a> {
    scheduler: &'a Scheduler,
    uri: &'a Uri,
    seq: u64,
}

impl Drop for CancelReviewOnDrop<'_> {
    fn drop(&mut self) {
        self.scheduler.cancel_review(self.uri, self.seq);
    }
}

/// Bumps a counter unless forgotten: for futures dropped at an `.await`.
struct CountOnDrop<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        Stats::bump(self.0);
    }
}

/// A suggestion ready to be turned into protocol items.
struct Suggested {
    text: String,
    snapshot: Snapshot,
    cursor: usize,
    encoding: PositionEncoding,
}

/// A review handed to the worker, waiting for its answer.
struct PendingReview {
    seq: u64,
    snapshot: Snapshot,
    encoding: PositionEncoding,
    answer: oneshot::Receiver<JobResult<Review>>,
}

/// Starts reviews on the worker and publishes their findings. Shares the
/// server's state; cheap to clone into tasks that outlive a handler.
#[derive(Clone)]
struct Reviewer {
    client: Client,
    scheduler: Scheduler,
    docs: Arc<Mutex<Documents>>,
    config: Arc<Mutex<Config>>,
    session: Arc<Mutex<Session>>,
    /// The review diagnostics last published per document.
    published: Arc<Mutex<HashMap<Uri, Published>>>,
    next_seq: Arc<AtomicU64>,
}

impl Reviewer {
    /// Hands a review of the open document `uri` to the worker, or says
    /// why it cannot run.
    fn start(&self, uri: &Uri) -> Result<PendingReview> {
        let settings = lock(&self.config).review.clone();
        if !settings.enable {
            return Err(request_error(
                "nib: review is off (the `review.enable` setting)",
            ));
        }
        let Some(snapshot) = lock(&self.docs).snapshot(uri) else {
            return Err(Error::invalid_params(format!(
                "{} is not an open document",
                uri.as_str()
            )));
        };
        if !self.scheduler.is_ready() {
            return Err(request_error("nib: the model is not loaded"));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (encoding, shown) = {
            let session = lock(&self.session);
            (session.encoding, display_path(session.root.as_deref(), uri))
        };
        let (reply, answer) = oneshot::channel();
        self.scheduler.review(ReviewJob {
            uri: uri.clone(),
            seq,
            path: lsp_review::review_path(&shown, &snapshot.language),
            text: snapshot.text.to_string(),
            options: settings.options(),
            reply,
        });
        Ok(PendingReview {
            seq,
            snapshot,
            encoding,
            answer,
        })
    }

    /// A review the client did not ask for, when review is on and the
    /// model ready. It finishes in a task of its own, so that the handler
    /// that started it is done at once; failures only go to the log.
    fn in_background(&self, uri: &Uri) {
        if !lock(&self.config).review.enable || !self.scheduler.is_ready() {
            return;
        }
        match self.start(uri) {
            Ok(pending) => {
                let reviewer = self.clone();
                tokio::spawn(async move {
                    let uri = pending.snapshot.uri.clone();
                    match reviewer.finish(pending).await {
                        Ok(outcome) => tracing::debug!(uri = uri.as_str(), %outcome, "review"),
                        Err(e) => {
                            tracing::debug!(uri = uri.as_str(), error = %e.message, "no review")
                        }
                    }
                });
            }
            Err(e) => tracing::debug!(uri = uri.as_str(), error = %e.message, "no review"),
        }
    }

    /// Reviews every open document in the background: a model was loaded
    /// (documents opened while it loaded were not reviewed, and a new model
    /// may find other things), or the review settings changed.
    fn all_in_background(&self) {
        let uris = lock(&self.docs).uris();
        for uri in &uris {
            self.in_background(uri);
        }
    }

    /// Waits for the review and publishes its findings as diagnostics,
    /// unless the document changed (or review was turned off) meanwhile.
    /// Answers how it ended, for `nib.reviewFile`.
    async fn finish(&self, pending: PendingReview) -> Result<Value> {
        let PendingReview {
            seq,
            snapshot,
            encoding,
            answer,
        } = pending;
        let uri = &snapshot.uri;
        let review = match answer.await {
            Ok(JobResult::Done(review)) => review,
            Ok(JobResult::Skipped(Skip::NotReady)) => {
                return Err(request_error("nib: the model is not loaded"));
            }
            Ok(JobResult::Skipped(Skip::Superseded)) => return Ok(json!({"state": "superseded"})),
            Ok(JobResult::Skipped(Skip::Cancelled)) | Err(_) => {
                return Ok(json!({"state": "cancelled"}));
            }
            Ok(JobResult::Failed(message)) => {
                return Err(Error {
                    code: ErrorCode::InternalError,
                    message: format!("nib: the review failed: {message}").into(),
                    data: None,
                });
            }
        };
        let summary = json!({
            "version": snapshot.version,
            "findings": review.findings.len(),
            "sites": review.sites,
            "scored": review.scored,
        });
        let state = |s: &str| {
            let mut v = summary.clone();
            v["state"] = s.into();
            v
        };
        let current = lock(&self.docs).version(uri);
        if current != Some(snapshot.version) || !lock(&self.config).review.enable {
            return Ok(state("stale"));
        }
        let diagnostics: Vec<_> = review
            .findings
            .iter()
            .map(|f| lsp_review::diagnostic(f, &snapshot.text, encoding))
            .collect();
        {
            let mut published = lock(&self.published);
            if published.get(uri).is_some_and(|p| p.seq > seq) {
                return Ok(state("superseded"));
            }
            published.insert(
                uri.clone(),
                Published {
                    seq,
                    version: snapshot.version,
                    diagnostics: diagnostics.clone(),
                },
            );
        }
        self.scheduler
            .stats()
            .reviews
            .findings
            .fetch_add(diagnostics.len() as u64, Ordering::Relaxed);
        self.client
            .publish_diagnostics(uri.clone(), diagnostics, Some(snapshot.version))
            .await;
        Ok(state("published"))
    }
}

pub struct Backend {
    client: Client,
    docs: Arc<Mutex<Documents>>,
    config: Arc<Mutex<Config>>,
    session: Arc<Mutex<Session>>,
    scheduler: Scheduler,
    tickets: Mutex<HashMap<Uri, Ticket>>,
    reviewer: Reviewer,
    next_seq: AtomicU64,
    next_load: AtomicU64,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// Messages to show once the client is initialized.
    deferred: Mutex<Vec<String>>,
    shutdown: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The path shown to the model for `uri`: relative to the workspace root
/// when inside it.
fn display_path(root: Option<&Path>, uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(path) => match root.and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) => rel.display().to_string(),
            None => path.display().to_string(),
        },
        None => uri.as_str().to_owned(),
    }
}

impl Backend {
    pub fn new(
        client: Client,
        scheduler: Scheduler,
        events: mpsc::UnboundedReceiver<Event>,
        base: Config,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        let docs = Arc::new(Mutex::new(Documents::default()));
        let config = Arc::new(Mutex::new(base));
        let session = Arc::new(Mutex::new(Session::default()));
        let reviewer = Reviewer {
            client: client.clone(),
            scheduler: scheduler.clone(),
            docs: docs.clone(),
            config: config.clone(),
            session: session.clone(),
            published: Arc::new(Mutex::new(HashMap::new())),
            next_seq: Arc::new(AtomicU64::new(1)),
        };
        Self {
            client,
            docs,
            config,
            session,
            scheduler,
            tickets: Mutex::new(HashMap::new()),
            reviewer,
            next_seq: AtomicU64::new(1),
            next_load: AtomicU64::new(1),
            events: Mutex::new(Some(events)),
            deferred: Mutex::new(Vec::new()),
            shutdown,
        }
    }

    fn start_load(&self) {
        let config = lock(&self.config).clone();
        self.scheduler.load(LoadRequest {
            id: self.next_load.fetch_add(1, Ordering::Relaxed),
            model: config.model,
            options: SessionOptions {
                device: config.device,
                intra_threads: config.threads,
                ..SessionOptions::default()
            },
        });
    }

    /// Applies settings; reports invalid keys and reloads the model when needed.
    async fn apply_settings(&self, settings: &Value) {
        let (update, before, after) = {
            let mut config = lock(&self.config);
            let before = config.review.clone();
            let update = config.apply(settings);
            (update, before, config.review.clone())
        };
        if before.enable && !after.enable {
            self.scheduler.cancel_reviews();
            let uris: Vec<Uri> = lock(&self.reviewer.published).keys().cloned().collect();
            for uri in uris {
                self.clear_diagnostics(&uri).await;
            }
        } else if after.enable && before != after && !update.reload {
            // Turned on, or another threshold: the open documents' findings
            // are missing or were filtered otherwise. (A reload reviews them
            // once the model is ready.)
            self.reviewer.all_in_background();
        }
        if !update.unknown.is_empty() {
            tracing::info!(keys = ?update.unknown, "ignoring unknown settings");
        }
        if !update.errors.is_empty() {
            let message = format!(
                "nib: invalid settings, keeping the previous values: {}",
                update.errors.join("; ")
            );
            self.client
                .show_message(MessageType::WARNING, message)
                .await;
        }
        if update.reload {
            self.start_load();
        }
    }

    /// Registers a new request for `uri`, waking the one it supersedes.
    fn take_ticket(&self, uri: &Uri) -> (u64, Arc<Notify>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let old = lock(&self.tickets).insert(
            uri.clone(),
            Ticket {
                seq,
                superseded: notify.clone(),
            },
        );
        if let Some(old) = old {
            old.superseded.notify_one();
        }
        (seq, notify)
    }

    fn is_latest(&self, uri: &Uri, seq: u64) -> bool {
        lock(&self.tickets).get(uri).is_some_and(|t| t.seq == seq)
    }

    fn supersede(&self, uri: &Uri) {
        if let Some(t) = lock(&self.tickets).get(uri) {
            t.superseded.notify_one();
        }
        self.scheduler.supersede(uri);
    }

    /// Removes nib's diagnostics from `uri`, if it has any.
    async fn clear_diagnostics(&self, uri: &Uri) {
        if lock(&self.reviewer.published).remove(uri).is_some() {
            self.client
                .publish_diagnostics(uri.clone(), Vec::new(), None)
                .await;
        }
    }

    fn display_path(&self, uri: &Uri) -> String {
        display_path(lock(&self.session).root.as_deref(), uri)
    }

    /// The shared path of both completion requests.
    async fn suggest(&self, uri: &Uri, position: Position, debounce: bool) -> Option<Suggested> {
        let stats = self.scheduler.stats();
        Stats::bump(&stats.requests);
        let config = lock(&self.config).clone();
        let encoding = lock(&self.session).encoding;
        let snapshot = lock(&self.docs).snapshot(uri)?;
        if !config.enable.allows(&snapshot.language) {
            return None;
        }
        if !self.scheduler.is_ready() {
            Stats::bump(&stats.not_ready);
            return None;
        }
        let (seq, superseded) = self.take_ticket(uri);
        if debounce && config.debounce_ms > 0 {
            // Counts a request the client cancels while it waits here.
            let waiting = CountOnDrop(&stats.cancelled);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(config.debounce_ms)) => {}
                () = superseded.notified() => {
                    std::mem::forget(waiting);
                    Stats::bump(&stats.debounced);
                    return None;
                }
            }
            std::mem::forget(waiting);
            let version = lock(&self.docs).version(uri);
            if version != Some(snapshot.version) || !self.is_latest(uri, seq) {
                Stats::bump(&stats.debounced);
                return None;
            }
        }
        let cursor = position_to_char(&snapshot.text, position, encoding);
        let neighbours: Vec<Neighbour> = if config.context_files == 0 {
            Vec::new()
        } else {
            let others = lock(&self.docs).neighbours(uri, &snapshot.language, config.context_files);
            others
                .into_iter()
                .map(|(u, d)| Neighbour {
                    path: self.display_path(&u),
                    text: d.text,
                    last_edit: d.last_edit,
                })
                .collect()
        };
        let ctx = context::build(
            &snapshot.text,
            cursor,
            Some(self.display_path(uri)),
            &neighbours,
            context::Limits::for_budget(config.prompt_tokens, config.context_files),
        );
        let cancel = CancelToken::new();
        let _guard = CancelOnDrop(cancel.clone());
        let (reply, answer) = oneshot::channel();
        self.scheduler.submit(Job {
            uri: uri.clone(),
            seq,
            ctx,
            options: EngineCompletionOptions {
                max_tokens: config.max_tokens,
                prompt_budget: config.prompt_tokens,
                sampling: sampling(config.temperature, seq),
            },
            cancel,
            reply,
        });
        let outcome = match answer.await {
            Ok(JobResult::Done(outcome)) => outcome,
            Ok(JobResult::Skipped(skip)) => {
                tracing::debug!(seq, ?skip, "no suggestion");
                return None;
            }
            Ok(JobResult::Failed(message)) => {
                tracing::warn!(seq, %message, "completion failed");
                return None;
            }
            Err(_) => return None,
        };
        if lock(&self.docs).version(uri) != Some(snapshot.version) {
            stats.record_discard(&outcome);
            return None;
        }
        let text = outcome.text?;
        Stats::bump(&stats.shown);
        Some(Suggested {
            text,
            snapshot,
            cursor,
            encoding,
        })
    }

    /// `textDocument/inlineCompletion` (LSP 3.18).
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let tdp = params.text_document_position;
        let automatic = params.context.trigger_kind == InlineCompletionTriggerKind::AUTOMATIC;
        let items = match self
            .suggest(&tdp.text_document.uri, tdp.position, automatic)
            .await
        {
            Some(s) => {
                let at = char_to_position(&s.snapshot.text, s.cursor, s.encoding);
                vec![InlineCompletionItem {
                    insert_text: s.text,
                    filter_text: None,
                    range: Some(Range::new(at, at)),
                    command: None,
                    insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
                }]
            }
            None => Vec::new(),
        };
        Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items,
        })))
    }

    /// `nib/status`: readiness, model and device, and work counters.
    pub async fn status(&self) -> Result<Value> {
        let status = self.scheduler.status();
        let encoding = lock(&self.session).encoding.kind();
        let documents = lock(&self.docs).len();
        let settings = lock(&self.config).review.clone();
        let mut review =
            serde_json::to_value(self.scheduler.review_report()).unwrap_or_else(|_| json!({}));
        review["enabled"] = settings.enable.into();
        review["minConfidence"] = settings.min_confidence.into();
        Ok(json!({
            "state": status.state,
            "model": status.model,
            "device": status.device,
            "message": status.message,
            "positionEncoding": encoding.as_str(),
            "documents": documents,
            "stats": self.scheduler.stats().report(),
            "review": review,
        }))
    }

    /// Reports model loading to the client: progress, messages, logs.
    async fn report_events(
        client: Client,
        mut events: mpsc::UnboundedReceiver<Event>,
        progress: bool,
        reviewer: Reviewer,
    ) {
        type Ongoing = tower_lsp_server::OngoingProgress<
            tower_lsp_server::Unbounded,
            tower_lsp_server::NotCancellable,
        >;
        let mut ongoing: Option<Ongoing> = None;
        let mut shown: HashSet<String> = HashSet::new();
        while let Some(event) = events.recv().await {
            match event {
                Event::LoadStarted { id, model } => {
                    if let Some(p) = ongoing.take() {
                        p.finish_with_message("replaced by a newer configuration")
                            .await;
                    }
                    client
                        .log_message(MessageType::INFO, format!("nib: loading {model}"))
                        .await;
                    if progress {
                        let token = NumberOrString::String(format!("nib/load/{id}"));
                        let created = tokio::time::timeout(
                            Duration::from_secs(5),
                            client.create_work_done_progress(token.clone()),
                        )
                        .await;
                        if matches!(created, Ok(Ok(()))) {
                            ongoing = Some(
                                client
                                    .progress(token, "nib: loading model")
                                    .with_message(model)
                                    .begin()
                                    .await,
                            );
                        }
                    }
                }
                Event::Loaded {
                    model,
                    device,
                    note,
                    ..
                } => {
                    let message = format!("{model} ready on {device}");
                    if let Some(p) = ongoing.take() {
                        p.finish_with_message(message.clone()).await;
                    }
                    client
                        .log_message(MessageType::INFO, format!("nib: {message}"))
                        .await;
                    if let Some(note) = note {
                        client
                            .log_message(MessageType::INFO, format!("nib: {note}"))
                            .await;
                    }
                    reviewer.all_in_background();
                }
                Event::LoadFailed {
                    message, detail, ..
                } => {
                    if let Some(p) = ongoing.take() {
                        p.finish_with_message("failed").await;
                    }
                    if shown.insert(message.clone()) {
                        client
                            .show_message(
                                MessageType::ERROR,
                                format!("nib: cannot load the model: {message}"),
                            )
                            .await;
                    }
                    client
                        .log_message(
                            MessageType::ERROR,
                            format!("nib: cannot load the model: {detail}"),
                        )
                        .await;
                }
            }
        }
    }
}

/// LSP's `RequestFailed`: the request was valid but could not be served.
const REQUEST_FAILED: i64 = -32803;

/// An error answer that is not the client's fault nor a crash: review is
/// off, or no model is loaded.
fn request_error(message: &str) -> Error {
    Error {
        code: ErrorCode::ServerError(REQUEST_FAILED),
        message: message.to_owned().into(),
        data: None,
    }
}

fn sampling(temperature: f32, seed: u64) -> SamplingParams {
    if temperature <= 0.0 {
        SamplingParams::greedy()
    } else {
        SamplingParams {
            temperature,
            top_k: 0,
            top_p: 0.95,
            seed,
        }
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let caps = &params.capabilities;
        let encoding = PositionEncoding::negotiate(
            caps.general
                .as_ref()
                .and_then(|g| g.position_encodings.as_deref()),
        );
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.uri.clone())
            .or_else(|| {
                #[allow(deprecated)]
                params.root_uri.clone()
            })
            .and_then(|u| u.to_file_path().map(|p| p.into_owned()));
        *lock(&self.session) = Session {
            encoding,
            progress: caps
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            config_pull: caps
                .workspace
                .as_ref()
                .and_then(|w| w.configuration)
                .unwrap_or(false),
            versioned_edits: caps
                .workspace
                .as_ref()
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false),
            root,
        };
        if let Some(options) = &params.initialization_options {
            let update = lock(&self.config).apply(options);
            if !update.errors.is_empty() {
                lock(&self.deferred).push(format!(
                    "nib: invalid initializationOptions, using defaults for: {}",
                    update.errors.join("; ")
                ));
            }
        }
        // A client that shows inline completions would also ask for menu
        // items on every keystroke, and the two requests would supersede
        // each other: it gets only the inline provider.
        let inline_client = caps
            .text_document
            .as_ref()
            .is_some_and(|t| t.inline_completion.is_some());
        // Loading starts now; progress is reported once the client is initialized.
        self.start_load();
        tracing::info!(encoding = ?encoding, "initialize");
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(encoding.kind()),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..Default::default()
                    },
                )),
                completion_provider: (!inline_client).then(|| CompletionOptions {
                    trigger_characters: Some(
                        [".", "(", "[", "{", ",", ":", "=", " "]
                            .iter()
                            .map(|s| (*s).to_owned())
                            .collect(),
                    ),
                    ..Default::default()
                }),
                inline_completion_provider: Some(OneOf::Left(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![REVIEW_COMMAND.to_owned()],
                    ..Default::default()
                }),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "nib".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let progress = lock(&self.session).progress;
        if let Some(events) = lock(&self.events).take() {
            tokio::spawn(Self::report_events(
                self.client.clone(),
                events,
                progress,
                self.reviewer.clone(),
            ));
        }
        let deferred = std::mem::take(&mut *lock(&self.deferred));
        for message in deferred {
            self.client
                .show_message(MessageType::WARNING, message)
                .await;
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.shutdown.store(true, Ordering::Release);
        self.scheduler.shutdown();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        lock(&self.docs).open(d.uri.clone(), &d.text, d.version, &d.language_id);
        self.reviewer.in_background(&d.uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.reviewer.in_background(&params.text_document.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let encoding = lock(&self.session).encoding;
        let known = lock(&self.docs).change(
            &uri,
            params.text_document.version,
            params
                .content_changes
                .into_iter()
                .map(|c| (c.range, c.text)),
            encoding,
        );
        if known {
            self.supersede(&uri);
        } else {
            tracing::warn!(
                uri = uri.as_str(),
                "didChange for a document that is not open"
            );
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        lock(&self.docs).close(&uri);
        self.supersede(&uri);
        lock(&self.tickets).remove(&uri);
        self.clear_diagnostics(&uri).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let empty = match &params.settings {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            _ => false,
        };
        if empty && lock(&self.session).config_pull {
            // Clients that only announce a change expect us to pull.
            let pulled = tokio::time::timeout(
                Duration::from_secs(5),
                self.client.configuration(vec![ConfigurationItem {
                    scope_uri: None,
                    section: Some("nib".into()),
                }]),
            )
            .await;
            if let Ok(Ok(mut values)) = pulled
                && let Some(settings) = values.pop()
            {
                self.apply_settings(&settings).await;
            }
            return;
        }
        self.apply_settings(&params.settings).await;
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command != REVIEW_COMMAND {
            return Err(Error::invalid_params(format!(
                "unknown command `{}`; nib offers `{REVIEW_COMMAND}`",
                params.command
            )));
        }
        let uri = match lsp_review::command_target(&params.arguments) {
            CommandTarget::Uri(uri) => Some(uri),
            CommandTarget::Latest => lock(&self.docs).most_recent().cloned(),
            CommandTarget::Invalid => None,
        };
        let Some(uri) = uri else {
            return Err(Error::invalid_params(format!(
                "`{REVIEW_COMMAND}` takes the URI of an open document"
            )));
        };
        let pending = self.reviewer.start(&uri)?;
        let _guard = CancelReviewOnDrop {
            scheduler: &self.scheduler,
            uri: &uri,
            seq: pending.seq,
        };
        self.reviewer.finish(pending).await.map(Some)
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = &params.text_document.uri;
        let Some(doc) = lock(&self.docs).snapshot(uri) else {
            return Ok(None);
        };
        let (encoding, versioned) = {
            let session = lock(&self.session);
            (session.encoding, session.versioned_edits)
        };
        let published = lock(&self.reviewer.published).get(uri).cloned();
        let request = ActionRequest {
            uri,
            range: params.range,
            diagnostics: &params.context.diagnostics,
            only: params.context.only.as_deref(),
            versioned,
        };
        Ok(Some(lsp_review::code_actions(
            &request,
            &doc,
            encoding,
            published.as_ref(),
        )))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some(s) = self
            .suggest(&tdp.text_document.uri, tdp.position, true)
            .await
        else {
            return Ok(Some(CompletionResponse::List(CompletionList {
                is_incomplete: true,
                items: Vec::new(),
            })));
        };
        let rope = &s.snapshot.text;
        let start = context::word_start(rope, s.cursor);
        let word = rope.slice(start..s.cursor).to_string();
        let full = format!("{word}{}", s.text);
        let first_line = full.lines().next().unwrap_or("").trim();
        let label: String = if first_line.chars().count() > 80 {
            first_line.chars().take(79).chain(['…']).collect()
        } else {
            first_line.to_owned()
        };
        let item = CompletionItem {
            label,
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("nib".into()),
            documentation: s.text.contains('\n').then(|| {
                Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: format!("```{}\n{full}\n```", s.snapshot.language),
                })
            }),
            preselect: Some(true),
            sort_text: Some("0".into()),
            filter_text: Some(full.clone()),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            text_edit: Some(tower_lsp_server::ls_types::CompletionTextEdit::Edit(
                TextEdit {
                    range: Range::new(
                        char_to_position(rope, start, s.encoding),
                        char_to_position(rope, s.cursor, s.encoding),
                    ),
                    new_text: full,
                },
            )),
            ..Default::default()
        };
        Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: vec![item],
        })))
    }
}

/// Whether the LSP `shutdown` request came before the end: the exit code
/// is 0 then, 1 otherwise (the specification's rule for `exit`).
pub fn clean_exit(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}
