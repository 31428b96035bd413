//! Bad input never panics: each case exits with status 2 and a message that
//! says what is wrong and what to do.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, nib};

/// A copy of a fixture model folder that a test may break.
fn model_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
    }
    (tmp, dir)
}

/// Runs `nib generate` on `model` and returns stderr, asserting a clean failure.
fn generate_fails(model: &Path, extra: &[&str]) -> String {
    let out = nib()
        .args([
            "generate",
            "--model",
            model.to_str().expect("utf-8"),
            "--prompt",
            "def f(",
            "--device",
            "cpu",
        ])
        .args(extra)
        .output()
        .expect("spawn");
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
    let err = generate_fails(Path::new("/nonexistent/model"), &[]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn missing_graph() {
    let (_tmp, dir) = model_copy("llama");
    std::fs::remove_file(dir.join("model.onnx")).expect("rm");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("no ONNX graph"), "{err}");
}

#[test]
fn corrupt_graph() {
    let (_tmp, dir) = model_copy("llama");
    std::fs::write(dir.join("model.onnx"), b"this is not a protobuf").expect("write");
    let err = generate_fails(&dir, &[]);
    assert!(
        err.contains("model.onnx is not valid") && err.contains("cannot load"),
        "{err}"
    );
}

#[test]
fn empty_graph() {
    let (_tmp, dir) = model_copy("llama");
    std::fs::write(dir.join("model.onnx"), b"").expect("write");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn missing_tokenizer() {
    let (_tmp, dir) = model_copy("llama");
    std::fs::remove_file(dir.join("tokenizer.json")).expect("rm");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("tokenizer.json is missing"), "{err}");
}

#[test]
fn corrupt_config() {
    let (_tmp, dir) = model_copy("llama");
    std::fs::write(dir.join("config.json"), b"{ not json").expect("write");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("config.json is not valid"), "{err}");
}

#[test]
fn tokenizer_of_another_model() {
    let (_tmp, dir) = model_copy("llama");
    let config = std::fs::read_to_string(dir.join("config.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&config).expect("json");
    v["vocab_size"] = 16.into();
    std::fs::write(dir.join("config.json"), v.to_string()).expect("write");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("does not fit the model"), "{err}");
}

#[test]
fn graph_without_kv_cache() {
    let (_tmp, dir) = model_copy("llama");
    let sig = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signatures");
    std::fs::copy(sig.join("no_kv_cache.onnx"), dir.join("model.onnx")).expect("copy");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("text-generation-with-past"), "{err}");
}

#[test]
fn graph_of_another_kind() {
    let (_tmp, dir) = model_copy("llama");
    let sig = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signatures");
    std::fs::copy(sig.join("image_classifier.onnx"), dir.join("model.onnx")).expect("copy");
    let err = generate_fails(&dir, &[]);
    assert!(err.contains("pixel_values"), "{err}");
}

#[test]
fn prompt_longer_than_the_context() {
    let (_tmp, dir) = model_copy("llama");
    let config = std::fs::read_to_string(dir.join("config.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&config).expect("json");
    v["max_position_embeddings"] = 8.into();
    std::fs::write(dir.join("config.json"), v.to_string()).expect("write");
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
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("context window holds 8"), "{err}");
}

#[test]
fn completion_truncates_a_long_prompt_from_the_left() {
    let (tmp, dir) = model_copy("llama");
    let config = std::fs::read_to_string(dir.join("config.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&config).expect("json");
    v["max_position_embeddings"] = 64.into();
    std::fs::write(dir.join("config.json"), v.to_string()).expect("write");
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
    let out = nib()
        .args([
            "generate",
            "--model",
            fixture("llama").to_str().expect("utf-8"),
            "--prompt",
            "x",
            "--device",
            "cuda",
        ])
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    // On a machine with a working CUDA provider this request is valid.
    if out.status.success() {
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
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
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("ONNX Runtime at") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn bad_arguments() {
    for args in [
        &["generate", "--device", "tpu", "--prompt", "x"][..],
        &["generate", "--top-p", "0", "--prompt", "x"],
        &["complete", "file.py:0:1"],
    ] {
        let out = nib().args(args).output().expect("spawn");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
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
        .args(["generate", "--model", fixture("llama").to_str().expect("utf-8"), "--prompt", "x"])
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    // A system-wide Python package (/usr/lib/python3*/) would still be found.
    if out.status.success() {
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ONNX Runtime was not found") && err.contains("install-onnxruntime.sh"), "{err}");
}
