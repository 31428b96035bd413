"""Build tiny random-weight parity fixtures for nib's Rust engine.

For each architecture this builds a tiny, seeded, random-weight causal LM and
a tiny byte-level BPE tokenizer, saves them as a Hugging Face folder, exports
it with ``optimum-cli export onnx --task text-generation-with-past`` and
writes ``expected.json`` holding transformers' greedy ``generate`` output.

The export is checked against PyTorch with onnxruntime (logits of the first
step and a full greedy decode with the KV cache); any mismatch is fatal.

Usage:  nib-fixtures [--out tests/fixtures/models] [--only llama,gpt2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# A little code text to train the fixture tokenizers on. Fixed, so the
# fixtures are deterministic.
SAMPLE_TEXT = r'''
def add(a, b):
    """Return the sum of a and b."""
    return a + b


def fibonacci(n):
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()

    def __len__(self):
        return len(self.items)


import os
import sys
from pathlib import Path


def read_lines(path):
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    for name in argv:
        total = 0
        for line in read_lines(name):
            total += len(line)
        print(f"{name}: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }

    pub fn distance(&self, other: &Point) -> f64 {
        let dx = self.x - other.x;
        let dy = self.y - other.y;
        (dx * dx + dy * dy).sqrt()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

fn count_words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

fn main() -> io::Result<()> {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input)?;
    let counts = count_words(&input);
    let mut pairs: Vec<_> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (word, n) in pairs.iter().take(10) {
        println!("{word}: {n}");
    }
    Ok(())
}

function greet(name) {
  const message = `Hello, ${name}!`;
  console.log(message);
  return message;
}
'''

PROMPTS = [
    "def add(a, b):",
    "fn main() {\n    let x = ",
    "import os\nimport sys\n\nclass Config:\n    def __init__(self, path):\n        self.path = path\n",
    (
        "use std::collections::HashMap;\n\n"
        "fn count_words(text: &str) -> HashMap<String, usize> {\n"
        "    let mut counts = HashMap::new();\n"
        "    for word in text.split_whitespace() {\n"
        "        *counts.entry(word.to_lowercase()).or_insert(0) += 1;\n"
        "    }\n"
        "    counts\n"
        "}\n\n"
        "def fibonacci(n):\n"
        "    if n < 2:\n"
        "        return n\n"
        "    return "
    ),
]

STARCODER_SPECIALS = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|file_sep|>"]

# name -> tokenizer style
#   specials: FIM family names (first entry is EOS), bos: BOS token added by a
#   TemplateProcessing post-processor (or None), specials_first: special tokens
#   get the lowest ids (StarCoder) or are appended after the BPE vocab (Qwen).
ARCHS = {
    "llama": dict(specials=STARCODER_SPECIALS, bos="<s>", specials_first=True),
    "qwen2": dict(specials=QWEN_SPECIALS, bos=None, specials_first=False),
    "gpt2": dict(specials=["<|endoftext|>"], bos=None, specials_first=True),
    "gpt_bigcode": dict(specials=STARCODER_SPECIALS, bos=None, specials_first=True),
    "mistral": dict(specials=STARCODER_SPECIALS, bos="<s>", specials_first=True),
    "phi3": dict(specials=["<|endoftext|>"], bos="<s>", specials_first=True),
    "qwen3": dict(specials=QWEN_SPECIALS, bos=None, specials_first=False),
}

MAX_NEW_TOKENS = 20
FIXTURE_VOCAB = 512


def build_tokenizer(specials, bos, specials_first, vocab_size=FIXTURE_VOCAB, text=SAMPLE_TEXT):
    """Train a tiny byte-level BPE and wrap it as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    all_specials = list(specials) + ([bos] if bos else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=all_specials if specials_first else [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([text], trainer=trainer)
    if not specials_first:
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in all_specials])
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    eos = specials[0]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos if bos else eos,
        eos_token=eos,
        unk_token=None,
        pad_token=None,
        additional_special_tokens=list(specials[1:]),
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    if not bos:
        # Qwen-style tokenizers have no BOS at all; GPT-2/StarCoder-style use
        # <|endoftext|> as bos_token but never add it.
        if specials is QWEN_SPECIALS:
            fast.bos_token = None
    return fast


