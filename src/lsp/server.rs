//! The LSP handlers: lifecycle, document sync, settings, commands and code
//! actions, and `nib/status`. Completion requests are in
//! [`super::completion`], reviews in [`super::review`], load feedback in
//! [`super::progress`]; the state they share is [`super::state::Shared`].
//!
//! Architecture invariants:
//! - no handler holds a lock across an `.await`;
//! - notifications (`didOpen`, `didChange`, ...) update state before their
//!   first `.await`, so they apply in the order they arrived;
//! - only malformed requests get errors (and `$/cancelRequest` its
//!   standard error).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{
    CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse, ConfigurationItem,
    DidChangeConfigurationParams, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DidSaveTextDocumentParams, ExecuteCommandParams, InitializeParams,
    InitializeResult, InitializedParams, LSPAny, MessageType, ServerInfo, Uri,
};
use tower_lsp_server::{Client, LanguageServer};

use super::capabilities;
use super::completion::Tickets;
use super::config::Config;
use super::diagnostics::{self, ActionRequest, CommandTarget, REVIEW_COMMAND};
use super::progress;
use super::review::CancelReviewOnDrop;
use super::state::{Shared, lock};
use super::worker::{Event, LoadRequest, Scheduler};
use crate::engine::SessionOptions;

/// How long a client may take to answer `workspace/configuration`.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Backend {
    pub(super) shared: Arc<Shared>,
    pub(super) tickets: Tickets,
    next_load: AtomicU64,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// Messages to show once the client is initialized.
    deferred: Mutex<Vec<String>>,
    shutdown: Arc<AtomicBool>,
}

impl Backend {
    pub fn new(
        client: Client,
        scheduler: Scheduler,
        events: mpsc::UnboundedReceiver<Event>,
        base: Config,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared::new(client, scheduler, base)),
            tickets: Tickets::default(),
            next_load: AtomicU64::new(1),
            events: Mutex::new(Some(events)),
            deferred: Mutex::new(Vec::new()),
            shutdown,
        }
    }

    fn start_load(&self) {
        let config = lock(&self.shared.config).clone();
        let backend = config.backend();
        self.shared.scheduler.load(LoadRequest {
            id: self.next_load.fetch_add(1, Ordering::Relaxed),
            model: config.model,
            options: SessionOptions {
                device: config.device,
                intra_threads: config.threads,
                ..SessionOptions::default()
            },
            backend,
        });
    }

    /// Applies settings; reports invalid keys and reloads the model when needed.
    async fn apply_settings(&self, settings: &Value) {
        let shared = &self.shared;
        let (update, before, after) = {
            let mut config = lock(&shared.config);
            let before = config.review.clone();
            let update = config.apply(settings);
            (update, before, config.review.clone())
        };
        if before.enable && !after.enable {
            shared.scheduler.cancel_reviews();
            shared.clear_all_diagnostics().await;
        } else if after.enable && before != after && !update.reload {
            // Turned on, or another threshold: the open documents' findings
            // are missing or were filtered otherwise. (A reload reviews them
            // once the model is ready.)
            shared.review_all_in_background();
        }
        if !update.unknown.is_empty() {
            tracing::info!(keys = ?update.unknown, "ignoring unknown settings");
        }
        if !update.errors.is_empty() {
            let message = format!(
                "nib: invalid settings, keeping the previous values: {}",
                update.errors.join("; ")
            );
            shared
                .client
                .show_message(MessageType::WARNING, message)
                .await;
        }
        if update.reload {
            self.start_load();
        }
    }

    /// The document changed or closed: its completions and reviews are stale.
    fn supersede(&self, uri: &Uri) {
        self.tickets.supersede(uri);
        self.shared.scheduler.supersede(uri);
    }

    /// `nib/status`: readiness, model and device, and work counters. The
    /// transport answers it on its fast path; this is the service's route.
    pub async fn status(&self) -> Result<Value> {
        Ok(self.shared.status())
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let session = capabilities::session(&params);
        let capabilities = capabilities::server_capabilities(&session);
        tracing::info!(encoding = ?session.encoding, inline = session.inline, "initialize");
        *lock(&self.shared.session) = session;
        if let Some(options) = &params.initialization_options {
            let update = lock(&self.shared.config).apply(options);
            if !update.errors.is_empty() {
                lock(&self.deferred).push(format!(
                    "nib: invalid initializationOptions, using defaults for: {}",
                    update.errors.join("; ")
                ));
            }
        }
        // Loading starts now; progress is reported once the client is initialized.
        self.start_load();
        Ok(InitializeResult {
            capabilities,
            server_info: Some(ServerInfo {
                name: "nib".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let progress = lock(&self.shared.session).progress;
        if let Some(events) = lock(&self.events).take() {
            tokio::spawn(progress::report_events(
                self.shared.clone(),
                events,
                progress,
            ));
        }
        let deferred = std::mem::take(&mut *lock(&self.deferred));
        for message in deferred {
            self.shared
                .client
                .show_message(MessageType::WARNING, message)
                .await;
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.shutdown.store(true, Ordering::Release);
        self.shared.scheduler.shutdown();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        lock(&self.shared.docs).open(d.uri.clone(), &d.text, d.version, &d.language_id);
        self.shared.review_in_background(&d.uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.shared.review_in_background(&params.text_document.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let encoding = lock(&self.shared.session).encoding;
        let known = lock(&self.shared.docs).change(
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
        lock(&self.shared.docs).close(&uri);
        self.supersede(&uri);
        self.tickets.forget(&uri);
        self.shared.clear_diagnostics(&uri).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let empty = match &params.settings {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            _ => false,
        };
        if empty && lock(&self.shared.session).config_pull {
            // Clients that only announce a change expect us to pull.
            let pulled = tokio::time::timeout(
                PULL_TIMEOUT,
                self.shared.client.configuration(vec![ConfigurationItem {
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
        let uri = match diagnostics::command_target(&params.arguments) {
            CommandTarget::Uri(uri) => Some(uri),
            CommandTarget::Latest => lock(&self.shared.docs).most_recent().cloned(),
            CommandTarget::Invalid => None,
        };
        let Some(uri) = uri else {
            return Err(Error::invalid_params(format!(
                "`{REVIEW_COMMAND}` takes the URI of an open document"
            )));
        };
        let pending = self.shared.start_review(&uri, false)?;
        let _guard = CancelReviewOnDrop {
            scheduler: &self.shared.scheduler,
            uri: &uri,
            seq: pending.seq,
        };
        self.shared.finish_review(pending).await.map(Some)
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = &params.text_document.uri;
        let Some(doc) = lock(&self.shared.docs).snapshot(uri) else {
            return Ok(None);
        };
        let (encoding, versioned) = {
            let session = lock(&self.shared.session);
            (session.encoding, session.versioned_edits)
        };
        let published = lock(&self.shared.published).get(uri).cloned();
        let request = ActionRequest {
            uri,
            range: params.range,
            diagnostics: &params.context.diagnostics,
            only: params.context.only.as_deref(),
            versioned,
        };
        Ok(Some(diagnostics::code_actions(
            &request,
            &doc,
            encoding,
            published.as_ref(),
        )))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        Ok(Some(self.completion_menu(params).await))
    }
}

/// Whether the LSP `shutdown` request came before the end: the exit code
/// is 0 then, 1 otherwise (the specification's rule for `exit`).
pub fn clean_exit(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}
