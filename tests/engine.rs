//! The engine on real ONNX Runtime with tiny real exports: KV-cache reuse,
//! stop conditions, seeded sampling.

mod common;

use nib::engine::{Engine, FinishReason, GenerateRequest, OrtEngine, RunToEnd};

fn load(name: &str) -> OrtEngine {
    common::load_engine(name)
}

fn request(prompt: Vec<u32>, max_tokens: usize) -> GenerateRequest {
    GenerateRequest::new(prompt, max_tokens)
}

const CODE: &str = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n";

#[test]
fn kv_reuse_gives_the_tokens_of_a_cold_run() {
    for name in ["llama", "gpt2", "gpt_bigcode", "qwen2"] {
        let mut warm = load(name);
        let base = warm.tokenizer().encode_prompt(CODE).expect("encode");
        warm.generate(&request(base.clone(), 8), &mut RunToEnd)
            .expect("first");
        // The next keystroke: the prompt grows by a few tokens.
        let typed = warm
            .tokenizer()
            .encode_prompt(&format!("{CODE}print(fib"))
            .expect("encode");
        let reused = warm
            .generate(&request(typed.clone(), 12), &mut RunToEnd)
            .expect("warm");
        let cold = load(name)
            .generate(&request(typed.clone(), 12), &mut RunToEnd)
            .expect("cold");
        assert_eq!(reused.tokens, cold.tokens, "{name}");
        assert!(reused.timings.reused_tokens > 0, "{name}: nothing reused");
        assert_eq!(
            reused.timings.reused_tokens + reused.timings.prefill_tokens,
            typed.len(),
            "{name}"
        );
        assert_eq!(cold.timings.reused_tokens, 0, "{name}");

        // Going back (a deleted character) reuses the shared part too.
        let back = warm
            .generate(&request(base.clone(), 8), &mut RunToEnd)
            .expect("back");
        let cold_back = load(name)
            .generate(&request(base, 8), &mut RunToEnd)
            .expect("cold back");
        assert_eq!(back.tokens, cold_back.tokens, "{name}");
        assert!(back.timings.reused_tokens > 0, "{name}");
    }
}

#[test]
fn the_same_prompt_twice_reuses_all_but_one_token() {
    let mut engine = load("llama");
    let prompt = engine.tokenizer().encode_prompt(CODE).expect("encode");
    let first = engine
        .generate(&request(prompt.clone(), 6), &mut RunToEnd)
        .expect("first");
    let second = engine
        .generate(&request(prompt.clone(), 6), &mut RunToEnd)
        .expect("second");
    assert_eq!(first.tokens, second.tokens);
    assert_eq!(second.timings.prefill_tokens, 1);
}

#[test]
fn stop_sequences_cut_the_text() {
    let mut engine = load("qwen2");
    let prompt = engine.tokenizer().encode_prompt(CODE).expect("encode");
    let free = engine
        .generate(&request(prompt.clone(), 24), &mut RunToEnd)
        .expect("free");
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() > 6, "need some text to cut: {:?}", free.text);
    // A stop sequence taken from the middle of the free-running text.
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let expected_len = free.text.find(&stop).expect("stop occurs");
    let mut req = request(prompt, 24);
    req.stop = vec![stop.clone()];
    let cut = engine.generate(&req, &mut RunToEnd).expect("cut");
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert_eq!(cut.text, free.text[..expected_len], "stop {stop:?}");
}

#[test]
fn stop_tokens_end_like_eos() {
    let mut engine = load("llama");
    let prompt = engine.tokenizer().encode_prompt(CODE).expect("encode");
    let free = engine
        .generate(&request(prompt.clone(), 10), &mut RunToEnd)
        .expect("free");
    let mut req = request(prompt, 10);
    req.stop_tokens = vec![free.tokens[3]];
    let stopped = engine.generate(&req, &mut RunToEnd).expect("stopped");
    assert_eq!(stopped.finish_reason, FinishReason::Eos);
    let first = free
        .tokens
        .iter()
        .position(|&t| t == free.tokens[3])
        .expect("present");
    assert_eq!(stopped.tokens, free.tokens[..first]);
}

#[test]
fn max_tokens_and_cancellation() {
    let mut engine = load("gpt2");
    let prompt = engine.tokenizer().encode_prompt(CODE).expect("encode");
    // Past EOS too, so the limit is what ends it whatever the weights say.
    let mut long = request(prompt.clone(), 5);
    long.ignore_eos = true;
    let out = engine.generate(&long, &mut RunToEnd).expect("gen");
    assert_eq!(out.finish_reason, FinishReason::MaxTokens);
    assert_eq!(out.tokens.len(), 5);
    let cancel = nib::engine::CancelToken::new();
    cancel.cancel();
    let mut control = cancel.clone();
    let out = engine
        .generate(&request(prompt, 5), &mut control)
        .expect("cancelled");
    assert_eq!(out.finish_reason, FinishReason::Cancelled);
    assert!(out.tokens.is_empty());
}