def build_model(arch, tokenizer, seed):
    import torch
    import transformers as T

    vocab = len(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    bos_id = tokenizer.convert_tokens_to_ids(tokenizer.bos_token) if tokenizer.bos_token else None
    common = dict(vocab_size=vocab, bos_token_id=bos_id, eos_token_id=eos_id, initializer_range=0.2)
    llama_like = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    if arch == "llama":
        cfg = T.LlamaConfig(**common, **llama_like, rope_theta=10000.0, tie_word_embeddings=False)
        cls = T.LlamaForCausalLM
    elif arch == "mistral":
        cfg = T.MistralConfig(**common, **llama_like, rope_theta=10000.0, sliding_window=None,
                              tie_word_embeddings=False)
        cls = T.MistralForCausalLM
    elif arch == "qwen2":
        cfg = T.Qwen2Config(**common, **llama_like, rope_theta=1000000.0, tie_word_embeddings=True,
                            use_sliding_window=False)
        cls = T.Qwen2ForCausalLM
    elif arch == "qwen3":
        cfg = T.Qwen3Config(**common, **llama_like, head_dim=16, rope_theta=1000000.0,
                            tie_word_embeddings=True, use_sliding_window=False)
        cls = T.Qwen3ForCausalLM
    elif arch == "phi3":
        cfg = T.Phi3Config(**common, **llama_like, rope_theta=10000.0, pad_token_id=eos_id,
                           tie_word_embeddings=False)
        cls = T.Phi3ForCausalLM
    elif arch == "gpt2":
        cfg = T.GPT2Config(**common, n_positions=512, n_embd=64, n_layer=2, n_head=4)
        cls = T.GPT2LMHeadModel
    elif arch == "gpt_bigcode":
        cfg = T.GPTBigCodeConfig(**common, n_positions=512, n_embd=64, n_layer=2, n_head=4, multi_query=True)
        cls = T.GPTBigCodeForCausalLM
    else:
        raise ValueError(arch)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    return model


def _ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _empty_past(sess):
    feeds = {}
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values"):
            shape = []
            for d in i.shape:
                if isinstance(d, int):
                    shape.append(d)
                elif "batch" in str(d):
                    shape.append(1)
                else:
                    shape.append(0)
            feeds[i.name] = np.zeros(shape, dtype=np.float32)
    return feeds


def ort_greedy(sess, prompt_ids, max_new_tokens, eos_id):
    """Greedy decode with the exported graph and its KV cache.

    Returns (generated ids, logits of the first step's last position)."""
    in_names = {i.name for i in sess.get_inputs()}
    out_names = [o.name for o in sess.get_outputs()]
    past = _empty_past(sess)
    ids = list(prompt_ids)
    step_ids = list(prompt_ids)
    out = []
    first_logits = None
    for _ in range(max_new_tokens):
        past_len = len(ids) - len(step_ids)
        feeds = {"input_ids": np.array([step_ids], dtype=np.int64)}
        if "attention_mask" in in_names:
            feeds["attention_mask"] = np.ones((1, len(ids)), dtype=np.int64)
        if "position_ids" in in_names:
            feeds["position_ids"] = np.arange(past_len, len(ids), dtype=np.int64)[None, :]
        feeds.update(past)
        res = dict(zip(out_names, sess.run(None, feeds)))
        logits = res["logits"][0, -1]
        if first_logits is None:
            first_logits = logits.copy()
        nxt = int(np.argmax(logits))
        out.append(nxt)
        past = {k.replace("present", "past_key_values"): v for k, v in res.items() if k.startswith("present")}
        if eos_id is not None and nxt == eos_id:
            break
        ids.append(nxt)
        step_ids = [nxt]
    return out, first_logits


def describe_io(onnx_path):
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)

    def dims(t):
        out = []
        for d in t.type.tensor_type.shape.dim:
            out.append(d.dim_param if d.dim_param else d.dim_value)
        return out

    def dtype(t):
        return onnx.TensorProto.DataType.Name(t.type.tensor_type.elem_type).lower()

    return {
        "inputs": [(i.name, dtype(i), dims(i)) for i in m.graph.input],
        "outputs": [(o.name, dtype(o), dims(o)) for o in m.graph.output],
        "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(m.graph.node),
    }


