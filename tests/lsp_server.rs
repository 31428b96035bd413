//! `nib serve` end to end: the real binary, JSON-RPC over its stdio, a tiny
//! random-weight model (tests/fixtures/models/llama). The model writes junk,
//! so these tests check structure: answers arrive, ranges sit at the cursor,
//! the server keeps serving and exits cleanly.

mod lsp_support;

use std::time::{Duration, Instant};

use lsp_support::{Lsp, TIMEOUT, items, llama, pos, range};
use serde_json::{Value, json};

const PY: &str = "file:///work/project/app.py";

/// A document whose cursor positions give the fixture model something to say.
const APP: &str =
    "import os\n\ndef load(path):\n    with open(path) as f:\n        return f.read()\n\n";

fn utf16_client() -> Value {
    json!({"window": {"workDoneProgress": true}, "workspace": {"configuration": true}})
}

fn utf8_client() -> Value {
    json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}, "window": {"workDoneProgress": true}})
}

fn ready_server(capabilities: Value, options: Value) -> Lsp {
    let mut lsp = Lsp::spawn(&["--stdio", "--model", &llama(), "--device", "cpu"], &[]);
    lsp.initialize(capabilities, options);
    lsp.wait_state("ready", TIMEOUT);
    lsp
}

fn has_method(messages: &[Value], method: &str) -> bool {
    messages.iter().any(|m| m["method"] == method)
}

