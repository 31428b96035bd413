//! Completion requests: inline completions (`textDocument/inlineCompletion`,
//! LSP 3.18) and, for clients without them, one `textDocument/completion`
//! menu item built from the same suggestion.
//!
//! Architecture invariant: every completion request is answered: a
//! suggestion, or an empty result when it was debounced, superseded,
//! cancelled, disabled, or no model is ready. A newer request of the
//! document or an edit supersedes it (waiting in its debounce, queued, or
//! running); a dropped request cancels its job at the next token.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionList, CompletionParams, CompletionResponse,
    CompletionTextEdit, Documentation, InlineCompletionItem, InlineCompletionList,
    InlineCompletionParams, InlineCompletionResponse, InlineCompletionTriggerKind,
    InsertTextFormat, MarkupContent, MarkupKind, MessageType, Position, Range, TextEdit, Uri,
};

use super::context::{self, Neighbour};
use super::server::Backend;
use super::state::lock;
use super::worker::{Job, JobResult, Stats};
use crate::completion::CompletionOptions;
use crate::documents::{PositionEncoding, Snapshot, char_to_position, position_to_char};
use crate::engine::{CancelToken, SamplingParams};

/// The newest completion request of each document.
#[derive(Default)]
pub struct Tickets {
    latest: Mutex<HashMap<Uri, Ticket>>,
    next_seq: AtomicU64,
}

struct Ticket {
    seq: u64,
    superseded: Arc<Notify>,
}

impl Tickets {
    /// Registers a new request for `uri`, waking the one it supersedes.
    fn take(&self, uri: &Uri) -> (u64, Arc<Notify>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let notify = Arc::new(Notify::new());
        let old = lock(&self.latest).insert(
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
        lock(&self.latest).get(uri).is_some_and(|t| t.seq == seq)
    }

    /// Wakes the request of `uri` waiting in its debounce: the document changed.
    pub fn supersede(&self, uri: &Uri) {
        if let Some(t) = lock(&self.latest).get(uri) {
            t.superseded.notify_one();
        }
    }

    pub fn forget(&self, uri: &Uri) {
        lock(&self.latest).remove(uri);
    }
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

/// Bumps a counter unless forgotten: for futures dropped at an `.await`.
struct CountOnDrop<'a>(&'a AtomicU64);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        Stats::bump(self.0);
    }
}

/// `textDocument/inlineCompletion`'s params, with the request's own id,
/// which the transport adds so that `$/cancelRequest` can reach the job
/// without waiting behind other requests.
#[derive(Debug, Deserialize)]
pub struct InlineRequest {
    #[serde(flatten)]
    params: InlineCompletionParams,
    #[serde(rename = "nibRequestId", default)]
    id: Option<Value>,
}

/// A suggestion ready to be turned into protocol items.
struct Suggested {
    text: String,
    snapshot: Snapshot,
    cursor: usize,
    encoding: PositionEncoding,
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

impl Backend {
    /// The shared path of both completion requests; `cancel` fires when
    /// the client cancels the request.
    async fn suggest(
        &self,
        uri: &Uri,
        position: Position,
        debounce: bool,
        cancel: CancelToken,
    ) -> Option<Suggested> {
        let shared = &self.shared;
        let stats = shared.scheduler.stats();
        Stats::bump(&stats.requests);
        let config = lock(&shared.config).clone();
        let encoding = lock(&shared.session).encoding;
        let snapshot = lock(&shared.docs).snapshot(uri)?;
        if !config.enable.allows(&snapshot.language) {
            return None;
        }
        if !shared.scheduler.is_ready() {
            Stats::bump(&stats.not_ready);
            return None;
        }
        let (seq, superseded) = self.tickets.take(uri);
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
            let version = lock(&shared.docs).version(uri);
            if version != Some(snapshot.version) || !self.tickets.is_latest(uri, seq) {
                Stats::bump(&stats.debounced);
                return None;
            }
        }
        let cursor = position_to_char(&snapshot.text, position, encoding);
        let neighbours: Vec<Neighbour> = if config.context_files == 0 {
            Vec::new()
        } else {
            let others =
                lock(&shared.docs).neighbours(uri, &snapshot.language, config.context_files);
            others
                .into_iter()
                .map(|(u, d)| Neighbour {
                    path: shared.display_path(&u),
                    text: d.text,
                    last_edit: d.last_edit,
                })
                .collect()
        };
        let ctx = context::build(
            &snapshot.text,
            cursor,
            Some(shared.display_path(uri)),
            &neighbours,
            context::Limits::for_budget(config.prompt_tokens, config.context_files),
        );
        let _guard = CancelOnDrop(cancel.clone());
        if cancel.is_cancelled() {
            Stats::bump(&stats.cancelled);
            return None;
        }
        let (reply, answer) = oneshot::channel();
        shared.scheduler.submit(Job {
            uri: uri.clone(),
            seq,
            ctx,
            options: CompletionOptions {
                max_tokens: config.max_tokens,
                prompt_budget: config.prompt_tokens,
                sampling: sampling(config.temperature, seq),
            },
            cancel,
            reply,
        });
        let outcome = match answer.await {
            Ok(JobResult::Done(outcome)) => {
                shared.forget_shown();
                outcome
            }
            Ok(JobResult::Skipped(skip)) => {
                tracing::debug!(seq, ?skip, "no suggestion");
                return None;
            }
            Ok(JobResult::Failed(message)) => {
                tracing::warn!(seq, %message, "completion failed");
                shared
                    .show_once(
                        MessageType::WARNING,
                        format!("nib: no suggestions: {message}"),
                    )
                    .await;
                return None;
            }
            Err(_) => return None,
        };
        if lock(&shared.docs).version(uri) != Some(snapshot.version) {
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
        request: InlineRequest,
    ) -> Result<Option<InlineCompletionResponse>> {
        let params = request.params;
        let cancel = CancelToken::new();
        let _registered = self.shared.register(request.id, &cancel);
        let tdp = params.text_document_position;
        let automatic = params.context.trigger_kind == InlineCompletionTriggerKind::AUTOMATIC;
        let items = match self
            .suggest(&tdp.text_document.uri, tdp.position, automatic, cancel)
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

    /// `textDocument/completion`: the suggestion as one menu item that
    /// replaces the word before the cursor.
    pub async fn completion_menu(&self, params: CompletionParams) -> CompletionResponse {
        let tdp = params.text_document_position;
        let Some(s) = self
            .suggest(
                &tdp.text_document.uri,
                tdp.position,
                true,
                CancelToken::new(),
            )
            .await
        else {
            return CompletionResponse::List(CompletionList {
                is_incomplete: true,
                items: Vec::new(),
            });
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
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: Range::new(
                    char_to_position(rope, start, s.encoding),
                    char_to_position(rope, s.cursor, s.encoding),
                ),
                new_text: full,
            })),
            ..Default::default()
        };
        CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: vec![item],
        })
    }
}
