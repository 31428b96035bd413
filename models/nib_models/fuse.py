"""Export a trained model as a fused ONNX graph for fast CPU decoding.

optimum's exporter writes a graph of a few hundred small nodes per model
(shape arithmetic around every attention); at nib's model sizes running those
nodes costs more than the matrix products. onnxruntime-genai's model builder
writes the same model as about fifteen nodes a layer (GroupQueryAttention,
SkipSimplifiedLayerNormalization, rotary embedding inside attention), which
nib runs unchanged: it takes `input_ids`, `attention_mask` and
`past_key_values.N.key/value` and returns `logits` and `present.N.*`.

The builder needs transformers >= 5 and onnx-ir, which conflict with the
exporter's pins, so they are installed into a separate folder (--builder-path,
created on first use from PyPI). The result must reproduce PyTorch's greedy
output exactly, else the export fails.

The fused graph also takes an optional `logits_to_keep` (see
`add_logits_to_keep`): a prompt's run then computes the logits of its last
position only, not a vocabulary's worth for every prompt token.

Usage: nib-fuse --model runs/base/final --out runs/base/onnx/fused [--precision fp32|int4]
       nib-fuse --add-logits-to-keep models/default/model.onnx
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

from .export import COPY_FILES, NIB_JSON, VERIFY_PROMPTS, fix_config, torch_greedy

BUILDER_REQUIREMENTS = ["transformers>=5,<6", "onnx-ir"]
DEFAULT_BUILDER_PATH = Path.home() / ".cache" / "nib" / "genai-builder"


def ensure_builder(path: Path) -> Path:
    """Installs the builder's own transformers into `path` once."""
    if not (path / "transformers").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(path),
                        *BUILDER_REQUIREMENTS], check=True)
    return path


LOGITS_TO_KEEP = "logits_to_keep"


def add_logits_to_keep(graph: Path) -> bool:
    """Gives the graph an optional input `logits_to_keep` (int64, shape [1]),
    as Hugging Face's `logits_to_keep`: the logits of the last k positions
    only, all of them when 0. It is an initializer that is also an input, so
    it defaults to 0 and runners that do not know it see the graph as before.
    The lm_head is about 40% of a small model's work per position, and a
    prompt needs only its last position's logits.

    Edits the graph file in place; its external weights are not touched.
    Returns False when the graph already has the input."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(graph), load_external_data=False)
    g = model.graph
    if any(i.name == LOGITS_TO_KEEP for i in g.input):
        return False
    # int4 graphs compute the head with MatMulNBits; its first input is the hidden states too.
    heads = [n for n in g.node if "logits" in n.output and n.op_type in ("MatMul", "MatMulNBits")]
    if len(heads) != 1:
        raise RuntimeError(f"{graph}: no single MatMul gives `logits`")
    head = heads[0]
    g.input.append(helper.make_tensor_value_info(LOGITS_TO_KEEP, TensorProto.INT64, [1]))
    g.initializer.extend([
        helper.make_tensor(LOGITS_TO_KEEP, TensorProto.INT64, [1], [0]),
        helper.make_tensor("logits_to_keep/axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("logits_to_keep/end", TensorProto.INT64, [1], [2**62]),
    ])
    at = list(g.node).index(head)
    # -0 is 0: a slice from 0 keeps every position.
    g.node.insert(at, helper.make_node("Neg", [LOGITS_TO_KEEP], ["logits_to_keep/start"]))
    g.node.insert(at + 1, helper.make_node("Slice", [head.input[0], "logits_to_keep/start", "logits_to_keep/end",
                                                     "logits_to_keep/axes"], ["logits_to_keep/hidden"]))
    head.input[0] = "logits_to_keep/hidden"
    onnx.save(model, str(graph))
    return True


def greedy(graph: Path, config: dict, prompt_ids: list[int], max_new: int, eos: int | None) -> list[int]:
    """Greedy decoding over the fused graph with onnxruntime, as nib runs it."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    kv_heads = config.get("num_key_value_heads", heads)
    out_names = [o.name for o in sess.get_outputs()]
    past = {i.name: np.zeros([1, kv_heads, 0, head_dim], np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values")}
    feed, length, out = list(prompt_ids), 0, []
    for _ in range(max_new):
        total = length + len(feed)
        res = dict(zip(out_names, sess.run(None, {
            "input_ids": np.array([feed], np.int64), "attention_mask": np.ones([1, total], np.int64),
            LOGITS_TO_KEEP: np.array([1], np.int64), **past})))
        token = int(np.argmax(res["logits"][0, -1]))
        out.append(token)
        past = {k: res[k.replace("past_key_values", "present")] for k in past}
        length = total
        if token == eos:
            break
        feed = [token]
    return out


def fuse(model_dir: Path, out_dir: Path, builder_path: Path, precision: str = "fp32", max_new_tokens: int = 32,
         log=print) -> dict:
    builder_path = ensure_builder(builder_path)
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp) / "hf"
        shutil.copytree(model_dir, hf, ignore=shutil.ignore_patterns("optimizer.pt", "state.json", "*.png"))
        config = fix_config(hf)
        ref, eos = torch_greedy(hf, VERIFY_PROMPTS, max_new_tokens)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        env = dict(os.environ, PYTHONPATH=str(builder_path))
        run = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf),
                              "-o", str(out_dir), "-p", precision, "-e", "cpu"],
                             env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"the model builder failed:\n{run.stderr[-3000:]}")
        # nib reads the Hugging Face files; the builder's own config is for onnxruntime-genai.
        for name in COPY_FILES:
            if (hf / name).exists():
                shutil.copy(hf / name, out_dir / name)
    (out_dir / "genai_config.json").unlink(missing_ok=True)
    add_logits_to_keep(out_dir / "model.onnx")
    (out_dir / "nib.json").write_text(json.dumps(NIB_JSON) + "\n")
    identical = 0
    for ids, want in ref:
        got = greedy(out_dir / "model.onnx", config, ids, max_new_tokens, eos)
        if got == want:
            identical += 1
        elif precision == "fp32":
            raise RuntimeError(f"fused graph greedy {got} != PyTorch {want}")
    size = sum(f.stat().st_size for f in out_dir.glob("model.onnx*"))
    report = {"precision": precision, "prompts_identical": f"{identical}/{len(ref)}", "bytes": size}
    (out_dir / "fuse_report.json").write_text(json.dumps(report, indent=1))
    log(f"fused {precision}: {report}")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export a nib model as a fused ONNX graph (onnxruntime-genai builder)")
    ap.add_argument("--model", help="Hugging Face folder (e.g. runs/base/final)")
    ap.add_argument("--out")
    ap.add_argument("--add-logits-to-keep", type=Path, metavar="GRAPH",
                    help="only give an already fused graph the optional `logits_to_keep` input")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int4"])
    ap.add_argument("--builder-path", type=Path, default=DEFAULT_BUILDER_PATH)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    a = ap.parse_args(argv)
    if a.add_logits_to_keep:
        added = add_logits_to_keep(a.add_logits_to_keep)
        print(f"{a.add_logits_to_keep}: " + ("logits_to_keep added" if added else "already has logits_to_keep"))
        return 0
    if not (a.model and a.out):
        ap.error("--model and --out are required")
    fuse(Path(a.model), Path(a.out), a.builder_path, a.precision, a.max_new_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