#[test]
fn open_edit_complete_shutdown_exit() {
    let mut lsp = Lsp::spawn(&["--stdio", "--model", &llama(), "--device", "cpu"], &[]);
    let init = lsp.initialize(utf16_client(), Value::Null);
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert!(caps["completionProvider"].is_object());
    assert_eq!(init["serverInfo"]["name"], "nib");

    let status = lsp.wait_state("ready", TIMEOUT);
    assert_eq!(status["device"], "cpu");
    assert!(status["model"].as_str().unwrap_or("").ends_with("llama"));

    lsp.open(PY, "python", APP);
    // Type a new function below, in two incremental edits.
    lsp.change(
        PY,
        2,
        json!([{"range": range((6, 0), (6, 0)), "text": "def save(path, data):\n"}]),
    );
    lsp.change(
        PY,
        3,
        json!([{"range": range((7, 0), (7, 0)), "text": "    with open(pa"}]),
    );
    let id = lsp.inline_request(PY, 7, 16, true);
    let response = lsp.response(id);
    let list = items(&response);
    assert_eq!(list.len(), 1, "one suggestion expected: {response}");
    for item in &list {
        assert!(item["insertText"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(item["range"], range((7, 16), (7, 16)));
    }
    // The completion menu gets an item built from the same suggestion.
    let completion = lsp.call(
        "textDocument/completion",
        json!({"textDocument": {"uri": PY}, "position": pos(7, 16)}),
    );
    assert_eq!(completion["isIncomplete"], true);
    let menu = completion["items"].as_array().expect("items");
    assert_eq!(menu.len(), 1, "{completion}");
    let edit = &menu[0]["textEdit"];
    assert_eq!(
        edit["range"],
        range((7, 14), (7, 16)),
        "replaces the word being typed"
    );
    let new_text = edit["newText"].as_str().expect("newText");
    assert_eq!(
        new_text,
        format!("pa{}", list[0]["insertText"].as_str().unwrap_or_default())
    );

    // Closed documents are forgotten.
    lsp.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": PY}}),
    );
    // (The service answers in order; `nib/status` is answered as soon as
    // it is read, so it comes after an answer of the service.)
    assert!(lsp.inline(PY, 0, 0).is_empty());
    let status = lsp.status();
    assert_eq!(status["documents"], 0);

    let exit = lsp.shutdown_and_exit();
    assert_eq!(exit.code(), Some(0), "stderr:\n{}", "");
}

#[test]
fn exit_without_shutdown_is_code_1_and_end_of_input_ends_the_server() {
    let mut lsp = Lsp::spawn(&["--model", &llama()], &[]);
    lsp.initialize(utf16_client(), Value::Null);
    lsp.notify("exit", Value::Null);
    assert_eq!(lsp.wait_exit(Duration::from_secs(5)).code(), Some(1));

    let mut lsp = Lsp::spawn(&["--model", &llama()], &[]);
    lsp.initialize(utf16_client(), Value::Null);
    lsp.close_stdin();
    assert!(lsp.wait_exit(Duration::from_secs(5)).code().is_some());
}

/// A line with a 4-byte emoji (2 UTF-16 units), CJK (3 bytes, 1 unit each).
const UNICODE: &str = "def f():\n    s = \"😀中文\" + na\n    return s\n";

#[test]
fn utf16_positions_with_emoji_and_cjk() {
    let mut lsp = ready_server(utf16_client(), json!({"device": "cpu"}));
    lsp.open(PY, "python", UNICODE);
    // In UTF-16, `    s = "😀中文" + na` is 4+4+1+2+2+1+3+2 = 19 units long.
    let end = 19;
    // 9 is the emoji's start and 10 its middle (a lone surrogate): the
    // middle means the start.
    assert_ranges_at(
        &mut lsp,
        &[
            (end, end),
            (end + 50, end),
            (u32::MAX, end),
            (9, 9),
            (10, 9),
        ],
    );
    // An incremental edit addressed in UTF-16 units: replace the emoji.
    lsp.change(
        PY,
        2,
        json!([{"range": range((1, 9), (1, 11)), "text": "ab"}]),
    );
    // The line is as long as before (2 units for the emoji, 2 for "ab").
    let list = lsp.inline(PY, 1, 999);
    for item in &list {
        assert_eq!(item["range"], range((1, end), (1, end)));
    }
    // Replace `中文` with one emoji: 2 units for 2, so the end is unchanged too,
    // and positions past it still clamp.
    lsp.change(
        PY,
        3,
        json!([{"range": range((1, 11), (1, 13)), "text": "🎉"}]),
    );
    let list = lsp.inline(PY, 1, 999);
    for item in &list {
        assert_eq!(item["range"], range((1, end), (1, end)));
    }
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

/// Asks for suggestions on line 1 at each `(asked, expected)` column and
/// checks every item is placed at `expected`; at least one item must come.
fn assert_ranges_at(lsp: &mut Lsp, cases: &[(u32, u32)]) {
    let mut seen = 0;
    for &(asked, expected) in cases {
        for item in &lsp.inline(PY, 1, asked) {
            assert_eq!(
                item["range"],
                range((1, expected), (1, expected)),
                "asked {asked}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no suggestion at all");
}

#[test]
fn utf8_positions_with_emoji_and_cjk() {
    let mut lsp = ready_server(utf8_client(), Value::Null);
    assert_eq!(lsp.status()["positionEncoding"], "utf-8");
    lsp.open(PY, "python", UNICODE);
    // In UTF-8 bytes: 4+4+1+4+6+1+3+2 = 25.
    let end = 25;
    assert_ranges_at(
        &mut lsp,
        &[
            (end, end),
            (end + 1, end),
            (9, 9),
            (11, 9),
            (13, 13),
            (14, 13),
        ],
    );
    // Insert CJK addressed in bytes, after the emoji.
    lsp.change(
        PY,
        2,
        json!([{"range": range((1, 13), (1, 13)), "text": "字"}]),
    );
    for item in lsp.inline(PY, 1, 999) {
        assert_eq!(item["range"], range((1, end + 3), (1, end + 3)));
    }
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn invalid_settings_show_a_message_and_keep_the_previous_ones() {
    let mut lsp = ready_server(
        utf16_client(),
        json!({"nib": {"maxTokens": "many", "debounceMs": 0}}),
    );
    let shown = lsp.notification(|n| n["method"] == "window/showMessage", TIMEOUT);
    let text = shown["params"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("maxTokens"), "{text}");

    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"nib": {"temperature": 9, "device": "tpu"}}}),
    );
    let second = lsp.notification(
        |n| {
            n["method"] == "window/showMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("device"))
        },
        TIMEOUT,
    );
    assert!(
        second["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("temperature"))
    );
    // Still serving, on the same model.
    let status = lsp.status();
    assert_eq!(status["state"], "ready");
    lsp.open(PY, "python", APP);
    assert_eq!(lsp.inline(PY, 6, 0).len(), 1);

    // Turning Python off answers nothing; turning it on again works.
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"enable": {"python": false}}}),
    );
    assert!(lsp.inline(PY, 6, 0).is_empty());
    // An empty notification makes the server pull `workspace/configuration`.
    lsp.configuration = json!({"enable": true});
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    let deadline = Instant::now() + TIMEOUT;
    while lsp.inline(PY, 6, 0).is_empty() {
        assert!(Instant::now() < deadline, "never re-enabled");
    }
    assert!(has_method(&lsp.server_requests, "workspace/configuration"));
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn a_model_that_cannot_load_is_reported_once_and_a_new_one_loads() {
    let not_a_model = env!("CARGO_MANIFEST_DIR");
    let mut lsp = Lsp::spawn(&["--model", not_a_model, "--device", "cpu"], &[]);
    lsp.initialize(utf16_client(), Value::Null);
    let status = lsp.wait_state("error", TIMEOUT);
    assert!(status["message"].as_str().is_some(), "{status}");
    let shown = lsp.notification(|n| n["method"] == "window/showMessage", TIMEOUT);
    assert_eq!(shown["params"]["type"], 1, "an error: {shown}");
    lsp.notification(
        |n| n["method"] == "window/logMessage" && n["params"]["type"] == 1,
        TIMEOUT,
    );
    lsp.open(PY, "python", APP);
    assert!(lsp.inline(PY, 6, 0).is_empty(), "empty, not an error");

    // A working model replaces it.
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"nib": {"model": llama(), "device": "cpu"}}}),
    );
    let status = lsp.wait_state("ready", TIMEOUT);
    assert_eq!(status["device"], "cpu");
    assert_eq!(lsp.inline(PY, 6, 0).len(), 1);
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn no_byte_sequence_ends_the_server() {
    let mut lsp = ready_server(utf16_client(), json!({"nib": {"debounceMs": 0}}));
    let raw = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let cases = [
        "Content-Length: -1\r\n\r\n".to_owned(),
        "Content-Length: 99999999999999999999\r\n\r\n".to_owned(),
        "content-length: 2\r\n\r\n{}".to_owned(),
        raw("{\"jsonrpc\": \"2.0\", \"id\": 900, \"method\""),
        raw("\"a string\""),
        raw("[{\"jsonrpc\": \"2.0\", \"id\": 901, \"method\": \"nib/status\"}]"),
        raw("{\"jsonrpc\": \"1.0\", \"id\": 902, \"method\": \"nib/status\"}"),
        raw("{\"jsonrpc\": \"2.0\", \"id\": 903, \"method\": \"$/unknown\"}"),
        raw(
            "{\"jsonrpc\": \"2.0\", \"id\": 904, \"method\": \"textDocument/inlineCompletion\", \"params\": 5}",
        ),
        raw(
            "{\"jsonrpc\": \"2.0\", \"id\": 905, \"method\": \"textDocument/inlineCompletion\", \"params\": {}}",
        ),
        "\u{0}\u{1}garbage\r\n\r\n".to_owned(),
    ];
    for case in &cases {
        lsp.send_raw(case.as_bytes());
    }
    // Still serving, in order.
    lsp.open(PY, "python", APP);
    assert_eq!(lsp.inline(PY, 6, 0).len(), 1);
    for (id, code) in [(902, -32600), (903, -32601), (904, -32600), (905, -32602)] {
        let r = lsp.response(id);
        assert_eq!(r["error"]["code"], code, "{id}: {r}");
    }
    // `{}`, a body that is not JSON, a string and a batch: answered with a
    // null id, in order.
    let codes: Vec<&Value> = lsp.unmatched.iter().map(|r| &r["error"]["code"]).collect();
    assert_eq!(
        codes,
        [
            &json!(-32600),
            &json!(-32700),
            &json!(-32600),
            &json!(-32600)
        ],
        "{:?}",
        lsp.unmatched
    );
    // A body cut off by the end of input: the server ends on its own.
    lsp.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"");
    lsp.close_stdin();
    assert_eq!(lsp.wait_exit(Duration::from_secs(10)).code(), Some(1));
}
