//! Helpers for tests that run the real `nib` binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn nib() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nib"))
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// A temporary folder holding `files` (path, contents).
pub fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, contents).expect("write");
    }
    dir
}

/// A copy of the folder `from` (files only) that a test may change, as
/// `<tmp>/<from's name>`.
pub fn folder_copy(from: &std::path::Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(from.file_name().expect("a named folder"));
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("folder") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
    }
    (tmp, dir)
}

pub fn run(args: &[&str]) -> Output {
    nib().args(args).output().expect("spawn nib")
}

/// Runs nib, expects success, parses stdout as JSON.
pub fn nib_json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "nib {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "nib {args:?}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A fixture model loaded in this process, on the CPU with one thread.
pub fn load_engine(name: &str) -> nib::engine::OrtEngine {
    load_model(&fixture(name), false)
}

/// A model folder loaded in this process, on the CPU with one thread, with
/// keys and values updated in place where the graph allows, or copied.
pub fn load_model(dir: &std::path::Path, copy_kv: bool) -> nib::engine::OrtEngine {
    let options = nib::engine::SessionOptions {
        device: nib::engine::DeviceRequest::Cpu,
        intra_threads: Some(1),
        copy_kv,
    };
    nib::engine::OrtEngine::load(dir, &options).expect("load model")
}

/// The Python of the project's environment (`scripts/python-env.sh`), or
/// `NIB_PYTHON`; `why` says what the test needs it for.
pub fn python(why: &str) -> PathBuf {
    let python = std::env::var_os("NIB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        python.is_file(),
        "{} is missing: run scripts/python-env.sh ({why})",
        python.display()
    );
    python
}
