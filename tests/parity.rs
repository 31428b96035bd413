//! The engine reproduces a reference's greedy output, token for token, on
//! tiny random-weight exports of each supported layout: transformers' own
//! generate for fp32 graphs (tests/fixtures/models, made by `nib-fixtures`
//! in models/), and for fp16 and int8 graphs, whose kernels round
//! differently from one CPU to the next, a plain onnxruntime loop in Python
//! over the same graph, run on this machine now
//! (tests/fixtures/variants/reference.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[test]
fn greedy_output_matches_transformers_for_every_fixture() {
    let checked = check_all("tests/fixtures/models");
    for required in ["gpt2", "gpt_bigcode", "llama", "qwen2"] {
        assert!(
            checked.iter().any(|c| c == required),
            "no {required} fixture; checked {checked:?}"
        );
    }
}

/// Other forms of graph: fp16 and int8-quantized ones against onnxruntime's
/// Python session on the same graph (variants/make.py, variants/reference.py),
/// and a fused GroupQueryAttention graph from onnxruntime-genai's builder,
/// with its weights in external data, against transformers
/// (variants/make_fused.py).
#[test]
fn other_graph_forms_match_their_references() {
    let checked = check_all("tests/fixtures/variants");
    assert_eq!(checked, ["llama_fp16", "llama_gqa", "llama_int8"]);
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the project's environment.
fn python() -> PathBuf {
    common::python("the fp16 and int8 references run onnxruntime in Python")
}

/// Greedy tokens for each case of `dir`, by onnxruntime in Python on this machine.
fn onnxruntime_reference(dir: &Path) -> Vec<Vec<u32>> {
    let script = root().join("tests/fixtures/variants/reference.py");
    // -I: nothing from the current folder or the environment is imported.
    let out = Command::new(python())
        .arg("-I")
        .arg(&script)
        .arg(dir)
        .env("ORT_DISABLE_TELEMETRY", "1")
        .output()
        .expect("run the onnxruntime reference");
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    reference["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| serde_json::from_value(c["tokens"].clone()).expect("tokens"))
        .collect()
}

/// The EOS ids a folder's generation_config.json declares (one or a list).
fn eos_ids(dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("generation_config.json")).expect("read");
    let config: Value = serde_json::from_str(&text).expect("json");
    match &config["eos_token_id"] {
        Value::Array(ids) => ids.iter().filter_map(Value::as_u64).collect(),
        id => id.as_u64().into_iter().collect(),
    }
}

/// Checks every fixture folder under `folder` and returns their names.
fn check_all(folder: &str) -> Vec<String> {
    let dir_root = root().join(folder);
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir_root).expect("fixtures folder") {
        let dir = entry.expect("entry").path();
        let expected = dir.join("expected.json");
        if !expected.is_file() {
            continue;
        }
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).expect("read")).expect("json");
        let tokenizer = nib::model::Tokenizer::load(&dir).expect("tokenizer");
        let cases = spec["cases"].as_array().expect("cases");
        assert!(cases.len() >= 3, "{}: too few cases", dir.display());
        let computed = (spec["reference"] == "onnxruntime").then(|| onnxruntime_reference(&dir));
        let eos = eos_ids(&dir);
        for (i, case) in cases.iter().enumerate() {
            let prompt = case["prompt"].as_str().expect("prompt");
            let want_prompt: Vec<u32> =
                serde_json::from_value(case["prompt_ids"].clone()).expect("prompt_ids");
            assert_eq!(
                tokenizer.encode_prompt(prompt).expect("encode"),
                want_prompt,
                "{}: prompt ids of {prompt:?}",
                dir.display()
            );
            let max = case["max_new_tokens"]
                .as_u64()
                .expect("max_new_tokens")
                .to_string();
            let out = common::nib_json(&[
                "generate",
                "--model",
                dir.to_str().expect("utf-8"),
                "--prompt",
                prompt,
                "--max-tokens",
                &max,
                "--device",
                "cpu",
                "--threads",
                "1",
                "--format",
                "json",
            ]);
            let got: Vec<u32> = serde_json::from_value(out["tokens"].clone()).expect("tokens");
            let mut want: Vec<u32> = match &computed {
                Some(tokens) => tokens[i].clone(),
                None => serde_json::from_value(case["tokens"].clone()).expect("tokens"),
            };
            // The reference returns the EOS it stopped at; nib reports it as
            // the finish reason instead.
            if out["finish_reason"] == "eos" {
                let last = want.pop();
                assert!(
                    last.is_some_and(|t| eos.contains(&u64::from(t))),
                    "{}: nib stopped at EOS for {prompt:?}; the reference ended with {last:?}, not EOS {eos:?}",
                    dir.display()
                );
            }
            assert_eq!(got, want, "{}: tokens for {prompt:?}", dir.display());
        }
        checked.push(
            dir.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    checked.sort();
    checked
}
