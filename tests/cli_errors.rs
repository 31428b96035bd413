//! Bad input never panics: each case exits with status 2 and a message that
//! says what is wrong and what to do.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture, nib};

/// A copy of a fixture model folder that a test may break.
fn model_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    common::folder_copy(&fixture(name))
}

/// Sets one key of the copy's config.json.
fn set_config(dir: &Path, key: &str, value: serde_json::Value) {
    let file = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    v[key] = value;
    std::fs::write(file, v.to_string()).expect("write");
}

/// Replaces the copy's graph with one of tests/fixtures/signatures.
fn copy_graph(dir: &Path, name: &str) {
    let graph = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/signatures")
        .join(name);
    std::fs::copy(graph, dir.join("model.onnx")).expect("copy");
}

/// `nib generate` on `model` with a short prompt and `extra` arguments.
fn generate(model: &Path, extra: &[&str]) -> Output {
    nib()
        .args([
            "generate",
            "--model",
            model.to_str().expect("utf-8"),
            "--prompt",
            "def f(",
        ])
        .args(extra)
        .output()
        .expect("spawn")
}

/// Asserts a clean failure and returns stderr.
fn fails(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    stderr
}

#[test]
fn missing_model_folder() {
    let err = fails(generate(Path::new("/nonexistent/model"), &[]));
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn broken_model_folders() {
    type Break = fn(&Path);
    let cases: &[(&str, Break, &str)] = &[
        (
            "missing graph",
            |d| std::fs::remove_file(d.join("model.onnx")).expect("rm"),
            "no ONNX graph",
        ),
        (
            "corrupt graph",
            |d| std::fs::write(d.join("model.onnx"), b"not a protobuf").expect("write"),
            "ONNX Runtime cannot load it",
        ),
        (
            "empty graph",
            |d| std::fs::write(d.join("model.onnx"), b"").expect("write"),
            "the file is empty",
        ),
        (
            "missing tokenizer",
            |d| std::fs::remove_file(d.join("tokenizer.json")).expect("rm"),
            "tokenizer.json is missing",
        ),
        (
            "corrupt tokenizer",
            |d| std::fs::write(d.join("tokenizer.json"), b"{}").expect("write"),
            "tokenizer.json is not valid",
        ),
        (
            "corrupt config",
            |d| std::fs::write(d.join("config.json"), b"{ not json").expect("write"),
            "config.json is not valid",
        ),
        (
            "config without layers",
            |d| std::fs::write(d.join("config.json"), b"{}").expect("write"),
            "no num_hidden_layers",
        ),
        (
            "tokenizer of another model",
            |d| set_config(d, "vocab_size", 16.into()),
            "does not fit the model",
        ),
        (
            "graph without a KV cache",
            |d| copy_graph(d, "no_kv_cache.onnx"),
            "text-generation-with-past",
        ),
        (
            "graph of another kind",
            |d| copy_graph(d, "image_classifier.onnx"),
            "pixel_values",
        ),
    ];
    for (what, break_it, message) in cases {
        let (_tmp, dir) = model_copy("llama");
        break_it(&dir);
        let err = fails(generate(&dir, &["--device", "cpu"]));
        assert!(
            err.contains(message),
            "{what}: expected {message:?} in {err}"
        );
    }
}

#[test]
fn prompt_longer_than_the_context() {
    let (_tmp, dir) = model_copy("llama");
    set_config(&dir, "max_position_embeddings", 8.into());
    let out = nib()
        .args([
            "generate",
            "--model",
            dir.to_str().expect("utf-8"),
            "--device",
            "cpu",
        ])
        .args([
            "--prompt",
            "def a_rather_long_function_name(first, second, third):",
        ])
        .output()
        .expect("spawn");
    let err = fails(out);
    assert!(err.contains("context window holds 8"), "{err}");
}

#[test]
fn completion_truncates_a_long_prompt_from_the_left() {
    let (tmp, dir) = model_copy("llama");
    set_config(&dir, "max_position_embeddings", 64.into());
    let file = tmp.path().join("long.py");
    let body: String = (0..200)
        .map(|i| format!("value_{i} = compute({i})\n"))
        .collect();
    std::fs::write(&file, format!("{body}result = ")).expect("write");
    let location = format!("{}:201:10", file.display());
    let out = nib()
        .args([
            "complete",
            &location,
            "--model",
            dir.to_str().expect("utf-8"),
            "--device",
            "cpu",
            "--max-tokens",
            "16",
            "--format",
            "json",
        ])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["line"], 201);
}

#[test]
fn cuda_without_a_gpu() {
    let out = generate(&fixture("llama"), &["--device", "cuda"]);
    // On a machine with a working CUDA provider this request is valid.
    if out.status.success() {
        return;
    }
    let err = fails(out);
    assert!(
        err.contains("CUDA was requested but cannot be used"),
        "{err}"
    );
}

