"""nib's quantized path: the fused graph with 8-bit block-quantized weights.

Every MatMul's weights become ONNX Runtime's `MatMulNBits` (8 bits, blocks
of 32, symmetric) at accuracy level 4, whose CPU kernels quantize each row
of activations block by block and multiply in integers, as llama.cpp's
Q8_0 does. Each row is quantized on its own, so a run over several tokens
gives every row what a run over one would: nib keeps prompt lookup on
these graphs (dynamic int8 quantization, one scale per run, cannot).

    nib-quantize models/default out/nib-q8            # write the graph
    nib-quantize --compare models/default out/nib-q8 --humaneval ../shared/data/humaneval

`--compare` decodes every HumanEval infilling task greedily with both
models through nib and counts the tasks whose output differs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

# The folder's files besides the graph, copied as they are.
SIDE_FILES = [
    "config.json",
    "generation_config.json",
    "nib.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
]


def quantize(model_dir: Path, out: Path, bits: int = 8, block: int = 32) -> dict:
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=True)
    config = nbits.DefaultWeightOnlyQuantConfig(
        block_size=block, is_symmetric=True, accuracy_level=4, bits=bits
    )
    quantizer = nbits.MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    out.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, out / name)
    onnx.save_model(
        quantizer.model.model,
        str(out / "model.onnx"),
        save_as_external_data=True,
        location="model.onnx.data",
    )
    ops = [n.op_type for n in quantizer.model.model.graph.node]
    return {
        "out": str(out),
        "matmul_nbits": ops.count("MatMulNBits"),
        "matmul_left": ops.count("MatMul"),
        "bytes": sum(p.stat().st_size for p in out.glob("model.onnx*")),
    }


def compare(reference: Path, candidate: Path, humaneval: Path, nib: str | None, tasks: int) -> dict:
    """Greedy outputs of both models on HumanEval's infilling tasks."""
    from tokenizers import Tokenizer

    from . import evaluate

    nib = evaluate.find_nib(nib)
    if nib is None:
        raise SystemExit("no nib binary: cargo build --release, or pass --nib")
    tok = Tokenizer.from_file(str(reference / "tokenizer.json"))
    max_pos = json.loads((reference / "config.json").read_text())["max_position_embeddings"]
    result = {}
    for name in ("SingleLineInfilling", "MultiLineInfilling"):
        data = evaluate.load_humaneval_infill(humaneval / f"HumanEval-{name}.jsonl.gz")
        if tasks >= 0:
            data = data[:tasks]
        _, ours = evaluate.run_infill(nib, str(reference), tok, data, max_pos)
        _, theirs = evaluate.run_infill(nib, str(candidate), tok, data, max_pos)
        differ = [a["task_id"] for a, b in zip(ours, theirs) if a["pred"] != b["pred"]]
        result[name] = {
            "tasks": len(data),
            "different_outputs": len(differ),
            "em_reference": 100 * sum(r["em"] for r in ours) / max(1, len(ours)),
            "em_candidate": 100 * sum(r["em"] for r in theirs) / max(1, len(theirs)),
            "differ": differ[:20],
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nib-quantize", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="fp32 model folder (model.onnx and its JSON files)")
    ap.add_argument("out", type=Path, help="folder to write (or, with --compare, the quantized model)")
    ap.add_argument("--bits", type=int, choices=[4, 8], default=8)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--compare", action="store_true", help="compare greedy outputs instead of writing")
    ap.add_argument("--humaneval", type=Path, help="folder with HumanEval-*Infilling.jsonl.gz")
    ap.add_argument("--tasks", type=int, default=-1, help="tasks per set (-1: all)")
    ap.add_argument("--nib", default=None, help="nib binary (default $NIB_BIN, target/release/nib)")
    args = ap.parse_args(argv)
    if args.compare:
        if not args.humaneval:
            ap.error("--compare needs --humaneval")
        report = compare(args.model, args.out, args.humaneval, args.nib, args.tasks)
    else:
        report = quantize(args.model, args.out, args.bits, args.block)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
