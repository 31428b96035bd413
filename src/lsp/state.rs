//! The server's shared state: what the client said about itself, the open
//! documents, the settings, the inference worker and the diagnostics
//! published. One [`Shared`] behind an `Arc`, used by the handlers and by
//! the tasks they spawn (background reviews, load reports).
//!
//! Architecture invariant: no lock is held across an `.await`; documents
//! are read as [`crate::documents::Snapshot`]s (ropes share their chunks).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageType, Uri};

use serde_json::{Value, json};

use super::config::Config;
use super::diagnostics::Published;
use super::transport::FastPath;
use super::worker::Scheduler;
use crate::documents::{Documents, PositionEncoding};
use crate::engine::CancelToken;

/// What the client told us about itself in `initialize`.
#[derive(Debug, Default, Clone)]
pub struct Session {
    pub encoding: PositionEncoding,
    /// The client accepts `window/workDoneProgress/create`.
    pub progress: bool,
    /// The client answers `workspace/configuration`.
    pub config_pull: bool,
    /// The client applies versioned edits (`documentChanges`).
    pub versioned_edits: bool,
    /// The client shows inline completions (LSP 3.18).
    pub inline: bool,
    pub root: Option<PathBuf>,
}

pub struct Shared {
    pub client: Client,
    pub scheduler: Scheduler,
    pub docs: Mutex<Documents>,
    pub config: Mutex<Config>,
    pub session: Mutex<Session>,
    /// The review diagnostics last published per document.
    pub published: Mutex<HashMap<Uri, Published>>,
    /// Orders reviews: a later one's findings replace an earlier one's.
    pub next_review: AtomicU64,
    /// The cancel tokens of running completion requests, by JSON-RPC id,
    /// for `$/cancelRequest` on the transport's fast path.
    pub inflight: Mutex<HashMap<String, CancelToken>>,
    /// Messages shown with `window/showMessage`: each at most once, since a
    /// failure that repeats on every keystroke would bury the editor.
    shown: Mutex<HashSet<String>>,
}

impl Shared {
    pub fn new(client: Client, scheduler: Scheduler, config: Config) -> Self {
        Self {
            client,
            scheduler,
            docs: Mutex::new(Documents::default()),
            config: Mutex::new(config),
            session: Mutex::new(Session::default()),
            published: Mutex::new(HashMap::new()),
            next_review: AtomicU64::new(1),
            inflight: Mutex::new(HashMap::new()),
            shown: Mutex::new(HashSet::new()),
        }
    }

    /// Things went well again: a failure shown before is shown again when
    /// it comes back (a server that stops a second time).
    pub fn forget_shown(&self) {
        lock(&self.shown).clear();
    }

    /// Shows `message` unless it was shown before.
    pub async fn show_once(&self, kind: MessageType, message: String) {
        if lock(&self.shown).insert(message.clone()) {
            self.client.show_message(kind, message).await;
        }
    }

    /// Registers a request's cancel token under its id while the guard lives.
    pub fn register(&self, id: Option<Value>, cancel: &CancelToken) -> Registered<'_> {
        let key = id.map(|id| id.to_string());
        if let Some(key) = &key {
            lock(&self.inflight).insert(key.clone(), cancel.clone());
        }
        Registered { shared: self, key }
    }

    /// What `nib/status` answers: readiness, model and device, counters.
    pub fn status(&self) -> Value {
        let status = self.scheduler.status();
        let encoding = lock(&self.session).encoding.kind();
        let documents = lock(&self.docs).len();
        let settings = lock(&self.config).review.clone();
        let mut review =
            serde_json::to_value(self.scheduler.review_report()).unwrap_or_else(|_| json!({}));
        review["enabled"] = settings.enable.into();
        review["minConfidence"] = settings.min_confidence.into();
        json!({
            "state": status.state,
            "model": status.model,
            "device": status.device,
            "message": status.message,
            "lastError": status.last_error,
            "positionEncoding": encoding.as_str(),
            "documents": documents,
            "stats": self.scheduler.stats().report(),
            "review": review,
        })
    }

    /// The path shown to the model for `uri`.
    pub fn display_path(&self, uri: &Uri) -> String {
        display_path(lock(&self.session).root.as_deref(), uri)
    }
}

/// Locks a mutex, taking the data of one that a panicking thread poisoned
/// (every critical section leaves its data consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The path shown to the model for `uri`: relative to the workspace root
/// when inside it.
pub fn display_path(root: Option<&Path>, uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(path) => match root.and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) => rel.display().to_string(),
            None => path.display().to_string(),
        },
        None => uri.as_str().to_owned(),
    }
}

/// Removes a request's cancel token when its handler ends.
pub struct Registered<'a> {
    shared: &'a Shared,
    key: Option<String>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            lock(&self.shared.inflight).remove(key);
        }
    }
}

/// The transport's fast path into the server's state, once the service
/// has made it.
#[derive(Default)]
pub struct Fast(std::sync::OnceLock<std::sync::Arc<Shared>>);

impl Fast {
    pub fn set(&self, shared: std::sync::Arc<Shared>) {
        let _ = self.0.set(shared);
    }
}

impl FastPath for Fast {
    fn cancel(&self, id: &Value) {
        if let Some(shared) = self.0.get()
            && let Some(token) = lock(&shared.inflight).get(&id.to_string())
        {
            token.cancel();
        }
    }

    fn answer(&self, method: &str) -> Option<Value> {
        let shared = self.0.get()?;
        (method == "nib/status").then(|| shared.status())
    }
}