#[test]
fn seeded_sampling_is_reproducible_through_the_cli() {
    let model = common::fixture("llama");
    let args = |seed: &str| {
        common::nib_json(&[
            "generate",
            "--model",
            model.to_str().expect("utf-8"),
            "--prompt",
            CODE,
            "--max-tokens",
            "16",
            "--temperature",
            "1.0",
            "--top-k",
            "40",
            "--top-p",
            "0.95",
            "--seed",
            seed,
            "--format",
            "json",
        ])["tokens"]
            .clone()
    };
    assert_eq!(args("7"), args("7"));
    assert_ne!(
        args("7"),
        args("8"),
        "different seeds gave identical samples"
    );
}

#[test]
fn tokens_outside_the_vocabulary_are_rejected() {
    let mut engine = load("llama");
    let err = engine
        .generate(&request(vec![1, 2, 999_999], 4), &mut RunToEnd)
        .expect_err("out of range");
    assert!(
        err.to_string().contains("outside the model's vocabulary"),
        "{err}"
    );
    // The engine keeps serving after a bad request.
    let prompt = engine.tokenizer().encode_prompt("x = ").expect("encode");
    engine
        .generate(&request(prompt, 2), &mut RunToEnd)
        .expect("still works");
}

#[test]
fn streamed_text_equals_the_full_decode() {
    let samples = [
        "fn main() { println!(\"héllo wörld 🎉\"); }",
        "# 日本語のコメント\nx = '∑' * 3\n",
        "  indented\r\n\ttabs",
    ];
    for name in ["llama", "gpt2", "qwen2", "gpt_bigcode"] {
        let tokenizer = nib::model::Tokenizer::load(&common::fixture(name)).expect("tokenizer");
        for sample in samples {
            let ids = tokenizer.encode(sample).expect("encode");
            let mut stream = nib::model::TextStream::default();
            let mut last = String::new();
            for &id in &ids {
                let text = stream.push(&tokenizer, id).to_owned();
                assert!(
                    text.starts_with(&last),
                    "{name}: streamed text changed what it had shown"
                );
                last = text;
            }
            assert_eq!(last, tokenizer.decode(&ids), "{name}: {sample:?}");
        }
    }
}

#[test]
fn a_required_prefix_starts_the_output() {
    let mut engine = load("gpt2");
    let prompt = engine
        .tokenizer()
        .encode_prompt("def fibonacci(n):\n")
        .expect("encode");
    let req = GenerateRequest {
        required_prefix: "    ret".into(),
        ..request(prompt, 16)
    };
    let out = engine.generate(&req, &mut RunToEnd).expect("generate");
    assert!(out.text.starts_with("    ret"), "{:?}", out.text);
}

/// The fixtures, and nib's own model: its graph computes only the logits a
/// run needs (`logits_to_keep`), which the fixtures' exports do not.
fn scoring_engines() -> Vec<(&'static str, OrtEngine)> {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let own = common::load_model(&default, false);
    assert!(
        own.info().logits_to_keep,
        "nib's graph takes logits_to_keep"
    );
    let llama = load("llama");
    assert!(!llama.info().logits_to_keep);
    vec![("llama", llama), ("gpt2", load("gpt2")), ("default", own)]
}

#[test]
fn scores_are_the_model_s_log_probabilities() {
    for (name, mut engine) in scoring_engines() {
        // Mid-statement, so that no model ends the text here.
        let prompt = engine
            .tokenizer()
            .encode_prompt(&format!("{CODE}\nprint(fibonacci("))
            .expect("encode");
        let greedy = engine
            .generate(&request(prompt.clone(), 3), &mut RunToEnd)
            .expect("generate")
            .tokens;
        assert_eq!(greedy.len(), 3, "{name}");
        // The greedy token scores highest among all single tokens.
        let vocab = engine.info().vocab_size.min(8192) as u32;
        let singles: Vec<Vec<u32>> = (0..vocab).map(|t| vec![t]).collect();
        let scores = engine.score(&prompt, &singles).expect("score singles");
        let best = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .expect("scores");
        assert_eq!(best as u32, greedy[0], "{name}");
        let total: f64 = scores.iter().map(|s| s.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-3,
            "{name}: probabilities sum to {total}"
        );

        // A sequence scores the sum of its tokens' scores, each after the
        // ones before it, and scoring leaves later generation unchanged.
        let whole = engine
            .score(&prompt, std::slice::from_ref(&greedy))
            .expect("score whole")[0];
        let mut sum = 0.0;
        let mut context = prompt.clone();
        for &t in &greedy {
            sum += engine.score(&context, &[vec![t]]).expect("score step")[0];
            context.push(t);
        }
        assert!((whole - sum).abs() < 1e-3, "{name}: {whole} vs {sum}");
        let again = engine
            .generate(&request(prompt.clone(), 3), &mut RunToEnd)
            .expect("generate again");
        assert_eq!(again.tokens, greedy, "{name}");
    }
}

