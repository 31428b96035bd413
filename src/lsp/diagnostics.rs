//! Review findings in the protocol's terms: diagnostics, their quick fixes,
//! and the file a document is reviewed as.
//!
//! Architecture invariant: `review/` speaks byte offsets into the text it
//! was given; this module is the only place where they become positions in
//! the negotiated encoding, and where positions from a client are checked
//! against the text before an edit is offered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ropey::Rope;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Diagnostic, DiagnosticSeverity,
    DocumentChanges, NumberOrString, OneOf, OptionalVersionedTextDocumentIdentifier, Range,
    TextDocumentEdit, TextEdit, Uri, WorkspaceEdit,
};

use crate::documents::{
    PositionEncoding, Snapshot, byte_to_char, char_to_position, position_to_char,
};
use crate::review::Finding;

/// The command that reviews one open document; its argument is the
/// document's URI (a string, or an object with a `uri`). Without one it
/// reviews the document opened or edited last (Helix sends no arguments).
pub const REVIEW_COMMAND: &str = "nib.reviewFile";

/// The `source` of nib's diagnostics.
pub const SOURCE: &str = "nib";

/// A diagnostic's `data`: the fix, and the text it replaces (an edit is
/// offered only while the diagnostic's range still holds `original`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixData {
    pub rule: String,
    pub original: String,
    pub replacement: String,
    pub confidence: f64,
}

/// The diagnostics published for one document.
#[derive(Debug, Clone)]
pub struct Published {
    /// The review that produced them: a later one replaces them.
    pub seq: u64,
    /// The document version they were computed on.
    pub version: i32,
    pub diagnostics: Vec<Diagnostic>,
}

/// A finding as a diagnostic on `text` (the rope of the reviewed text).
pub fn diagnostic(
    finding: &Finding,
    text: &Rope,
    encoding: PositionEncoding,
    severity: crate::report::Severity,
) -> Diagnostic {
    let start = byte_to_char(text, finding.start);
    let end = byte_to_char(text, finding.end.max(finding.start));
    let data = FixData {
        rule: finding.rule.clone(),
        original: finding.original.clone(),
        replacement: finding.replacement.clone(),
        confidence: finding.confidence,
    };
    Diagnostic {
        range: Range::new(
            char_to_position(text, start, encoding),
            char_to_position(text, end, encoding),
        ),
        severity: Some(match severity {
            crate::report::Severity::Warning => DiagnosticSeverity::WARNING,
            crate::report::Severity::Error => DiagnosticSeverity::ERROR,
        }),
        code: Some(NumberOrString::String(finding.rule.clone())),
        source: Some(SOURCE.to_owned()),
        message: finding.message.clone(),
        data: serde_json::to_value(data).ok(),
        ..Diagnostic::default()
    }
}

/// The file a document is reviewed as: its path (relative to the
/// workspace when inside it) when that has an extension, else a name made
/// from its language id, so that unsaved buffers get their language's rules.
pub fn review_path(display_path: &str, language: &str) -> Option<PathBuf> {
    let path = Path::new(display_path);
    if path.extension().is_some() {
        return Some(path.to_path_buf());
    }
    let extension = crate::languages::by_id(language)?.extensions.first()?;
    Some(PathBuf::from(format!("untitled.{extension}")))
}

/// What a `nib.reviewFile` call's arguments name.
#[derive(Debug, PartialEq)]
pub enum CommandTarget {
    Uri(Uri),
    /// No argument: the document touched last.
    Latest,
    Invalid,
}

pub fn command_target(arguments: &[serde_json::Value]) -> CommandTarget {
    let Some(argument) = arguments.first() else {
        return CommandTarget::Latest;
    };
    argument
        .as_str()
        .or_else(|| argument.get("uri").and_then(|u| u.as_str()))
        .and_then(|text| text.parse().ok())
        .map_or(CommandTarget::Invalid, CommandTarget::Uri)
}

/// What a code action request asks about.
pub struct ActionRequest<'a> {
    pub uri: &'a Uri,
    pub range: Range,
    /// The diagnostics the client sent in the request's context.
    pub diagnostics: &'a [Diagnostic],
    /// The client limits the kinds it wants (`context.only`).
    pub only: Option<&'a [CodeActionKind]>,
    /// The client accepts versioned edits (`documentChanges`).
    pub versioned: bool,
}