def export_onnx(hf_dir, out_dir):
    cli = Path(sys.executable).with_name("optimum-cli")
    cmd = [str(cli), "export", "onnx", "--model", str(hf_dir), "--task", "text-generation-with-past", str(out_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"export failed: {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def build_fixture(arch, out_root: Path, seed=1234, log=print):
    import torch

    style = ARCHS[arch]
    tokenizer = build_tokenizer(**style)
    model = build_model(arch, tokenizer, seed)
    eos_id = model.config.eos_token_id

    cases = []
    min_margin = float("inf")
    prompts = list(PROMPTS)
    if len(style["specials"]) > 1:
        p, m_, s = style["specials"][1], style["specials"][2], style["specials"][3]
        prompts.append(f"{p}def add(a, b):\n    return {s}\n\nprint(add(1, 2))\n{m_}")
    for prompt in prompts:
        enc = tokenizer(prompt)
        prompt_ids = enc["input_ids"]
        inp = torch.tensor([prompt_ids])
        with torch.no_grad():
            gen = model.generate(
                inp,
                attention_mask=torch.ones_like(inp),
                do_sample=False,
                max_new_tokens=MAX_NEW_TOKENS,
                pad_token_id=eos_id,
                output_scores=True,
                return_dict_in_generate=True,
            )
        toks = gen.sequences[0, len(prompt_ids):].tolist()
        for sc in gen.scores:
            top2 = torch.topk(sc[0].float(), 2).values
            min_margin = min(min_margin, float(top2[0] - top2[1]))
        case = {"prompt": prompt, "prompt_ids": prompt_ids, "max_new_tokens": MAX_NEW_TOKENS, "tokens": toks}
        if prompt.startswith(style["specials"][1] if len(style["specials"]) > 1 else "\0"):
            case["fim"] = "psm"
        cases.append(case)
    with torch.no_grad():
        first_logits = model(torch.tensor([cases[0]["prompt_ids"]])).logits[0, -1].float().numpy()
    top5 = np.argsort(-first_logits, kind="stable")[:5]
    lens = [len(c["prompt_ids"]) for c in cases]
    assert max(lens) >= 60, f"{arch}: longest prompt has only {max(lens)} tokens"
    distinct = len({t for c in cases for t in c["tokens"]})
    if distinct < 4:
        raise RuntimeError(f"{arch}: greedy output is nearly constant ({distinct} distinct tokens); change seed")
    if min_margin < 1e-4:
        raise RuntimeError(f"{arch}: top-1/top-2 logit margin {min_margin:.2e} is too small for a parity fixture")

    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = Path(tmp) / "hf"
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
        out_dir = out_root / arch
        if out_dir.exists():
            shutil.rmtree(out_dir)
        export_onnx(hf_dir, out_dir)

    # --- checks -----------------------------------------------------------
    files = sorted(p.name for p in out_dir.iterdir())
    extra = [f for f in files if f.endswith(".onnx_data") or f.endswith(".data")]
    if extra:
        raise RuntimeError(f"{arch}: export wrote external data {extra}")
    cfg = json.loads((out_dir / "config.json").read_text())
    if arch not in ("gpt2", "gpt_bigcode") and "rope_theta" not in cfg:
        raise RuntimeError(f"{arch}: rope_theta missing from the top level of config.json")
    sess = _ort_session(out_dir / "model.onnx")
    for c in cases:
        toks, lg = ort_greedy(sess, c["prompt_ids"], c["max_new_tokens"], eos_id)
        if toks != c["tokens"]:
            raise RuntimeError(f"{arch}: ORT greedy {toks} != transformers {c['tokens']} for {c['prompt']!r}")
    _, ort_first = ort_greedy(sess, cases[0]["prompt_ids"], 1, eos_id)
    diff = float(np.max(np.abs(ort_first - first_logits)))
    if diff > 1e-3:
        raise RuntimeError(f"{arch}: ORT logits differ from PyTorch by {diff}")

    expected = {
        "arch": arch,
        "model_type": cfg.get("model_type"),
        "seed": seed,
        "eos_token_id": eos_id,
        "bos_token_id": model.config.bos_token_id,
        "cases": cases,
        "first_logits_top5": [[int(i), round(float(first_logits[i]), 5)] for i in top5],
        "ort_vs_torch_max_abs_logit_diff": diff,
        "min_top2_logit_margin": round(min_margin, 6),
        "generator": "transformers generate(do_sample=False); checked against onnxruntime greedy with KV cache",
    }
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out_dir.iterdir())
    if size > 2 * 1024 * 1024:
        raise RuntimeError(f"{arch}: fixture is {size} bytes (> 2 MB)")
    io = describe_io(out_dir / "model.onnx")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{arch}: ok, {size/1024:.0f} KiB, {n_params} params, vocab {len(tokenizer)}, "
        f"prompt lens {lens}, max |dlogit| {diff:.2e}, min margin {min_margin:.3g}")
    return {"arch": arch, "files": files + ["expected.json"], "size": size, "io": io, "params": n_params,
            "vocab": len(tokenizer), "config": cfg, "prompt_lens": lens}


