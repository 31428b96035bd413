//! Capability negotiation: what `initialize` says about the client
//! ([`Session`]) and what the server offers in return.

use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CompletionOptions,
    ExecuteCommandOptions, InitializeParams, OneOf, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
};

use super::diagnostics::REVIEW_COMMAND;
use super::state::Session;
use crate::documents::PositionEncoding;

/// Characters after which clients without inline completion ask for menu items.
const TRIGGER_CHARACTERS: [&str; 8] = [".", "(", "[", "{", ",", ":", "=", " "];

/// What the client supports, from its `initialize` request.
pub fn session(params: &InitializeParams) -> Session {
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
    let workspace = caps.workspace.as_ref();
    Session {
        encoding,
        progress: caps
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false),
        config_pull: workspace.and_then(|w| w.configuration).unwrap_or(false),
        versioned_edits: workspace
            .and_then(|w| w.workspace_edit.as_ref())
            .and_then(|e| e.document_changes)
            .unwrap_or(false),
        inline: caps
            .text_document
            .as_ref()
            .is_some_and(|t| t.inline_completion.is_some()),
        root,
    }
}

/// What the server offers a client with these capabilities.
pub fn server_capabilities(session: &Session) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(session.encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        // A client that shows inline completions would also ask for menu
        // items on every keystroke, and the two requests would supersede
        // each other: it gets only the inline provider.
        completion_provider: (!session.inline).then(|| CompletionOptions {
            trigger_characters: Some(TRIGGER_CHARACTERS.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        }),
        inline_completion_provider: Some(OneOf::Left(true)),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![REVIEW_COMMAND.to_owned()],
            ..Default::default()
        }),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        ..Default::default()
    }
}
