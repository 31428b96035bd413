//! Review in the server: reviews started on open, save, model load,
//! settings changes and the `nib.reviewFile` command, handed to the worker
//! at a lower priority than completions, and their findings published as
//! diagnostics ([`super::diagnostics`] turns them into protocol terms).
//!
//! Architecture invariant: findings are published only for the document
//! version that was reviewed, and only while review is on; a review that
//! an edit overtook publishes nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::Uri;

use super::diagnostics::{self, Published};
use super::state::{Shared, lock};
use super::worker::{JobResult, ReviewJob, Scheduler, Skip};
use crate::documents::{PositionEncoding, Snapshot};
use crate::lint::{Discovery, Overrides, Policy};
use crate::review::Review;

/// A review handed to the worker, waiting for its answer.
pub struct PendingReview {
    pub seq: u64,
    snapshot: Snapshot,
    encoding: PositionEncoding,
    /// The document's configuration, rules and suppressions, as `nib check`.
    policy: Policy,
    path: Option<std::path::PathBuf>,
    answer: oneshot::Receiver<JobResult<Review>>,
}

/// Stops a review when the request waiting for it is dropped.
pub struct CancelReviewOnDrop<'a> {
    pub scheduler: &'a Scheduler,
    pub uri: &'a Uri,
    pub seq: u64,
}

impl Drop for CancelReviewOnDrop<'_> {
    fn drop(&mut self) {
        self.scheduler.cancel_review(self.uri, self.seq);
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

/// The policy of `nib check` for the document: the configuration file
/// above it (for `file:` documents), its rules and suppressions. The
/// editor's `review.minConfidence`, when set, stands for the command
/// line's flag; a configuration that cannot be read is logged and left out.
fn review_policy(uri: &Uri, min_confidence: Option<f64>) -> Policy {
    let overrides = Overrides {
        min_confidence,
        ..Overrides::default()
    };
    let found = uri.to_file_path().and_then(|path| {
        Discovery::default()
            .for_file(&path)
            .map_err(|e| tracing::warn!("{e}"))
            .ok()
            .flatten()
    });
    Policy::new(found.as_deref(), &overrides).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        Policy::with_threshold(min_confidence)
    })
}

impl Shared {
    /// Hands a review of the open document `uri` to the worker, or says
    /// why it cannot run. A `background` review gives way to one of the
    /// same text and settings already under way.
    pub fn start_review(&self, uri: &Uri, background: bool) -> Result<PendingReview> {
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
        let seq = self.next_review.fetch_add(1, Ordering::Relaxed);
        let encoding = lock(&self.session).encoding;
        let shown = self.display_path(uri);
        let policy = review_policy(uri, settings.min_confidence);
        let mut options = crate::review::ReviewOptions::default();
        let path = diagnostics::review_path(&shown, &snapshot.language);
        let rule_set = crate::lint::policy::rule_set_of(path.as_deref());
        options.min_confidence = policy.lowest_threshold(rule_set);
        options.unscored_rules = policy.unscored_rules(rule_set);
        let (reply, answer) = oneshot::channel();
        self.scheduler.review(ReviewJob {
            uri: uri.clone(),
            seq,
            path: path.clone(),
            text: snapshot.text.to_string(),
            options,
            background,
            reply,
        });
        Ok(PendingReview {
            seq,
            snapshot,
            encoding,
            policy,
            path,
            answer,
        })
    }

    /// A review the client did not ask for, when review is on and the
    /// model ready. It finishes in a task of its own, so that the handler
    /// that started it is done at once; failures only go to the log.
    pub fn review_in_background(self: &Arc<Self>, uri: &Uri) {
        if !lock(&self.config).review.enable || !self.scheduler.is_ready() {
            return;
        }
        match self.start_review(uri, true) {
            Ok(pending) => {
                let shared = self.clone();
                tokio::spawn(async move {
                    let uri = pending.snapshot.uri.clone();
                    match shared.finish_review(pending).await {
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
    pub fn review_all_in_background(self: &Arc<Self>) {
        let uris = lock(&self.docs).uris();
        for uri in &uris {
            self.review_in_background(uri);
        }
    }

    /// Waits for the review and publishes its findings as diagnostics,
    /// unless the document changed (or review was turned off) meanwhile.
    /// Answers how it ended, for `nib.reviewFile`.
    pub async fn finish_review(&self, pending: PendingReview) -> Result<Value> {
        let PendingReview {
            seq,
            snapshot,
            encoding,
            policy,
            path,
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
        let text = snapshot.text.to_string();
        let kept = policy.filter(&text, path.as_deref(), review.findings);
        let found: Vec<_> = kept
            .iter()
            .map(|f| diagnostics::diagnostic(f, &snapshot.text, encoding, policy.severity(&f.rule)))
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
                    diagnostics: found.clone(),
                },
            );
        }
        self.scheduler
            .stats()
            .reviews
            .findings
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        self.client
            .publish_diagnostics(uri.clone(), found, Some(snapshot.version))
            .await;
        Ok(state("published"))
    }

    /// Removes nib's diagnostics from `uri`, if it has any.
    pub async fn clear_diagnostics(&self, uri: &Uri) {
        if lock(&self.published).remove(uri).is_some() {
            self.client
                .publish_diagnostics(uri.clone(), Vec::new(), None)
                .await;
        }
    }

    /// Removes every document's diagnostics (review was turned off).
    pub async fn clear_all_diagnostics(&self) {
        let uris: Vec<Uri> = lock(&self.published).keys().cloned().collect();
        for uri in uris {
            self.clear_diagnostics(&uri).await;
        }
    }
}
