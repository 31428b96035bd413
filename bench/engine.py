"""Engine benchmark: nib against onnxruntime-genai and transformers.

Runs, on the CPU, with the same prompt (512 tokens of a real source file by
default) and the same number of generated tokens:
- nib and onnxruntime-genai on the shipped graph (--model; nib's default model
  is a fused GroupQueryAttention graph, onnxruntime-genai's own format), each
  both copying keys and values per step and updating them in place (nib's
  default for such graphs; genai's shared KV buffer);
- nib with and without prompt-lookup guesses (on by default for greedy
  decoding; the tokens are the same either way);
- nib and onnxruntime-genai on the optimum export of the same weights (the
  layout community models come in);
- transformers' generate on the PyTorch weights.
nib's numbers come from `cargo bench --bench engine`, which also measures the
completion after one typed character. A markdown table is printed; full
numbers go to bench/out/engine.json.

    .venv/bin/python bench/engine.py --model models/default --hf models/runs/base/final --threads 1

Without --hf the script builds a model with the same config.json and random
weights: speed depends on the shapes, not the values, and every engine is
forced to generate the same number of tokens.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def run_nib(model: pathlib.Path, args, copy_kv: bool = False, lookahead: int | None = None) -> dict:
    cmd = [
        "cargo", "bench", "--quiet", "--bench", "engine", "--",
        "--model", str(model), "--prompt-tokens", str(args.prompt_tokens),
        "--new-tokens", str(args.new_tokens), "--threads", str(args.threads),
        "--repeat", str(args.repeat), "--source", str(args.source),
    ] + (["--copy-kv"] if copy_kv else []) + ([] if lookahead is None else ["--lookahead", str(lookahead)])
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def comparison_model(model: pathlib.Path, hf: pathlib.Path | None) -> tuple[pathlib.Path, pathlib.Path]:
    """The PyTorch weights (--hf, or random ones of the same config) and their
    fp32 export by optimum, the exporter community models come from."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target = OUT / f"cmp-{model.name}"
    hf_dir = target / "hf"
    onnx_dir = target / "onnx"
    if (onnx_dir / "model.onnx").exists():
        return hf_dir, onnx_dir
    if hf is None:
        config = AutoConfig.from_pretrained(model)
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(config)
        m.save_pretrained(hf_dir)
    else:
        shutil.copytree(hf, hf_dir, dirs_exist_ok=True)
    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        if (model / name).exists():
            shutil.copy(model / name, hf_dir / name)
    subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "optimum-cli"), "export", "onnx", "--model", str(hf_dir),
         "--task", "text-generation-with-past", str(onnx_dir)],
        check=True, capture_output=True,
    )
    for name in ["nib.json"]:
        if (model / name).exists():
            shutil.copy(model / name, onnx_dir / name)
    return hf_dir, onnx_dir


def genai_config(onnx_dir: pathlib.Path, threads: int, share_buffer: bool) -> None:
    """onnxruntime-genai's config for a graph nib also runs, from its inputs."""
    import onnx

    graph = onnx.load(str(onnx_dir / "model.onnx"), load_external_data=False).graph
    names = {i.name for i in graph.input}
    cfg = json.loads((onnx_dir / "config.json").read_text())
    heads = cfg["num_attention_heads"]
    eos = cfg.get("eos_token_id", 0)
    inputs = {"input_ids": "input_ids", "attention_mask": "attention_mask",
              "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"}
    if "position_ids" in names:
        inputs["position_ids"] = "position_ids"
    (onnx_dir / "genai_config.json").write_text(json.dumps({
        "model": {
            "bos_token_id": cfg.get("bos_token_id", 0),
            "context_length": cfg["max_position_embeddings"],
            "eos_token_id": eos,
            "pad_token_id": eos if isinstance(eos, int) else eos[0],
            "type": cfg["model_type"],
            "vocab_size": cfg["vocab_size"],
            "decoder": {
                "filename": "model.onnx",
                "session_options": {"intra_op_num_threads": threads, "provider_options": []},
                "head_size": cfg.get("head_dim") or cfg["hidden_size"] // heads,
                "hidden_size": cfg["hidden_size"],
                "num_attention_heads": heads,
                "num_hidden_layers": cfg["num_hidden_layers"],
                "num_key_value_heads": cfg.get("num_key_value_heads", heads),
                "inputs": inputs,
                "outputs": {
                    "logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value",
                },
            },
        },
        "search": {"do_sample": False, "num_beams": 1, "past_present_share_buffer": share_buffer,
                   "max_length": cfg["max_position_embeddings"], "min_length": 0, "top_k": 1, "top_p": 1.0,
                   "temperature": 1.0, "repetition_penalty": 1.0},
    }, indent=1))


