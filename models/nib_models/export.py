"""Export a trained model to ONNX for nib: fp32, int8 (dynamic quantization) and fp16.

Each variant is a complete model folder (model.onnx, config.json,
generation_config.json, tokenizer files, nib.json). The fp32 export is made by
optimum's exporter (``text-generation-with-past``) and must reproduce
PyTorch's greedy output exactly, else the export fails. The int8 and fp16
variants are compared with PyTorch and their agreement is reported
(quantization changes logits, so they are not required to match).

Usage: nib-export --model runs/base/final --out runs/base/onnx [--variants fp32,int8,fp16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .fixtures import _ort_session, describe_io, export_onnx, ort_greedy

NIB_JSON = {"fim": {"spm": True}}
VERIFY_PROMPTS = [
    "def add(a, b):\n    return",
    "import os\nimport sys\n\n\ndef main():\n    ",
    "fn main() {\n    let mut v = Vec::new();\n    for i in 0..10 {\n        ",
    "use std::collections::HashMap;\n\npub struct Cache {\n",
    "class Config:\n    def __init__(self, path):\n        self.path = path\n\n    def load(self):\n        ",
]
COPY_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json")


def fix_config(hf_dir: Path):
    """Make a checkpoint's config.json readable by transformers 4.57 (the exporter's version).

    transformers 5 writes ``rope_parameters``; 4.57 ignores it and would use
    rope_theta 10000. Lift rope_theta (and scaling) to the top level."""
    p = hf_dir / "config.json"
    cfg = json.loads(p.read_text())
    rp = cfg.get("rope_parameters")
    changed = False
    if isinstance(rp, dict):
        if "rope_theta" in rp and cfg.get("rope_theta") != rp["rope_theta"]:
            cfg["rope_theta"] = rp["rope_theta"]
            changed = True
        rt = rp.get("rope_type", "default")
        if rt not in (None, "default") and not cfg.get("rope_scaling"):
            cfg["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
            changed = True
    if cfg.get("dtype") == "bfloat16" or cfg.get("torch_dtype") == "bfloat16":
        cfg["torch_dtype"] = "float32"
        cfg.pop("dtype", None)
        changed = True
    if changed:
        p.write_text(json.dumps(cfg, indent=2))
    return cfg


def torch_greedy(hf_dir, prompts, max_new_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    eos = model.config.eos_token_id
    outs = []
    for p in prompts:
        ids = tok(p, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            g = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                               max_new_tokens=max_new_tokens, pad_token_id=eos)
        outs.append((ids, g[0, len(ids):].tolist()))
    return outs, eos


def quantize_int8(src: Path, dst: Path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gather"], extra_options={"MatMulConstBOnly": True})


def convert_fp16(src: Path, dst: Path):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = onnx.load(str(src))
    m16 = convert_float_to_float16(m, keep_io_types=True, disable_shape_infer=False)
    onnx.save(m16, str(dst))


def export(model_dir, out_dir, variants=("fp32", "int8", "fp16"), max_new_tokens=32, log=print, strict=True):
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp) / "hf"
        shutil.copytree(model_dir, hf, ignore=shutil.ignore_patterns("optimizer.pt", "state.json", "*.png"))
        fix_config(hf)
        ref, eos = torch_greedy(hf, VERIFY_PROMPTS, max_new_tokens)
        fp32 = out_dir / "fp32"
        if fp32.exists():
            shutil.rmtree(fp32)
        export_onnx(hf, fp32)
        for name in COPY_FILES:  # the exporter writes these; make sure they are there
            if not (fp32 / name).exists() and (hf / name).exists():
                shutil.copy(hf / name, fp32 / name)
    (fp32 / "nib.json").write_text(json.dumps(NIB_JSON) + "\n")
    for extra in fp32.glob("*.onnx_data"):
        raise RuntimeError(f"export wrote external data {extra}; the model is too large for one file")

    def check(variant_dir, must_match):
        sess = _ort_session(variant_dir / "model.onnx")
        agree, total, exact = 0, 0, 0
        for ids, want in ref:
            got, _ = ort_greedy(sess, ids, max_new_tokens, eos)
            total += len(want)
            agree += sum(1 for a, b in zip(got, want) if a == b)
            # count agreement up to the first divergence too
            exact += int(got == want)
            if must_match and got != want:
                raise RuntimeError(f"{variant_dir.name}: ORT greedy {got} != PyTorch {want}")
        return {"prompts_identical": f"{exact}/{len(ref)}", "token_agreement": round(agree / max(1, total), 4),
                "bytes": (variant_dir / "model.onnx").stat().st_size}

    report["variants"]["fp32"] = check(fp32, must_match=strict)
    report["io"] = describe_io(fp32 / "model.onnx")
    log(f"fp32: {report['variants']['fp32']}")
    for v in variants:
        if v == "fp32":
            continue
        d = out_dir / v
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        for f in fp32.iterdir():
            if f.name != "model.onnx":
                shutil.copy(f, d / f.name)
        if v == "int8":
            quantize_int8(fp32 / "model.onnx", d / "model.onnx")
        elif v == "fp16":
            convert_fp16(fp32 / "model.onnx", d / "model.onnx")
        else:
            raise ValueError(v)
        try:
            report["variants"][v] = check(d, must_match=False)
        except Exception as e:  # fp16 may not run on the CPU provider
            report["variants"][v] = {"error": str(e)[:300], "bytes": (d / "model.onnx").stat().st_size}
        log(f"{v}: {report['variants'][v]}")
    if "fp32" not in variants:
        shutil.rmtree(fp32)
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export a nib model to ONNX (fp32, int8, fp16)")
    ap.add_argument("--model", required=True, help="HF folder (e.g. runs/base/final)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", default="fp32,int8,fp16")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    r = export(a.model, a.out, [v for v in a.variants.split(",") if v], a.max_new_tokens)
    print(json.dumps(r["variants"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
