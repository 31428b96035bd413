//! Code review through `nib serve`: the real binary over stdio, the tiny
//! random-weight model (tests/fixtures/models/llama). With `minConfidence`
//! 0 every candidate place becomes a finding whatever the model prefers, so
//! these tests check structure and consistency: ranges hold the finding's
//! original text in the negotiated encoding, quick fixes apply, stale
//! results are not offered, and completions do not wait behind reviews.

mod lsp_support;

use lsp_support::{Lsp, TIMEOUT, llama, range};
use serde_json::{Value, json};

const PY: &str = "file:///work/project/check.py";
const OTHER: &str = "file:///work/project/other.py";

/// Candidate places (`==`, `<`) after emoji and CJK on their lines.
const SRC: &str = "def f(a, b):\n    s = \"😀中文\"; t = a == b\n    u = \"字\" if a < b else \"\"\n    return s\n";

fn utf16_client() -> Value {
    json!({"window": {"workDoneProgress": true}})
}

fn utf8_client() -> Value {
    json!({
        "general": {"positionEncodings": ["utf-8", "utf-16"]},
        "workspace": {"workspaceEdit": {"documentChanges": true}},
    })
}

/// Every candidate place is a finding.
fn every_site() -> Value {
    json!({"nib": {"review": {"minConfidence": 0}}})
}

fn server(capabilities: Value, options: Value) -> Lsp {
    let mut lsp = Lsp::spawn(&["--stdio", "--model", &llama(), "--device", "cpu"], &[]);
    lsp.initialize(capabilities, options);
    lsp.wait_state("ready", TIMEOUT);
    lsp
}

fn review_request(lsp: &mut Lsp, uri: &str) -> i64 {
    lsp.request(
        "workspace/executeCommand",
        json!({"command": "nib.reviewFile", "arguments": [uri]}),
    )
}

/// Runs `nib.reviewFile` and returns its answer and the diagnostics it published.
fn review(lsp: &mut Lsp, uri: &str) -> (Value, Value) {
    let id = review_request(lsp, uri);
    let response = lsp.response(id);
    let result = response["result"].clone();
    assert_eq!(result["state"], "published", "{response}");
    // Sent before the answer, but the two may reach the client in either order.
    let version = result["version"].clone();
    let published = lsp.notification(
        |n| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["uri"] == uri
                && n["params"]["version"] == version
        },
        TIMEOUT,
    );
    (result, published["params"].clone())
}

fn diagnostics(published: &Value) -> Vec<Value> {
    published["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The byte offset of an LSP position in `text`, counting columns in UTF-8
/// bytes or UTF-16 units (written here independently of the server's code).
fn offset(text: &str, position: &Value, utf8: bool) -> usize {
    let line = position["line"].as_u64().expect("line") as usize;
    let column = position["character"].as_u64().expect("character") as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let mut units = 0;
    for (i, c) in text[start..].char_indices() {
        if units >= column || c == '\n' {
            return start + i;
        }
        units += if utf8 { c.len_utf8() } else { c.len_utf16() };
    }
    text.len()
}

/// The text a diagnostic's range covers.
fn covered<'a>(text: &'a str, diagnostic: &Value, utf8: bool) -> &'a str {
    let a = offset(text, &diagnostic["range"]["start"], utf8);
    let b = offset(text, &diagnostic["range"]["end"], utf8);
    &text[a..b]
}

/// The column of the first `needle` on `line`, in the encoding's units.
fn column(text: &str, line: usize, needle: &str, utf8: bool) -> u64 {
    let l = text.lines().nth(line).expect("line");
    let before = &l[..l.find(needle).expect("needle on line")];
    if utf8 {
        before.len() as u64
    } else {
        before.encode_utf16().count() as u64
    }
}

/// Checks every diagnostic against the text and returns the one at `==`.
fn check_diagnostics(published: &Value, utf8: bool) -> Value {
    let list = diagnostics(published);
    assert!(list.len() >= 2, "a finding at each place: {published}");
    for d in &list {
        assert_eq!(d["source"], "nib");
        assert_eq!(d["severity"], 2);
        assert!(d["code"].as_str().is_some_and(|c| !c.is_empty()), "{d}");
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
        let data = &d["data"];
        assert_eq!(covered(SRC, d, utf8), data["original"], "{d}");
        assert_ne!(data["original"], data["replacement"], "{d}");
        let confidence = data["confidence"].as_f64().expect("confidence");
        assert!((0.0..=1.0).contains(&confidence), "{d}");
    }
    let eq = list
        .iter()
        .find(|d| d["data"]["original"] == "==")
        .cloned()
        .expect("a finding at `==`");
    let col = column(SRC, 1, "==", utf8);
    assert_eq!(eq["range"], range((1, col as u32), (1, col as u32 + 2)));
    // The `<` after the CJK character on line 2.
    let lt = list
        .iter()
        .find(|d| d["data"]["original"] == "<")
        .expect("a finding at `<`");
    let col = column(SRC, 2, "<", utf8);
    assert_eq!(lt["range"]["start"]["line"], 2);
    assert_eq!(lt["range"]["start"]["character"], col);
    eq
}

