//! nib works with no flags: the default model compiled into the binary
//! loads, completes at a cursor, and is the one `models/default` holds.

mod common;

use std::path::Path;

use serde_json::Value;

/// Runs nib without NIB_MODEL or --model, expects success, parses stdout.
fn nib_default(args: &[&str]) -> Value {
    let out = common::nib()
        .env_remove("NIB_MODEL")
        .args(args)
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "nib {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn runs_with_no_model_flag() {
    let v = nib_default(&[
        "generate",
        "--prompt",
        "def main():\n    ",
        "--max-tokens",
        "8",
        // Whether the model ends the text at once is its call; this test is
        // about nib finding and running its own model.
        "--ignore-eos",
        "--format",
        "json",
    ]);
    assert!(v["tokens"].as_array().is_some_and(|t| t.len() == 8), "{v}");
    assert_eq!(v["version"], 1, "{v}");
}

#[test]
fn the_default_model_is_nibs_own() {
    let v = nib_default(&["doctor", "--format", "json"]);
    let model = &v["model"];
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default/config.json");
    let shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(config).expect("read")).expect("json");
    assert_eq!(model["layers"], shipped["num_hidden_layers"], "{v}");
    assert_eq!(model["vocab_size"], shipped["vocab_size"], "{v}");
    // nib's model knows FIM in both orders, so typing only appends to the prompt.
    assert_eq!(model["fim"], "starcoder", "{v}");
    assert_eq!(model["fim_spm"], true, "{v}");
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["backend"], "onnx", "{v}");
}

#[test]
fn completes_the_readme_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fibonacci.py");
    let v = nib_default(&[
        "complete",
        &format!("{}:5:31", example.display()),
        "--format",
        "json",
    ]);
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(5), Some(31))
    );
    // The cursor is inside a line: whatever the model writes, nib answers
    // in single-line mode (what it writes is the model evaluation's
    // business, in models/, not this test's).
    assert_eq!(v["mode"], "single_line", "{v}");
    assert!(v.get("finish_reason").is_some(), "{v}");
    assert_eq!(v["version"], 1, "{v}");
}

#[test]
fn shell_completions_are_scripts_the_shells_accept() {
    for shell in ["bash", "zsh", "fish"] {
        let out = common::nib()
            .args(["completions", shell])
            .output()
            .expect("spawn");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("utf-8");
        for word in ["check", "complete", "serve", "backend"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        if shell == "bash" {
            // bash itself parses it (`-n`: read, do not run).
            let file = tempfile::NamedTempFile::new().expect("tmp");
            std::fs::write(file.path(), &script).expect("write");
            let status = std::process::Command::new("bash")
                .arg("-n")
                .arg(file.path())
                .status()
                .expect("bash");
            assert!(status.success(), "bash rejects the script");
        }
    }
}
