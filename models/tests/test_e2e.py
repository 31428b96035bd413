"""Tiny end-to-end run: corpus -> tokenizer -> pretraining (+resume) -> fine-tuning -> export -> nib generate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nib_models import corpus, evaluate, export, finetune, pretrain, tokenizer

SITE = Path(sys.executable).resolve().parents[1] / "lib"
REPO = Path(__file__).resolve().parents[2]


def _site_packages():
    import packaging

    return Path(packaging.__file__).resolve().parents[1]


def _sources():
    sp = _site_packages()
    pk = {"packaging": "Apache-2.0 OR BSD-2-Clause", "jinja2": "BSD-3-Clause", "markupsafe": "BSD-3-Clause",
          "idna": "BSD-3-Clause", "attr": "MIT"}
    out = []
    for name, lic in pk.items():
        d = sp / name
        if not d.is_dir():
            continue
        files = [(str(f.relative_to(d)), f.read_text(encoding="utf-8")) for f in sorted(d.rglob("*.py"))]
        out.append((name, "0", lic, files))
    return [("python", iter(out))]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    info, stats = corpus.build(tmp, tmp / "corpus", heldout_frac=0.2, sources=_sources(), max_pkg_bytes=150_000)
    corpus.write_data_card(tmp / "corpus", info, stats)
    size = (tmp / "corpus" / "train.jsonl").stat().st_size
    assert 50_000 < size < 1_500_000
    tokenizer.main(["--corpus", str(tmp / "corpus" / "train.jsonl"), "--out", str(tmp / "tok"),
                    "--vocab-size", "1000"])
    common = ["--corpus", str(tmp / "corpus"), "--tokenizer", str(tmp / "tok"), "--out", str(tmp / "run"),
              "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--seq-len", "128",
              "--batch-size", "4", "--eval-every", "3", "--eval-seqs", "4", "--log-every", "1",
              "--warmup", "2", "--lr", "3e-3", "--threads", "2"]
    pretrain.main(common + ["--max-steps", "4"])
    pretrain.main(common + ["--max-steps", "6"])  # resumes from the checkpoint at step 4
    return tmp


def test_corpus_card_and_split(pipeline):
    card = (pipeline / "corpus" / "DATA_CARD.md").read_text()
    assert "held-out" in card and "| train | python |" in card
    pk = json.loads((pipeline / "corpus" / "packages.json").read_text())
    splits = {v["split"] for v in pk.values() if v.get("files")}
    assert splits == {"train", "heldout"}


def test_pretrain_resumes_and_logs(pipeline):
    run = pipeline / "run"
    state = json.loads((run / "ckpt" / "state.json").read_text())
    assert state["step"] == 6
    rows = [json.loads(l) for l in open(run / "log.jsonl")]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps[-1] == 6 and 5 in steps and steps.count(1) == 1  # second run continued at step 5
    assert any("heldout_bpc" in r for r in rows)
    assert (run / "loss.png").stat().st_size > 1000
    cfg = json.loads((run / "final" / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["max_position_embeddings"] == 128 and "rope_theta" in cfg


def test_finetune_completion_only(pipeline, tmp_path):
    data = tmp_path / "tasks.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"# add {i}\ndef f(x):\n    return ", "completion": f"x + {i}\n"})
                              for i in range(6)) + "\n")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(pipeline / "run" / "final" / "tokenizer.json"))
    ex, eot = finetune.load_examples(data, tok, 64)
    ids, labels = ex[0]
    n_prompt = len(tok.encode("# add 0\ndef f(x):\n    return ", add_special_tokens=False).ids)
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:] and ids[-1] == eot
    finetune.main(["--model", str(pipeline / "run" / "final"), "--data", str(data), "--out", str(tmp_path / "ft"),
                   "--max-steps", "2", "--batch-size", "2", "--seq-len", "64", "--threads", "2"])
    assert (tmp_path / "ft" / "final" / "model.safetensors").exists()


def test_export_and_nib_generate(pipeline):
    out = pipeline / "onnx"
    rep = export.export(pipeline / "run" / "final", out, variants=("fp32", "int8"), max_new_tokens=8)
    assert rep["variants"]["fp32"]["prompts_identical"] == "5/5"
    for v in ("fp32", "int8"):
        d = out / v
        assert json.loads((d / "nib.json").read_text()) == {"fim": {"spm": True}}
        for f in ("model.onnx", "config.json", "tokenizer.json", "generation_config.json"):
            assert (d / f).exists(), f
    names = [n for n, _, _ in rep["io"]["inputs"]]
    assert names[:3] == ["input_ids", "attention_mask", "position_ids"] and "past_key_values.0.key" in names

    nib = evaluate.find_nib()
    if nib is None:
        pytest.skip("no nib binary: set NIB_BIN or build target/release/nib or target/debug/nib")
    for v in ("fp32", "int8"):
        r = subprocess.run([nib, "generate", "--model", str(out / v), "--prompt", "def ", "--max-tokens", "5",
                            "--format", "json"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        toks = res["tokens"]
        assert len(toks) == 5 or (0 < len(toks) < 5 and toks[-1] == 0) or res.get("finish_reason") == "eos", res