fn code_actions(lsp: &mut Lsp, uri: &str, at: &Value, context: Value) -> Vec<Value> {
    let result = lsp.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": at, "context": {"diagnostics": context}}),
    );
    result.as_array().cloned().unwrap_or_default()
}

/// Applies a code action's edits (either form) to `text`.
fn apply(text: &str, action: &Value, uri: &str, utf8: bool) -> String {
    let edit = &action["edit"];
    let edits: Vec<Value> = match edit["documentChanges"].as_array() {
        Some(changes) => changes
            .iter()
            .filter(|c| c["textDocument"]["uri"] == uri)
            .flat_map(|c| c["edits"].as_array().cloned().unwrap_or_default())
            .collect(),
        None => edit["changes"][uri].as_array().cloned().unwrap_or_default(),
    };
    assert_eq!(edits.len(), 1, "{action}");
    let e = &edits[0];
    let a = offset(text, &e["range"]["start"], utf8);
    let b = offset(text, &e["range"]["end"], utf8);
    let new_text = e["newText"].as_str().expect("newText");
    format!("{}{new_text}{}", &text[..a], &text[b..])
}

fn review_and_fix(capabilities: Value, utf8: bool) {
    let mut lsp = server(capabilities, every_site());
    let caps = lsp.status();
    assert_eq!(caps["review"]["enabled"], true, "{caps}");
    lsp.open(PY, "python", SRC);
    let (result, published) = review(&mut lsp, PY);
    assert_eq!(result["version"], 1);
    assert_eq!(result["findings"], diagnostics(&published).len());
    let eq = check_diagnostics(&published, utf8);

    // The quick fix for the diagnostic the client sends.
    let actions = code_actions(&mut lsp, PY, &eq["range"], json!([eq.clone()]));
    assert_eq!(actions.len(), 1, "{actions:?}");
    let action = &actions[0];
    let replacement = eq["data"]["replacement"].as_str().expect("replacement");
    assert_eq!(
        action["title"],
        format!("nib: replace `==` with `{replacement}`")
    );
    assert_eq!(action["kind"], "quickfix");
    assert_eq!(action["isPreferred"], true);
    assert_eq!(action["diagnostics"][0], eq);
    if utf8 {
        let changes = &action["edit"]["documentChanges"][0];
        assert_eq!(changes["textDocument"]["version"], 1, "{action}");
    } else {
        assert!(action["edit"]["changes"][PY].is_array(), "{action}");
    }
    let fixed = apply(SRC, action, PY, utf8);
    assert_eq!(fixed, SRC.replacen("==", replacement, 1));

    // A request without diagnostics, at the cursor: the server's own findings.
    let cursor = json!({"start": eq["range"]["start"], "end": eq["range"]["start"]});
    let looked_up = code_actions(&mut lsp, PY, &cursor, json!([]));
    assert_eq!(looked_up.len(), 1, "{looked_up:?}");
    assert_eq!(apply(SRC, &looked_up[0], PY, utf8), fixed);

    // Applying it is an edit: the old finding's range no longer holds `==`,
    // so neither the client's copy nor the server's is offered again.
    let edit = if utf8 {
        action["edit"]["documentChanges"][0]["edits"][0].clone()
    } else {
        action["edit"]["changes"][PY][0].clone()
    };
    lsp.change(
        PY,
        2,
        json!([{"range": edit["range"], "text": edit["newText"]}]),
    );
    assert!(code_actions(&mut lsp, PY, &eq["range"], json!([eq.clone()])).is_empty());
    assert!(code_actions(&mut lsp, PY, &cursor, json!([])).is_empty());
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn review_publishes_utf16_ranges_and_the_quick_fix_applies() {
    review_and_fix(utf16_client(), false);
}

#[test]
fn review_publishes_utf8_ranges_and_a_versioned_quick_fix() {
    review_and_fix(utf8_client(), true);
}

fn is_clear_of(n: &Value, uri: &str) -> bool {
    n["method"] == "textDocument/publishDiagnostics"
        && n["params"]["uri"] == uri
        && n["params"]["diagnostics"] == json!([])
}

#[test]
fn close_and_turning_review_off_clear_diagnostics_off_reviews_nothing_and_on_reviews_again() {
    let mut lsp = server(utf16_client(), every_site());
    lsp.open(PY, "python", SRC);
    let (_, published) = review(&mut lsp, PY);
    assert!(!diagnostics(&published).is_empty());
    lsp.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": PY}}),
    );
    lsp.notification(|n| is_clear_of(n, PY), TIMEOUT);

    lsp.open(PY, "python", SRC);
    review(&mut lsp, PY);
    let seen = lsp.notifications.len();
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"nib": {"review": {"enable": false}}}}),
    );
    lsp.notification_after(seen, |n| is_clear_of(n, PY), TIMEOUT);
    let status = lsp.status();
    assert_eq!(status["review"]["enabled"], false, "{status}");
    let requested = status["review"]["requested"].clone();

    // Off: the command is refused, and opening or saving reviews nothing.
    let id = review_request(&mut lsp, PY);
    let response = lsp.response(id);
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("review.enable")),
        "{response}"
    );
    lsp.open(OTHER, "python", SRC);
    lsp.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": OTHER}}),
    );
    lsp.barrier();
    let status = lsp.status();
    assert_eq!(status["review"]["requested"], requested, "{status}");
    assert!(
        !lsp.notifications.iter().any(|n| {
            n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == OTHER
        }),
        "{:#?}",
        lsp.notifications
    );
    // On again: the open documents are reviewed.
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"nib": {"review": {"enable": true}}}}),
    );
    let published = lsp.notification(
        |n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == OTHER,
        TIMEOUT,
    );
    check_diagnostics(&published["params"], false);
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn open_and_save_review_on_their_own() {
    let mut lsp = server(utf16_client(), every_site());
    lsp.open(PY, "python", SRC);
    let published = lsp.notification(
        |n| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["uri"] == PY
                && n["params"]["version"] == 1
        },
        TIMEOUT,
    );
    check_diagnostics(&published["params"], false);
    // An edit, then a save: the new version is reviewed.
    lsp.change(
        PY,
        2,
        json!([{"range": range((0, 0), (0, 0)), "text": "# x\n"}]),
    );
    lsp.notify("textDocument/didSave", json!({"textDocument": {"uri": PY}}));
    let published = lsp.notification(
        |n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 2,
        TIMEOUT,
    );
    let list = diagnostics(&published["params"]);
    assert!(
        list.iter()
            .any(|d| d["data"]["original"] == "==" && d["range"]["start"]["line"] == 2),
        "moved down a line: {list:?}"
    );
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn bad_commands_and_unknown_documents_are_errors_not_crashes() {
    let mut lsp = server(utf16_client(), Value::Null);
    for params in [
        json!({"command": "nib.other", "arguments": [PY]}),
        // No argument and no open document.
        json!({"command": "nib.reviewFile", "arguments": []}),
        json!({"command": "nib.reviewFile", "arguments": [42]}),
        json!({"command": "nib.reviewFile", "arguments": ["file:///not/open.py"]}),
    ] {
        let id = lsp.request("workspace/executeCommand", params.clone());
        let response = lsp.response(id);
        assert_eq!(response["error"]["code"], -32602, "{params}: {response}");
    }
    let actions = lsp.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": "file:///not/open.py"}, "range": range((0, 0), (0, 0)),
               "context": {"diagnostics": [{"range": range((0, 0), (0, 1)), "message": "x",
                                            "source": "nib", "data": {"bogus": true}}]}}),
    );
    assert_eq!(actions, Value::Null);
    lsp.open(PY, "python", SRC);
    // Our source with data that is not ours, or a range past the end.
    let actions = code_actions(
        &mut lsp,
        PY,
        &range((0, 0), (9, 0)),
        json!([
            {"range": range((0, 0), (0, 1)), "message": "x", "source": "nib", "data": {"bogus": true}},
            {"range": range((7, 0), (9, 99)), "message": "x", "source": "nib",
             "data": {"rule": "r", "original": "x", "replacement": "y", "confidence": 1.0}},
        ]),
    );
    assert!(actions.is_empty(), "{actions:?}");
    // Without an argument (Helix sends none): the document touched last.
    let latest = lsp.call(
        "workspace/executeCommand",
        json!({"command": "nib.reviewFile", "arguments": []}),
    );
    assert_eq!(latest["state"], "published", "{latest}");
    assert_eq!(lsp.status()["state"], "ready");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn diagnostics_follow_the_projects_configuration_and_suppressions() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("nib.toml"),
        "ignore = [\"comparison\"]\n[rules.boolean-literal]\nseverity = \"error\"\n",
    )
    .expect("write");
    let file = dir.path().join("app.py");
    let text = "a = True\nb = False  # nib: ignore\nc = x < y\nd = p == q\n";
    std::fs::write(&file, text).expect("write");
    let uri = format!("file://{}", file.display());
    let mut lsp = server(utf16_client(), every_site());
    lsp.open(&uri, "python", text);
    let (_, published) = review(&mut lsp, &uri);
    let found: Vec<(u64, u64)> = diagnostics(&published)
        .iter()
        .map(|d| {
            (
                d["range"]["start"]["line"].as_u64().expect("line"),
                d["severity"].as_u64().expect("severity"),
            )
        })
        .collect();
    // Line 1: an error by the file's rule settings; line 2 suppressed;
    // line 3's rule ignored; line 4 a warning.
    assert_eq!(found, [(0, 1), (3, 2)], "{published}");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}