#[test]
fn onnx_runtime_path_that_is_not_a_library() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = tmp.path().join("libonnxruntime.so.1.32.0");
    std::fs::write(&fake, b"not a library").expect("write");
    for path in [fake.as_path(), Path::new("/nonexistent/libonnxruntime.so")] {
        let out = nib()
            .env("ORT_DYLIB_PATH", path)
            .args([
                "generate",
                "--model",
                fixture("llama").to_str().expect("utf-8"),
                "--prompt",
                "x",
            ])
            .output()
            .expect("spawn");
        let err = fails(out);
        assert!(err.contains("ONNX Runtime at"), "{err}");
    }
}

#[test]
fn no_onnx_runtime_anywhere() {
    // A user with no library in any place nib searches: empty home, no
    // Python on PATH, no ORT_DYLIB_PATH.
    let home = tempfile::tempdir().expect("tempdir");
    let out = nib()
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/nonexistent")
        .args([
            "generate",
            "--model",
            fixture("llama").to_str().expect("utf-8"),
            "--prompt",
            "x",
        ])
        .output()
        .expect("spawn");
    // A system-wide Python package (/usr/lib/python3*/) would still be found.
    if out.status.success() {
        return;
    }
    let err = fails(out);
    assert!(
        err.contains("ONNX Runtime was not found") && err.contains("install-onnxruntime.sh"),
        "{err}"
    );
}

#[test]
fn bad_arguments() {
    for args in [
        &["generate", "--device", "tpu", "--prompt", "x"][..],
        &["generate", "--top-p", "0", "--prompt", "x"],
        &["complete", "file.py:0:1"],
        &[
            "complete",
            "/nonexistent.py:1:1",
            "--model",
            "tests/fixtures/models/llama",
        ],
    ] {
        fails(nib().args(args).output().expect("spawn"));
    }
}

/// Runs `cmd` with a deadline: a hang is a failure, not a stuck suite.
fn within(mut cmd: std::process::Command, stdin: Option<std::fs::File>) -> Output {
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
    let child = cmd.spawn().expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("nib hung")
        .expect("wait")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

#[test]
fn fifos_devices_and_endless_input_are_errors_not_hangs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fifo = tmp.path().join("main.py");
    mkfifo(&fifo);
    let mut cmd = nib();
    cmd.args(["complete", &format!("{}:1:1", fifo.display())])
        .args(["--model", fixture("llama").to_str().expect("utf-8")]);
    let err = fails(within(cmd, None));
    assert!(err.contains("not a regular file"), "{err}");

    // A model whose config.json is a FIFO.
    let (_keep, dir) = model_copy("llama");
    std::fs::remove_file(dir.join("config.json")).expect("rm");
    mkfifo(&dir.join("config.json"));
    let mut cmd = nib();
    cmd.args([
        "generate",
        "--prompt",
        "x",
        "--model",
        dir.to_str().expect("utf-8"),
    ]);
    let err = fails(within(cmd, None));
    assert!(err.contains("config.json"), "{err}");

    // A prompt on stdin that never ends.
    let mut cmd = nib();
    cmd.args([
        "generate",
        "--model",
        fixture("llama").to_str().expect("utf-8"),
    ]);
    let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let err = fails(within(cmd, Some(zero)));
    assert!(err.contains("limit"), "{err}");
}

#[test]
fn thread_counts_are_bounded_by_the_machine() {
    let out = generate(
        &fixture("llama"),
        &["--threads", "100000", "--max-tokens", "2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("more threads than cores"));
}

#[test]
fn tiny_contexts_and_odd_tokenizers_are_no_panic() {
    for context in [1, 2, 3] {
        let (_keep, dir) = model_copy("llama");
        for key in ["max_position_embeddings", "n_positions", "n_ctx"] {
            set_config(&dir, key, serde_json::json!(context));
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("a.py");
        std::fs::write(&file, "def f(x):\n    return x\n").expect("write");
        let out = nib()
            .args(["complete", &format!("{}:2:5", file.display())])
            .args(["--model", dir.to_str().expect("utf-8")])
            .output()
            .expect("spawn");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "context {context}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "context {context}: {stderr}");
    }
}

#[test]
fn the_hubs_onnx_folder_layout_loads() {
    let (_keep, dir) = model_copy("llama");
    std::fs::create_dir(dir.join("onnx")).expect("mkdir");
    std::fs::rename(dir.join("model.onnx"), dir.join("onnx/model.onnx")).expect("mv");
    for model in [dir.clone(), dir.join("onnx/model.onnx")] {
        let out = generate(&model, &["--max-tokens", "2"]);
        assert!(
            out.status.success(),
            "{}: {}",
            model.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
