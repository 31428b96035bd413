//! Faults in the files a model is read from, under the real binary: a
//! running server whose weights are truncated or replaced, and graphs that
//! point outside their folder or leave no room for a prompt.

mod common;
mod lsp_support;

use std::path::{Path, PathBuf};

use lsp_support::{Lsp, TIMEOUT};
use serde_json::json;

/// A copy of tests/fixtures/variants/llama_gqa, whose weights live in an
/// external `model.onnx.data` as large exports keep them.
fn external_data_model() -> (tempfile::TempDir, PathBuf) {
    common::folder_copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/variants/llama_gqa"),
    )
}

const URI: &str = "file:///p/a.py";

/// Dates `file` a minute back: the server reloads only files that have
/// settled (no change for a while), not ones still being written.
fn settle(file: &Path) {
    let back = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(file)
        .and_then(|f| f.set_modified(back))
        .expect("set mtime");
}

fn serve(model: &Path) -> Lsp {
    let mut lsp = Lsp::spawn(
        &[
            "--stdio",
            "--model",
            model.to_str().expect("utf-8"),
            "--device",
            "cpu",
        ],
        &[],
    );
    lsp.initialize(
        json!({}),
        json!({"nib": {"debounceMs": 0, "review": {"enable": false}}}),
    );
    lsp.wait_state("ready", TIMEOUT);
    lsp.open(URI, "python", "import os\n\nx = \n");
    lsp
}

#[test]
fn weights_truncated_under_a_running_server_neither_kill_it_nor_change_its_answers() {
    let (_tmp, dir) = external_data_model();
    let mut lsp = serve(&dir);
    let before = lsp.inline(URI, 2, 4);

    // Truncated in place, as a copy or download over the old file does.
    let data = dir.join("model.onnx.data");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .expect("open")
        .set_len(1000)
        .expect("truncate");
    settle(&data);
    let after = lsp.inline(URI, 2, 4);
    assert_eq!(before, after, "the copy read at load answers");
    let warned = lsp.notification(|n| n["method"] == "window/showMessage", TIMEOUT);
    let message = warned["params"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("changed on disk") && message.contains("still serving"),
        "{warned}"
    );
    let status = lsp.status();
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn a_model_still_being_written_is_not_reloaded_yet() {
    let (_tmp, dir) = external_data_model();
    let mut lsp = serve(&dir);
    let before = lsp.inline(URI, 2, 4);
    // Changed just now, as by a copy under way.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("model.onnx.data"))
        .expect("open")
        .set_len(1000)
        .expect("truncate");
    assert_eq!(lsp.inline(URI, 2, 4), before);
    let status = lsp.status();
    assert_eq!(status["state"], "ready");
    assert!(status["message"].is_null(), "no reload tried yet: {status}");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

#[test]
fn a_model_replaced_on_disk_is_reloaded() {
    let (_tmp, dir) = external_data_model();
    let mut lsp = serve(&dir);
    lsp.inline(URI, 2, 4);
    // The same files written anew: a new modification time.
    let data = dir.join("model.onnx.data");
    let bytes = std::fs::read(&data).expect("read");
    let tmp = dir.join("model.onnx.data.new");
    std::fs::write(&tmp, &bytes).expect("write");
    settle(&tmp);
    std::fs::rename(&tmp, &data).expect("rename");
    lsp.inline(URI, 2, 4);
    lsp.notification(
        |n| {
            n["method"] == "window/logMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("reloaded"))
        },
        TIMEOUT,
    );
    assert_eq!(lsp.status()["state"], "ready");
    assert_eq!(lsp.shutdown_and_exit().code(), Some(0));
}

fn nib_fails(args: &[&str]) -> String {
    let out = common::nib().args(args).output().expect("spawn");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let (tmp, dir) = external_data_model();
    // Same length as `model.onnx.data`, so the graph stays well formed.
    let graph = dir.join("model.onnx");
    let bytes = std::fs::read(&graph).expect("read");
    let from = b"model.onnx.data";
    let to = b"../secret.bin.x";
    let patched: Vec<u8> = {
        let mut out = bytes.clone();
        let mut i = 0;
        while let Some(at) = out[i..].windows(from.len()).position(|w| w == from) {
            out[i + at..i + at + from.len()].copy_from_slice(to);
            i += at + from.len();
        }
        out
    };
    assert_ne!(patched, bytes, "the graph names its data file");
    std::fs::write(&graph, patched).expect("write");
    std::fs::write(tmp.path().join("secret.bin.x"), b"not weights").expect("write");
    let err = nib_fails(&[
        "generate",
        "--model",
        dir.to_str().expect("utf-8"),
        "--device",
        "cpu",
        "--prompt",
        "x",
    ]);
    assert!(
        err.contains("not a file inside the model's folder"),
        "{err}"
    );
}

#[test]
fn a_suggestion_longer_than_the_context_allows_is_refused() {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), "def f(\n").expect("write");
    let location = format!("{}:1:7", file.path().display());
    let model = common::fixture("llama");
    let context = common::nib_json(&[
        "doctor",
        "--model",
        model.to_str().expect("utf-8"),
        "--format",
        "json",
    ])["model"]["context_length"]
        .as_u64()
        .expect("context length");
    let too_many = context.to_string();
    let err = nib_fails(&[
        "complete",
        &location,
        "--model",
        model.to_str().expect("utf-8"),
        "--max-tokens",
        &too_many,
    ]);
    assert!(err.contains("leaves no room for a prompt"), "{err}");
}
