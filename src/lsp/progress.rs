//! Feedback about the model: work-done progress while it loads, log
//! messages when it is ready, and one `window/showMessage` per distinct
//! load failure (a failure that repeats goes to the log only).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tower_lsp_server::ls_types::{MessageType, NumberOrString};

use super::state::Shared;
use super::worker::Event;

/// How long the client may take to accept a progress token.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reports model loading to the client until the worker stops: progress,
/// messages, logs; a loaded model reviews the open documents.
pub async fn report_events(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<Event>,
    progress: bool,
) {
    let client = &shared.client;
    type Ongoing = tower_lsp_server::OngoingProgress<
        tower_lsp_server::Unbounded,
        tower_lsp_server::NotCancellable,
    >;
    let mut ongoing: Option<Ongoing> = None;
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
                        CREATE_TIMEOUT,
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
                shared.review_all_in_background();
            }
            Event::ReloadFailed { message } => {
                shared
                    .show_once(MessageType::WARNING, format!("nib: {message}"))
                    .await;
            }
            Event::LoadFailed {
                message, detail, ..
            } => {
                if let Some(p) = ongoing.take() {
                    p.finish_with_message("failed").await;
                }
                shared
                    .show_once(
                        MessageType::ERROR,
                        format!("nib: cannot load the model: {message}"),
                    )
                    .await;
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
