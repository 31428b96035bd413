"""The README's recipe for bringing a Hugging Face model, end to end:
scripts/hf-export.sh on a local checkpoint (a tiny Llama with tied
embeddings, as many small code models have), then nib loading the export.

The recipe's environment is this test run's own (NIB_EXPORT_VENV), which
holds the same pinned set the script installs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NIB = os.environ.get("NIB_BIN", str(ROOT / "target/debug/nib"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not Path(NIB).is_file():
        pytest.skip(f"no nib binary at {NIB} (cargo build first)")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    ckpt = tmp_path_factory.mktemp("checkpoint")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(ROOT / "models/default/tokenizer.json"))
    # Embeddings dominate this model, so storing them twice would show in the size.
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32,
                         intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    out = tmp_path_factory.mktemp("export")
    env = dict(os.environ, NIB_EXPORT_VENV=str(Path(sys.executable).parents[1]), NIB_BIN=NIB)
    run = subprocess.run([str(ROOT / "scripts/hf-export.sh"), str(ckpt), str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    params = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
    return out, run, params


def test_the_export_loads_in_nib(exported):
    out, run, _ = exported
    assert "architecture           llama" in run.stdout, run.stdout
    doctor = subprocess.run([NIB, "doctor", "--format", "json", "--model", str(out)],
                            capture_output=True, text=True, timeout=120)
    report = json.loads(doctor.stdout)
    assert report["model"]["architecture"] == "llama"
    done = subprocess.run([NIB, "generate", "--model", str(out), "--prompt", "def add(a, b):",
                           "--max-tokens", "4", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["tokens"]) >= 1


def test_tied_embeddings_are_stored_once(exported):
    out, _, params = exported
    size = sum(f.stat().st_size for f in out.glob("model.onnx*"))
    # fp32 weights, once: params × 4 bytes plus the graph. Twice would be ~1.9×.
    assert size < params * 4 * 1.3, f"{size} bytes for {params} parameters"