def _fmt_io(rows, limit_layers=True):
    lines = []
    for name, dt, shape in rows:
        if limit_layers and (".1." in name):
            continue
        lines.append(f"  - `{name}` {dt} {shape}")
    return lines


def write_readme(out_root: Path, results, skipped):
    L = [
        "# Parity fixtures for nib's engine",
        "",
        "Tiny random-weight causal LMs exported to ONNX, with the greedy tokens transformers generates for",
        "them. The Rust engine must reproduce `tokens` exactly from `prompt_ids`.",
        "",
        "## Regenerate",
        "",
        "```sh",
        ".venv/bin/pip install -e models      # once",
        ".venv/bin/nib-fixtures --out tests/fixtures/models",
        "# or: .venv/bin/python -m nib_models.fixtures --out tests/fixtures/models",
        "```",
        "",
        "Versions: torch 2.15.0, transformers 4.57.6, optimum 2.1.0, optimum-onnx 0.1.0, onnx 1.23.2,",
        "onnxruntime 1.32.0, tokenizers 0.22.2, accelerate 1.15.0 (models/requirements.txt). Seeded and",
        "deterministic (seed 1234; the tokenizer is trained on a fixed code sample in",
        "`models/nib_models/fixtures.py`).",
        "",
        "## How they are made",
        "",
        "1. A byte-level BPE (HF `tokenizers`, ByteLevel pre-tokenizer without prefix space, ByteLevel decoder),",
        f"   vocab target {FIXTURE_VOCAB}, trained on a small fixed code sample, wrapped as `PreTrainedTokenizerFast`.",
        "   - llama, mistral: StarCoder FIM names (`<|endoftext|>`=EOS, `<fim_prefix>`, `<fim_middle>`, `<fim_suffix>`,",
        "     `<fim_pad>`, `<file_sep>`) at ids 0-5 and a BOS `<s>` (id 6) added by a `TemplateProcessing` post-processor.",
        "   - gpt_bigcode: StarCoder names at ids 0-5, no BOS added (bos_token = `<|endoftext|>`, as StarCoder).",
        "   - qwen2, qwen3: Qwen names (`<|endoftext|>`, `<|fim_prefix|>`, `<|fim_middle|>`, `<|fim_suffix|>`,",
        "     `<|fim_pad|>`, `<|file_sep|>`) appended after the BPE vocab (highest ids, as in Qwen); no BOS.",
        "   - gpt2: only `<|endoftext|>` (id 0), no BOS added.",
        "   - phi3: only `<|endoftext|>` (id 0, EOS) plus BOS `<s>` (id 1) added by the post-processor.",
        "2. A tiny model: hidden 64, 2 layers, 4 heads (head dim 16); llama/mistral/qwen2/qwen3/phi3 use 2 KV heads",
        "   (GQA), intermediate 128, max positions 512; gpt_bigcode is multi-query (1 KV head). Weights ~ N(0, 0.2)",
        "   (`initializer_range=0.2`) so greedy output is not constant. qwen2/qwen3 tie embeddings; the others don't.",
        "3. Saved with `save_pretrained` and exported with",
        "   `optimum-cli export onnx --model HF_DIR --task text-generation-with-past OUT` (fp32, single file).",
        "4. `expected.json`: for each case `prompt`, `prompt_ids` = `tokenizer(prompt)[\"input_ids\"]` (special tokens",
        "   added, so llama/mistral/phi3 start with BOS), `max_new_tokens` (20) and `tokens` = the ids",
        "   `model.generate(do_sample=False, max_new_tokens=20)` returns after the prompt (it stops after EOS,",
        "   which is then the last id). Cases with `\"fim\": \"psm\"` contain FIM special tokens written in the",
        "   prompt text (tokenized as single ids). `first_logits_top5` holds `[id, logit]` of the first",
        "   generation step of the first case (PyTorch). `min_top2_logit_margin` is the smallest gap between the",
        "   best and second-best logit over all greedy steps (ties would make a fixture fragile).",
        "5. The script checks the export with onnxruntime: a greedy loop using the KV cache (first step with",
        "   empty past tensors of past length 0, then one token per step) must give the same tokens as",
        "   transformers for every case, and the first step's logits must match PyTorch's within 1e-3.",
        "",
        "## Fixtures and their ONNX I/O",
        "",
        "Layer 0 is shown; every layer N in 0..num_layers has the same `past_key_values.N.*`/`present.N.*`.",
        "",
    ]
    for r in results:
        cfg = r["config"]
        L.append(f"### {r['arch']} (`model_type` {cfg.get('model_type')})")
        L.append("")
        L.append(f"- {r['params']} parameters, vocab {r['vocab']}, {r['size'] / 1024:.0f} KiB, opset {r['io']['opset']}, "
                 f"{r['io']['nodes']} graph nodes; prompt lengths {r['prompt_lens']}")
        L.append(f"- eos_token_id {cfg.get('eos_token_id')}, bos_token_id {cfg.get('bos_token_id')}"
                 + (f", rope_theta {cfg.get('rope_theta')}" if "rope_theta" in cfg else ""))
        L.append("- inputs:")
        L += ["  " + x for x in _fmt_io(r["io"]["inputs"])]
        L.append("- outputs:")
        L += ["  " + x for x in _fmt_io(r["io"]["outputs"])]
        L.append("")
    if skipped:
        L.append("## Skipped")
        L.append("")
        for a, why in skipped:
            L.append(f"- {a}: {why}")
        L.append("")
    L += [
        "## Notes for the engine",
        "",
        "- Feed inputs by name, not position: gpt2 and gpt_bigcode list the past tensors before",
        "  `attention_mask`/`position_ids`. With optimum-onnx 0.1.0 all seven exports take `attention_mask`",
        "  and `position_ids` (gpt2/gpt_bigcode too).",
        "- gpt_bigcode's cache is NOT a fused `key_value`: it is `past_key_values.N.key` and `.value`, rank 4,",
        "  `[batch, 1, past_len, head_dim]` (multi-query: one KV head).",
        "- First step: every `past_key_values.*` is an empty float32 tensor with past length 0; then feed",
        "  `present.N.*` back as `past_key_values.N.*`, `attention_mask` = ones of past+current length and",
        "  `position_ids` = past_len .. past_len+seq_len-1.",
        "- Random weights generate special ids too (BOS, FIM tokens) in `tokens`; compare ids, not text.",
        "- Each architecture uses seed 1234 + its index in (llama, qwen2, gpt2, gpt_bigcode, mistral, phi3, qwen3).",
        "",
    ]
    (out_root / "README.md").write_text("\n".join(L))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/models")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(ARCHS))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    archs = [a for a in args.only.split(",") if a] or list(ARCHS)
    results, skipped = [], []
    for arch in archs:
        try:
            # a different seed per architecture, so e.g. mistral's weights differ from llama's
            results.append(build_fixture(arch, out_root, seed=args.seed + list(ARCHS).index(arch)))
        except Exception as e:  # noqa: BLE001
            if arch in ("llama", "qwen2", "gpt2", "gpt_bigcode"):
                raise
            print(f"{arch}: SKIPPED: {e}", file=sys.stderr)
            skipped.append((arch, str(e).splitlines()[0][:300]))
            shutil.rmtree(out_root / arch, ignore_errors=True)
    if not args.no_readme:
        write_readme(out_root, results, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
