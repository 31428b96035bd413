"""nib-gguf: nib's default model written as GGUF computes what the ONNX
graph does, under llama.cpp (llama-cpp-python, from scripts/python-env.sh)."""

from pathlib import Path

import numpy as np
import pytest

from nib_models import gguf_export

DEFAULT = Path(__file__).resolve().parents[2] / "models" / "default"
PROMPT = "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n"


def onnx_logits(ids: list[int]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(DEFAULT / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {"input_ids": np.array([ids], dtype=np.int64)}
    feed["attention_mask"] = np.ones_like(feed["input_ids"])
    for i in session.get_inputs():
        if i.name.startswith("past_key_values"):
            feed[i.name] = np.zeros((1, i.shape[1], 0, 64), dtype=np.float32)
    return session.run(["logits"], feed)[0][0]


@pytest.fixture(scope="module")
def ids() -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(DEFAULT / "tokenizer.json")).encode(PROMPT).ids


@pytest.mark.parametrize("kind, tolerance", [("f32", 0.02), ("q8_0", 0.5)])
def test_llama_cpp_computes_the_onnx_graph_logits(tmp_path, ids, kind, tolerance):
    import llama_cpp
    out = tmp_path / f"nib-{kind}.gguf"
    summary = gguf_export.write(DEFAULT, out, kind)
    assert summary["tensors"] == 2 + 9 * 4
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=512, n_threads=1, verbose=False, logits_all=True)
    llm.eval(ids)
    theirs = np.array(llm.scores[: len(ids)])
    ours = onnx_logits(ids)
    # Rounding differs by kernel; quantized weights move logits more.
    assert np.abs(theirs - ours).max() < tolerance
    # Every position's most likely next token is the graph's.
    agree = (theirs.argmax(-1) == ours.argmax(-1)).mean()
    assert agree >= (0.95 if kind == "f32" else 0.8)


def test_the_tokenizer_and_its_markers_are_in_the_metadata(tmp_path):
    import gguf

    out = tmp_path / "nib.gguf"
    gguf_export.write(DEFAULT, out, "f32")
    reader = gguf.GGUFReader(str(out))
    fields = reader.fields

    def scalar(key):
        field = fields[key]
        return field.parts[field.data[0]][0]

    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    assert bytes(fields["tokenizer.ggml.pre"].parts[-1]).decode() == "gpt-2"
    assert scalar("tokenizer.ggml.fim_pre_token_id") == 1
    assert scalar("tokenizer.ggml.fim_mid_token_id") == 2
    assert not scalar("tokenizer.ggml.add_bos_token")
    assert len(fields["tokenizer.ggml.tokens"].data) == 8192


def test_other_layouts_are_refused_with_a_reason(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(SystemExit, match="Llama"):
        gguf_export.write(tmp_path, tmp_path / "x.gguf", "f32")
