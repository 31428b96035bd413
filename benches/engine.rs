//! Engine benchmark: prefill and decode speed, time to first token, and the
//! cost of a completion after one more typed character (KV reuse) against a
//! cold one. Prints one JSON object; `bench/engine.py` runs it beside
//! onnxruntime-genai and transformers and writes the table in BENCHMARKS.md.
//!
//! cargo bench --bench engine -- --model DIR [--prompt-tokens 512]
//!     [--new-tokens 128] [--threads 2] [--device cpu] [--repeat 5] [--source FILE]
//!     [--copy-kv]   (copy keys and values each step instead of in place)
//!     [--lookahead N]  (tokens guessed ahead by prompt lookup; 0 = off)
// Its report is its output, on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use nib::engine::{
    DeviceRequest, Engine, GenerateOutput, GenerateRequest, OrtEngine, Overflow, RunToEnd,
    SessionOptions,
};
use nib::prompt::{BudgetSplit, CompletionContext, FimOrder, build_prompt};

struct Args {
    model: PathBuf,
    prompt_tokens: usize,
    new_tokens: usize,
    threads: Option<usize>,
    device: DeviceRequest,
    repeat: usize,
    source: PathBuf,
    copy_kv: bool,
    lookahead: usize,
}

fn parse() -> Args {
    let mut args = Args {
        model: PathBuf::from("models/default"),
        prompt_tokens: 512,
        new_tokens: 128,
        threads: None,
        device: DeviceRequest::Cpu,
        repeat: 5,
        source: PathBuf::from("src/engine/ort.rs"),
        copy_kv: false,
        lookahead: nib::engine::DEFAULT_LOOKAHEAD,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value().into(),
            "--prompt-tokens" => args.prompt_tokens = value().parse().expect("number"),
            "--new-tokens" => args.new_tokens = value().parse().expect("number"),
            "--threads" => args.threads = Some(value().parse().expect("number")),
            "--device" => args.device = value().parse().expect("device"),
            "--repeat" => args.repeat = value().parse().expect("number"),
            "--source" => args.source = value().into(),
            "--copy-kv" => args.copy_kv = true,
            "--lookahead" => args.lookahead = value().parse().expect("number"),
            // cargo bench passes --bench to every bench binary.
            _ => {}
        }
    }
    args
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn request(prompt: Vec<u32>, max_tokens: usize, lookahead: usize) -> GenerateRequest {
    GenerateRequest {
        overflow: Overflow::TruncateLeft,
        ignore_eos: true,
        lookahead,
        ..GenerateRequest::new(prompt, max_tokens)
    }
}

fn timed(engine: &mut OrtEngine, req: &GenerateRequest) -> (GenerateOutput, f64) {
    let t = Instant::now();
    let out = engine.generate(req, &mut RunToEnd).expect("generate");
    (out, t.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let args = parse();
    let options = SessionOptions {
        device: args.device,
        intra_threads: args.threads,
        copy_kv: args.copy_kv,
    };
    let t = Instant::now();
    let mut engine = OrtEngine::load(&args.model, &options).expect("load model");
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let source = std::fs::read_to_string(&args.source).expect("read source");
    let all = engine.tokenizer().encode(&source).expect("encode");
    assert!(
        all.len() >= args.prompt_tokens,
        "source file too short for the prompt"
    );
    let prompt: Vec<u32> = all[..args.prompt_tokens].to_vec();

    // Raw generation, cold every time.
    let (mut prefill, mut ttft, mut decode) = (Vec::new(), Vec::new(), Vec::new());
    let mut guessed = Vec::new();
    engine
        .generate(&request(prompt.clone(), 4, args.lookahead), &mut RunToEnd)
        .expect("warm-up");
    for _ in 0..args.repeat {
        engine.clear_cache();
        let (out, _) = timed(
            &mut engine,
            &request(prompt.clone(), args.new_tokens, args.lookahead),
        );
        prefill.push(out.timings.prefill_tokens_per_s());
        ttft.push(out.timings.prefill_ms);
        decode.push(out.timings.decode_tokens_per_s(out.tokens.len()));
        guessed.push(out.timings.guessed_tokens as f64);
    }

    // Typing: a FIM completion in the middle of the file, then the same
    // after one more character typed at the cursor.
    let text = engine.tokenizer().decode(&all[..args.prompt_tokens]);
    let cut = text
        .char_indices()
        .nth(text.chars().count() * 3 / 4)
        .map_or(text.len(), |(i, _)| i);
    let order = if engine.info().fim_spm {
        FimOrder::Spm
    } else {
        FimOrder::Psm
    };
    let fim = nib::engine::Engine::fim(&engine).cloned();
    // Room for the whole text, so the measurement is reuse, not prompt cutting.
    let budget = BudgetSplit::of(args.prompt_tokens * 3);
    let ctx = |extra: &str| CompletionContext {
        prefix: format!("{}{extra}", &text[..cut]),
        suffix: text[cut..].to_owned(),
        path: None,
        snippets: Vec::new(),
    };
    let build = |engine: &OrtEngine, c: &CompletionContext| {
        build_prompt(engine.tokenizer(), fim.as_ref(), order, c, budget)
            .expect("prompt")
            .tokens
    };
    let completion_tokens = 16;
    let (mut cold, mut warm, mut cold_ttft, mut warm_ttft, mut warm_prefilled) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.repeat {
        engine.clear_cache();
        let first = build(&engine, &ctx(""));
        let (out, ms) = timed(
            &mut engine,
            &request(first, completion_tokens, args.lookahead),
        );
        cold.push(ms);
        cold_ttft.push(out.timings.prefill_ms);
        let typed = ["s", "e", "l", "f", "."][i % 5];
        let next = build(&engine, &ctx(typed));
        let (out, ms) = timed(
            &mut engine,
            &request(next, completion_tokens, args.lookahead),
        );
        warm.push(ms);
        warm_ttft.push(out.timings.prefill_ms);
        warm_prefilled.push(out.timings.prefill_tokens as f64);
    }
    let first_prompt_len = build(&engine, &ctx("")).len();
    let report = serde_json::json!({
        "model": args.model,
        "device": engine.device().to_string(),
        "threads": args.threads,
        "fim_order": format!("{order:?}"),
        "load_ms": load_ms,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "prefill_tokens_per_s": median(prefill),
        "time_to_first_token_ms": median(ttft),
        "decode_tokens_per_s": median(decode),
        "lookahead": args.lookahead,
        "guessed_tokens": median(guessed),
        "completion_prompt_tokens": first_prompt_len,
        "completion_tokens": completion_tokens,
        "cold_completion_ms": median(cold.clone()),
        "typed_completion_ms": median(warm.clone()),
        "cold_first_token_ms": median(cold_ttft.clone()),
        "typed_first_token_ms": median(warm_ttft.clone()),
        "typed_prefill_tokens": median(warm_prefilled),
        "typed_over_cold_first_token": median(warm_ttft) / median(cold_ttft),
        "typed_over_cold_completion": median(warm) / median(cold),
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
