//! The server's shared state: what the client said about itself, the open
//! documents, the settings, the inference worker and the diagnostics
//! published. One [`Shared`] behind an `Arc`, used by the handlers and by
//! the tasks they spawn (background reviews, load reports).
//!
//! Architecture invariant: no lock is held across an `.await`; documents
//! are read as [`crate::documents::Snapshot`]s (ropes share their chunks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::Uri;

use super::config::Config;
use super::diagnostics::Published;
use super::worker::Scheduler;
use crate::documents::{Documents, PositionEncoding};

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
        }
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