#[test]
fn scoring_against_the_first_stops_early_only_when_nothing_is_above_it() {
    for (name, mut engine) in scoring_engines() {
        let tokenizer = engine.tokenizer();
        let prompt = tokenizer.encode_prompt(CODE).expect("encode");
        // The written continuation first, then others of one and more
        // tokens, some likelier than it and some not.
        let continuations: Vec<Vec<u32>> = ["    return", " n", "\n", "    pass\n", "xyz = 1"]
            .iter()
            .map(|t| tokenizer.encode(t).expect("encode"))
            .collect();
        let exact = engine.score(&prompt, &continuations).expect("score");
        let best_other = exact[1..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let gap = best_other - exact[0];
        for margin in [gap - 5.0, gap - 0.01, gap + 0.01, gap + 5.0, -50.0, 50.0] {
            let got = engine
                .score_above_first(&prompt, &continuations, margin)
                .expect("score above first");
            let above = exact[1..].iter().any(|&s| s >= exact[0] + margin);
            match got {
                Some(scores) => {
                    assert!(above, "{name}: scores at margin {margin} with none above");
                    for (a, b) in scores.iter().zip(&exact) {
                        assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
                    }
                }
                None => assert!(
                    !above,
                    "{name}: nothing at margin {margin}, yet one is above"
                ),
            }
        }
        // Scoring left the engine as it was.
        let again = engine.score(&prompt, &continuations).expect("score again");
        assert_eq!(again.len(), exact.len());
    }
}

#[test]
fn in_place_kv_gives_the_tokens_and_scores_of_copying() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        root.join("tests/fixtures/variants/llama_gqa"),
        root.join("models/default"),
    ] {
        let mut in_place = common::load_model(&dir, false);
        let mut copying = common::load_model(&dir, true);
        assert!(in_place.info().in_place_kv, "{}", dir.display());
        assert!(!copying.info().in_place_kv, "{}", dir.display());
        let prompt = in_place
            .tokenizer()
            .encode_prompt(&CODE.repeat(3))
            .expect("encode");
        let long = |prompt: Vec<u32>| GenerateRequest {
            ignore_eos: true,
            ..request(prompt, 64)
        };
        let mut outputs = Vec::new();
        for engine in [&mut in_place, &mut copying] {
            let first = engine
                .generate(&long(prompt.clone()), &mut RunToEnd)
                .expect("first");
            // A later prompt that shares a prefix reuses (and overwrites past) it.
            let mut typed = prompt.clone();
            typed.extend_from_slice(&first.tokens[..5]);
            let second = engine
                .generate(&long(typed.clone()), &mut RunToEnd)
                .expect("second");
            assert!(second.timings.reused_tokens > 0);
            let back = engine
                .generate(&long(prompt.clone()), &mut RunToEnd)
                .expect("back");
            let scores = engine
                .score(&typed, &[first.tokens[5..9].to_vec(), vec![1, 2, 3]])
                .expect("score");
            outputs.push((first.tokens, second.tokens, back.tokens, scores));
        }
        let (a, b) = (&outputs[0], &outputs[1]);
        assert_eq!((&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2), "{}", dir.display());
        for (x, y) in a.3.iter().zip(&b.3) {
            assert!((x - y).abs() < 1e-3, "{}: scores {x} vs {y}", dir.display());
        }
    }
}

#[test]
fn guessing_ahead_changes_no_token() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        common::fixture("llama"),
        common::fixture("gpt2"),
        root.join("tests/fixtures/variants/llama_gqa"),
        // 8-bit MatMulNBits weights: each row's activations are quantized
        // on their own, so a run over several tokens changes no row.
        root.join("tests/fixtures/variants/llama_gqa_q8"),
        root.join("models/default"),
    ];
    for dir in dirs {
        let mut engine = common::load_model(&dir, false);
        if dir.ends_with("llama_gqa_q8") {
            assert!(engine.info().quantized);
        }
        let prompt = engine
            .tokenizer()
            .encode_prompt(&CODE.repeat(3))
            .expect("encode");
        let run = |engine: &mut OrtEngine, lookahead| {
            let req = GenerateRequest {
                ignore_eos: true,
                lookahead,
                ..request(prompt.clone(), 48)
            };
            engine.clear_cache();
            engine.generate(&req, &mut RunToEnd).expect("generate")
        };
        let plain = run(&mut engine, 0);
        let guessing = run(&mut engine, 8);
        assert_eq!(plain.tokens, guessing.tokens, "{}", dir.display());
        assert_eq!(plain.timings.guessed_tokens, 0);
        if dir.ends_with("default") {
            // A trained model repeats the repeated code: guesses land.
            assert!(
                guessing.timings.guessed_tokens > 0,
                "{:?}",
                guessing.timings
            );
        }
    }
}
