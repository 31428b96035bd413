"""The fused graph's optional `logits_to_keep` input, on the shipped model."""

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

from nib_models.fuse import LOGITS_TO_KEEP, add_logits_to_keep

DEFAULT = Path(__file__).resolve().parents[1] / "default"


def feeds(sess, ids, past_len=0, rng=None):
    f = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones([1, past_len + len(ids)], np.int64)}
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values"):
            f[i.name] = rng.standard_normal([1, i.shape[1], past_len, 64]).astype(np.float32)
    return f




def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_shipped_graph_has_the_input_and_keeps_every_row_by_default():
    sess = session(DEFAULT / "model.onnx")
    rng = np.random.default_rng(0)
    f = feeds(sess, [5, 6, 7, 8], past_len=3, rng=rng)
    full = sess.run(["logits"], f)[0]
    assert full.shape[1] == 4, "not fed: every position's logits, as before"
    f[LOGITS_TO_KEEP] = np.array([2], np.int64)
    last = sess.run(["logits"], f)[0]
    assert last.shape[1] == 2
    np.testing.assert_allclose(last, full[:, -2:], atol=1e-4)


def test_adding_the_input_changes_no_logit(tmp_path):
    import onnx

    src = tmp_path / "g"
    src.mkdir()
    model = onnx.load(str(DEFAULT / "model.onnx"), load_external_data=False)
    # Take the input off again, the way an older graph is, then add it back.
    g = model.graph
    if any(i.name == LOGITS_TO_KEEP for i in g.input):
        head = next(n for n in g.node if "logits" in n.output)
        slice_node = next(n for n in g.node if head.input[0] in n.output)
        head.input[0] = slice_node.input[0]
        for n in [n for n in g.node if n.output[0].startswith(LOGITS_TO_KEEP)]:
            g.node.remove(n)
        for t in [t for t in g.initializer if t.name.startswith(LOGITS_TO_KEEP)]:
            g.initializer.remove(t)
        g.input.remove(next(i for i in g.input if i.name == LOGITS_TO_KEEP))
    onnx.save(model, str(src / "model.onnx"))
    shutil.copy(DEFAULT / "model.onnx.data", src / "model.onnx.data")
    old = session(src / "model.onnx")
    assert LOGITS_TO_KEEP not in [i.name for i in old.get_inputs()]
    rng = np.random.default_rng(1)
    f = feeds(old, list(range(40, 60)), past_len=7, rng=rng)
    want = old.run(["logits"], f)[0]
    assert add_logits_to_keep(src / "model.onnx")
    assert not add_logits_to_keep(src / "model.onnx"), "a second call changes nothing"
    new = session(src / "model.onnx")
    np.testing.assert_array_equal(new.run(["logits"], f)[0], want)
    f[LOGITS_TO_KEEP] = np.array([1], np.int64)
    one = new.run(["logits"], f)[0]
    assert one.shape == (1, 1, want.shape[2])
    np.testing.assert_allclose(one[0, 0], want[0, -1], atol=1e-4)