/// Quick fixes for nib's diagnostics: those the client sent, and those
/// published for this version of the document that touch the range (some
/// clients send no diagnostics with the request). An edit is offered only
/// where the document still holds the text the finding was about.
pub fn code_actions(
    request: &ActionRequest<'_>,
    doc: &Snapshot,
    encoding: PositionEncoding,
    published: Option<&Published>,
) -> Vec<CodeActionOrCommand> {
    let wants_quickfix = request.only.is_none_or(|kinds| {
        kinds.iter().any(|k| {
            k.as_str().is_empty() || CodeActionKind::QUICKFIX.as_str().starts_with(k.as_str())
        })
    });
    if !wants_quickfix {
        return Vec::new();
    }
    let ours = |d: &&Diagnostic| d.source.as_deref() == Some(SOURCE);
    let mut candidates: Vec<&Diagnostic> = request.diagnostics.iter().filter(ours).collect();
    if let Some(p) = published.filter(|p| p.version == doc.version) {
        for d in p.diagnostics.iter().filter(ours) {
            let touches = d.range.start <= request.range.end && request.range.start <= d.range.end;
            let known = candidates
                .iter()
                .any(|c| c.range == d.range && c.data == d.data);
            if touches && !known {
                candidates.push(d);
            }
        }
    }
    candidates
        .into_iter()
        .filter_map(|d| quick_fix(request, doc, encoding, d))
        .map(CodeActionOrCommand::CodeAction)
        .collect()
}