def run_genai(onnx_dir: pathlib.Path, ids: list[int], args, share_buffer: bool = False) -> dict:
    """onnxruntime-genai on a copy of the folder (it needs its own config file)."""
    import onnxruntime_genai as og

    copy = OUT / f"genai-{onnx_dir.name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(onnx_dir, copy)
    genai_config(copy, args.threads, share_buffer)
    model = og.Model(str(copy))
    ttft, decode = [], []
    for i in range(args.repeat + 1):
        params = og.GeneratorParams(model)
        total = len(ids) + args.new_tokens
        params.set_search_options(max_length=total, min_length=total, do_sample=False)
        gen = og.Generator(model, params)
        t0 = time.perf_counter()
        gen.append_tokens(ids)
        gen.generate_next_token()
        t1 = time.perf_counter()
        for _ in range(args.new_tokens - 1):
            gen.generate_next_token()
        t2 = time.perf_counter()
        if i:  # the first run warms up
            ttft.append((t1 - t0) * 1000)
            decode.append((args.new_tokens - 1) / (t2 - t1))
    return {"time_to_first_token_ms": statistics.median(ttft), "decode_tokens_per_s": statistics.median(decode),
            "prefill_tokens_per_s": len(ids) / (statistics.median(ttft) / 1000)}


def run_transformers(hf_dir: pathlib.Path, ids: list[int], args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    x = torch.tensor([ids])
    ttft, decode = [], []
    with torch.inference_mode():
        for i in range(args.repeat + 1):
            t0 = time.perf_counter()
            model.generate(x, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            t1 = time.perf_counter()
            model.generate(x, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
            t2 = time.perf_counter()
            if i:
                first = t1 - t0
                ttft.append(first * 1000)
                decode.append((args.new_tokens - 1) / ((t2 - t1) - first))
    return {"time_to_first_token_ms": statistics.median(ttft), "decode_tokens_per_s": statistics.median(decode),
            "prefill_tokens_per_s": len(ids) / (statistics.median(ttft) / 1000)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=pathlib.Path, default=ROOT / "models" / "default")
    p.add_argument("--hf", type=pathlib.Path, help="PyTorch weights of --model (else random weights, same config)")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--source", type=pathlib.Path, default=ROOT / "src" / "engine" / "ort.rs")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    from tokenizers import Tokenizer

    hf_dir, optimum_dir = comparison_model(args.model.resolve(), args.hf)
    tok = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    ids = tok.encode(args.source.read_text(), add_special_tokens=False).ids[: args.prompt_tokens]

    results = {
        "nib (shipped graph)": run_nib(args.model, args),
        "nib (shipped graph, no lookahead)": run_nib(args.model, args, lookahead=0),
        "nib (shipped graph, no lookahead, KV copied per step)": run_nib(args.model, args, copy_kv=True, lookahead=0),
        "onnxruntime-genai (shipped graph)": run_genai(args.model, ids, args),
        "onnxruntime-genai (shipped graph, shared KV buffer)": run_genai(args.model, ids, args, share_buffer=True),
        "nib (optimum export)": run_nib(optimum_dir, args),
        "nib (optimum export, no lookahead)": run_nib(optimum_dir, args, lookahead=0),
        "onnxruntime-genai (optimum export)": run_genai(optimum_dir, ids, args),
        "transformers (PyTorch fp32)": run_transformers(hf_dir, ids, args),
    }
    machine = f"{platform.processor() or platform.machine()}, {args.threads} threads"
    (OUT / "engine.json").write_text(json.dumps({"machine": machine, "args": vars(args) | {
        "model": str(args.model), "hf": str(args.hf), "source": str(args.source)}, "results": results}, indent=1,
        default=str))
    print(f"| engine | prefill tok/s | time to first token (ms) | decode tok/s |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['prefill_tokens_per_s']:.0f} | {r['time_to_first_token_ms']:.1f} | "
              f"{r['decode_tokens_per_s']:.0f} |")
    torch_decode = results["transformers (PyTorch fp32)"]["decode_tokens_per_s"]
    for graph in ["shipped graph", "optimum export"]:
        nib = results[f"nib ({graph})"]["decode_tokens_per_s"]
        # Against genai's best configuration on this graph.
        genai = max(r["decode_tokens_per_s"] for name, r in results.items()
                    if name.startswith(f"onnxruntime-genai ({graph}"))
        print(f"{graph}: nib / best onnxruntime-genai decode {nib / genai:.2f}x, "
              f"nib / transformers decode {nib / torch_decode:.2f}x")
    for name in ["nib (shipped graph)", "nib (optimum export)"]:
        r = results[name]
        print(f"{name}: one typed character costs {r['typed_over_cold_first_token']:.1%} of a cold time to first "
              f"token ({r['typed_first_token_ms']:.1f} vs {r['cold_first_token_ms']:.1f} ms, "
              f"{r['typed_prefill_tokens']:.0f} tokens prefilled), "
              f"{r['typed_over_cold_completion']:.1%} of a cold {r['completion_tokens']}-token completion")

if __name__ == "__main__":
    main()
