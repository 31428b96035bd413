"""nib and llama.cpp side by side: the same weights, the same machine, one run.

nib's default model is written as GGUF (`nib-gguf`, f32 and Q8_0) and as
nib's own 8-bit graph (`nib-quantize`), and run:
- in process by nib (`nib generate`, ONNX Runtime, fp32 and 8-bit; prompt
  lookup on, and off);
- in process by llama.cpp (llama-cpp-python's `Llama`, its own decode loop);
- by llama-cpp-python's server, with nib as the client (`--backend llama.cpp`).

For each: prefill tokens/s and time to the first token for a real prompt
(CPython's own `json/decoder.py`, cut to `--prompt-tokens`), and decode
tokens/s for `--tokens` greedy tokens past any end of text. Then keystroke
to suggestion through the LSP (`bench/lsp_typing.py`) for nib's engine and
for nib on the server. Medians of `--repeat` runs.

    .venv/bin/python bench/vs_llama_cpp.py            # release build of nib
    .venv/bin/python bench/vs_llama_cpp.py --quick    # fewer runs, no LSP typing

Prints a Markdown table; raw numbers go to bench/out/llama_cpp.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODEL = ROOT / "models" / "default"


def cpu() -> str:
    name, flags = platform.processor(), []
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and not name:
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            flags = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in have]
            break
    return f"{name} ({', '.join(flags)}), {os.cpu_count()} cores"


def prompts(tokens: int, count: int) -> list[tuple[str, list[int]]]:
    """`count` prompts of `tokens` tokens, each starting at another line of
    the source, so that no engine or server answers one from a cache."""
    import json.decoder

    from tokenizers import Tokenizer

    lines = pathlib.Path(json.decoder.__file__).read_text().splitlines(keepends=True)
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    out = []
    for run in range(count):
        ids = tok.encode("".join(lines[run:])).ids[:tokens]
        out.append((tok.decode(ids), ids))
    return out


def nib_generate(bin: str, prompt: str, tokens: int, extra: list[str]) -> dict:
    out = subprocess.run(
        [bin, "generate", "--format", "json", "--max-tokens", str(tokens), "--ignore-eos",
         "--threads", "2", "--device", "cpu", *extra],
        input=prompt, capture_output=True, text=True, check=True, cwd="/",
    )
    r = json.loads(out.stdout)
    t = r["timings"]
    n = len(r["tokens"])
    return {
        "ttft_ms": t["prefill_ms"],
        "prefill_tok_s": r["prompt_tokens"] * 1000 / t["prefill_ms"],
        "decode_tok_s": (n - 1) * 1000 / t["decode_ms"] if t["decode_ms"] else 0.0,
        "tokens": n,
        "text": r["text"],
    }


def llama_in_process(gguf: pathlib.Path, runs_of: list[list[int]], tokens: int) -> list[dict]:
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2, verbose=False)
    ban = {t: -1e9 for t in range(6)}  # end of text and the FIM markers: decode past them, as nib does
    runs = []
    for ids in runs_of:
        llm.reset()
        start = time.perf_counter()
        first = None
        n = 0
        for _chunk in llm.create_completion(ids, max_tokens=tokens, temperature=0.0, top_k=1,
                                            repeat_penalty=1.0, logit_bias=ban, stream=True):
            n += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        runs.append({
            "ttft_ms": (first - start) * 1000,
            "prefill_tok_s": len(ids) / (first - start),
            "decode_tok_s": (n - 1) / (end - first),
            "tokens": n,
        })
    del np
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, gguf: pathlib.Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "512", "--n_threads", "2", "--n_threads_batch", "2",
             "--verbose", "false", "--disable_ping_events", "true"],
            cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/v1/models", timeout=2).read()
                return
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("llama-cpp-python's server did not start")
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def median(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def typing(bin: str, extra: list[str], chars: int, name: str) -> dict:
    out = OUT / f"llama_cpp_typing_{name}.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lsp_typing.py"), "--bin", bin, "--chars", str(chars),
         "--out", str(out), *[f"--serve-arg={a}" for a in extra]],
        check=True, stdout=subprocess.DEVNULL,
    )
    s = json.loads(out.read_text())["summary"]
    return {"suggestion": s["latency_suggestion_ms"], "any": s["latency_any_answer_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("NIB_BIN", str(ROOT / "target" / "release" / "nib")))
    ap.add_argument("--prompt-tokens", type=int, default=396)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chars", type=int, default=200, help="characters typed in the LSP runs")
    ap.add_argument("--quick", action="store_true", help="2 runs each, no LSP typing")
    ap.add_argument("--out", type=pathlib.Path, default=OUT / "vs_llama_cpp.json")
    args = ap.parse_args()
    repeat = 2 if args.quick else args.repeat
    if not pathlib.Path(args.bin).is_file():
        raise SystemExit(f"{args.bin} does not exist: cargo build --release (or pass --bin)")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    sys.path.insert(0, str(ROOT / "models"))
    from nib_models import gguf_export, quantize

    OUT.mkdir(parents=True, exist_ok=True)
    ggufs = {}
    for kind in ("f32", "q8_0"):
        ggufs[kind] = OUT / f"nib-default-{kind}.gguf"
        gguf_export.write(MODEL, ggufs[kind], kind)
    q8 = OUT / "nib-default-q8"
    quantize.quantize(MODEL, q8)
    # One prompt more than runs: the first of each engine warms it up.
    cases = prompts(args.prompt_tokens, repeat + 1)
    texts = [text for text, _ in cases]
    ids = cases[0][1]
    rows: dict[str, dict] = {}

    def nib_runs(extra: list[str]) -> dict:
        return median([nib_generate(args.bin, t, args.tokens, extra) for t in texts][1:])

    rows["nib in process (ONNX Runtime, fp32, prompt lookup)"] = nib_runs([])
    rows["nib in process (ONNX Runtime, fp32, plain greedy)"] = nib_runs(["--lookahead", "0"])
    rows["nib in process (ONNX Runtime, 8-bit MatMulNBits, prompt lookup)"] = nib_runs(["--model", str(q8)])
    rows["nib in process (ONNX Runtime, 8-bit MatMulNBits, plain greedy)"] = nib_runs(
        ["--model", str(q8), "--lookahead", "0"])
    for kind, gguf in ggufs.items():
        runs = llama_in_process(gguf, [i for _, i in cases], args.tokens)
        rows[f"llama.cpp in process ({kind})"] = median(runs[1:])
    servers = {}
    for kind, gguf in ggufs.items():
        server = LlamaServer(gguf)
        servers[kind] = server
        extra = ["--backend", "llama.cpp", "--url", server.url]
        rows[f"nib → llama-cpp-python server ({kind}, HTTP)"] = nib_runs(extra)
    latency = {}
    if not args.quick:
        latency["nib in process"] = typing(args.bin, [], args.chars, "onnx")
        latency["nib → llama-cpp-python server (f32)"] = typing(
            args.bin, ["--backend", "llama.cpp", "--url", servers["f32"].url], args.chars, "server")
    for server in servers.values():
        server.stop()

    machine = cpu()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "prompt_tokens": len(ids),
              "tokens": args.tokens, "repeat": repeat, "rows": rows, "keystroke_latency_ms": latency}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{result['date']}, {machine}; prompt {len(ids)} tokens, {args.tokens} greedy tokens, median of {repeat}\n")
    print("| engine | time to first token | prefill tok/s | decode tok/s |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['ttft_ms']:.1f} ms | {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.0f} |")
    if latency:
        print("\n| keystroke → answer (LSP) | with a suggestion p50 / p95 | any answer p50 / p95 |")
        print("|---|---:|---:|")
        for name, l in latency.items():
            s, a = l["suggestion"], l["any"]
            fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"| {name} | {fmt(s['p50'])} / {fmt(s['p95'])} ms | {fmt(a['p50'])} / {fmt(a['p95'])} ms |")
    print(f"\nraw numbers in {args.out}")


if __name__ == "__main__":
    main()