fn quick_fix(
    request: &ActionRequest<'_>,
    doc: &Snapshot,
    encoding: PositionEncoding,
    diagnostic: &Diagnostic,
) -> Option<CodeAction> {
    let fix: FixData = serde_json::from_value(diagnostic.data.clone()?).ok()?;
    let start = position_to_char(&doc.text, diagnostic.range.start, encoding);
    let end = position_to_char(&doc.text, diagnostic.range.end, encoding);
    if start > end || doc.text.slice(start..end) != fix.original.as_str() {
        // The text moved on since the review: no edit rather than a wrong one.
        return None;
    }
    let edit = TextEdit {
        range: diagnostic.range,
        new_text: fix.replacement.clone(),
    };
    let edit = if request.versioned {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: request.uri.clone(),
                    version: Some(doc.version),
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..WorkspaceEdit::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(request.uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        }
    };
    Some(CodeAction {
        title: format!("nib: replace `{}` with `{}`", fix.original, fix.replacement),
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic.clone()]),
        edit: Some(edit),
        is_preferred: Some(true),
        ..CodeAction::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;
    use tower_lsp_server::ls_types::Position;

    fn finding(text: &str, original: &str, replacement: &str) -> Finding {
        let start = text.find(original).expect("original in text");
        Finding {
            rule: "identity".into(),
            message: format!("`{original}` where `{replacement}` fits better"),
            confidence: 0.9,
            start,
            end: start + original.len(),
            original: original.into(),
            replacement: replacement.into(),
        }
    }

    fn snapshot(text: &str, version: i32) -> Snapshot {
        Snapshot {
            uri: uri(),
            text: Rope::from_str(text),
            version,
            language: "python".into(),
        }
    }

    fn uri() -> Uri {
        "file:///p/a.py".parse().expect("uri")
    }

    const TEXT: &str = "s = \"😀中\"; x == None\n";

    #[test]
    fn ranges_count_the_negotiated_units() {
        let rope = Rope::from_str(TEXT);
        let f = finding(TEXT, "==", "is");
        // Before `==`: `s = "` (5), the emoji (4 bytes, 2 UTF-16 units), 中
        // (3 bytes, 1 unit), `"; x ` (5).
        let utf8 = diagnostic(&f, &rope, PositionEncoding::Utf8, Severity::Warning);
        assert_eq!(
            utf8.range,
            Range::new(Position::new(0, 17), Position::new(0, 19))
        );
        let utf16 = diagnostic(&f, &rope, PositionEncoding::Utf16, Severity::Error);
        assert_eq!(
            utf16.range,
            Range::new(Position::new(0, 13), Position::new(0, 15))
        );
        assert_eq!(utf16.source.as_deref(), Some(SOURCE));
        assert_eq!(utf8.severity, Some(DiagnosticSeverity::WARNING));
        assert_eq!(utf16.severity, Some(DiagnosticSeverity::ERROR));
        assert_eq!(utf16.code, Some(NumberOrString::String("identity".into())));
        // Offsets past the end or inside a character never panic.
        let mut odd = f.clone();
        odd.start = 6;
        odd.end = usize::MAX;
        let d = diagnostic(&odd, &rope, PositionEncoding::Utf16, Severity::Warning);
        assert_eq!(d.range.start, Position::new(0, 5));
        assert_eq!(d.range.end, Position::new(1, 0));
    }

    #[test]
    fn a_fix_is_offered_only_where_the_text_still_holds_the_original() {
        let rope = Rope::from_str(TEXT);
        let d = diagnostic(
            &finding(TEXT, "==", "is"),
            &rope,
            PositionEncoding::Utf16,
            Severity::Warning,
        );
        let request = ActionRequest {
            uri: &uri(),
            range: d.range,
            diagnostics: std::slice::from_ref(&d),
            only: None,
            versioned: true,
        };
        let actions = code_actions(&request, &snapshot(TEXT, 3), PositionEncoding::Utf16, None);
        assert_eq!(actions.len(), 1);
        let CodeActionOrCommand::CodeAction(action) = &actions[0] else {
            panic!("a code action expected");
        };
        assert_eq!(action.title, "nib: replace `==` with `is`");
        assert_eq!(action.is_preferred, Some(true));
        let Some(DocumentChanges::Edits(edits)) = action
            .edit
            .as_ref()
            .and_then(|e| e.document_changes.clone())
        else {
            panic!("a versioned edit expected");
        };
        assert_eq!(edits[0].text_document.version, Some(3));
        // After an edit that moved the text, nothing is offered.
        let moved = snapshot(&format!("#{TEXT}"), 4);
        assert!(code_actions(&request, &moved, PositionEncoding::Utf16, None).is_empty());
        // Other kinds only: nothing.
        let only = [CodeActionKind::REFACTOR];
        let refactor = ActionRequest {
            only: Some(&only),
            ..request
        };
        assert!(
            code_actions(&refactor, &snapshot(TEXT, 3), PositionEncoding::Utf16, None).is_empty()
        );
    }

    #[test]
    fn published_findings_answer_requests_without_diagnostics() {
        let rope = Rope::from_str(TEXT);
        let d = diagnostic(
            &finding(TEXT, "==", "is"),
            &rope,
            PositionEncoding::Utf8,
            Severity::Warning,
        );
        let published = Published {
            seq: 1,
            version: 2,
            diagnostics: vec![d.clone()],
        };
        let cursor = Range::new(d.range.start, d.range.start);
        let request = ActionRequest {
            uri: &uri(),
            range: cursor,
            diagnostics: &[],
            only: None,
            versioned: false,
        };
        let doc = snapshot(TEXT, 2);
        let actions = code_actions(&request, &doc, PositionEncoding::Utf8, Some(&published));
        assert_eq!(actions.len(), 1);
        // Sent and published: offered once.
        let both = ActionRequest {
            diagnostics: std::slice::from_ref(&d),
            ..request
        };
        assert_eq!(
            code_actions(&both, &doc, PositionEncoding::Utf8, Some(&published)).len(),
            1
        );
        // Published for another version, or away from the range: not used.
        let newer = snapshot(TEXT, 3);
        assert!(
            code_actions(&request, &newer, PositionEncoding::Utf8, Some(&published)).is_empty()
        );
        let elsewhere = ActionRequest {
            range: Range::new(Position::new(0, 0), Position::new(0, 1)),
            diagnostics: &[],
            ..request
        };
        assert!(
            code_actions(&elsewhere, &doc, PositionEncoding::Utf8, Some(&published)).is_empty()
        );
    }

    #[test]
    fn review_paths_and_command_arguments() {
        assert_eq!(
            review_path("src/a.rs", "rust"),
            Some(PathBuf::from("src/a.rs"))
        );
        assert_eq!(
            review_path("untitled:Untitled-1", "python"),
            Some(PathBuf::from("untitled.py"))
        );
        assert_eq!(review_path("notes", "markdown"), None);
        let u = "file:///p/a.py";
        let target = |v: &[serde_json::Value]| command_target(v);
        assert_eq!(target(&[serde_json::json!(u)]), CommandTarget::Uri(uri()));
        assert_eq!(
            target(&[serde_json::json!({ "uri": u })]),
            CommandTarget::Uri(uri())
        );
        assert_eq!(target(&[]), CommandTarget::Latest);
        assert_eq!(target(&[serde_json::json!(3)]), CommandTarget::Invalid);
        assert_eq!(
            target(&[serde_json::json!("not a uri")]),
            CommandTarget::Invalid
        );
    }
}
