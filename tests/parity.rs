//! The engine reproduces transformers' own greedy output, token for token,
//! on tiny random-weight exports of each supported layout
//! (tests/fixtures/models, made by `nib-fixtures` in models/).

mod common;

use std::path::Path;

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

/// Other forms of graph: fp16 and int8-quantized ones against a plain
/// onnxruntime loop in Python on the same graph (variants/make.py), and a
/// fused GroupQueryAttention graph from onnxruntime-genai's builder, with its
/// weights in external data, against transformers (variants/make_fused.py).
#[test]
fn other_graph_forms_match_their_references() {
    let checked = check_all("tests/fixtures/variants");
    assert_eq!(checked, ["llama_fp16", "llama_gqa", "llama_int8"]);
}

/// Checks every fixture folder under `folder` and returns their names.
fn check_all(folder: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&root).expect("fixtures folder") {
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
        for case in cases {
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
                "--format",
                "json",
            ]);
            let got: Vec<u32> = serde_json::from_value(out["tokens"].clone()).expect("tokens");
            let mut want: Vec<u32> =
                serde_json::from_value(case["tokens"].clone()).expect("tokens");
            // transformers returns the EOS it stopped at; nib reports it as the finish reason.
            if out["finish_reason"] == "eos" {
                let eos = want.pop();
                assert!(
                    eos.is_some(),
                    "{}: nib stopped at EOS, transformers did not",
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
