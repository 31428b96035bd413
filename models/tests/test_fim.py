import random

import pytest

from nib_models.fim import FimIds, SPECIAL_TOKENS, fim_ids, split_points, transform_batch


def test_special_tokens_have_starcoder_ids(tiny_tokenizer):
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tiny_tokenizer.token_to_id(s) == i
    ids = FimIds.from_tokenizer(tiny_tokenizer)
    assert (ids.eot, ids.prefix, ids.middle, ids.suffix) == (0, 1, 2, 3)


def test_layout_psm_and_spm():
    ids = FimIds(eot=0, prefix=1, middle=2, suffix=3)
    P, M, S = [10, 11], [20], [30, 31, 32]
    assert fim_ids(P, M, S, ids, spm=False) == [1, 10, 11, 3, 30, 31, 32, 2, 20, 0]
    assert fim_ids(P, M, S, ids, spm=True) == [1, 3, 30, 31, 32, 2, 10, 11, 20, 0]


def _encode_batch(tok):
    return lambda segs: [e.ids for e in tok.encode_batch(segs, add_special_tokens=False)]


@pytest.mark.parametrize("spm", [False, True])
def test_transform_exact_token_layout(tiny_tokenizer, spm):
    tok = tiny_tokenizer
    ids = FimIds.from_tokenizer(tok)
    text = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"
    rng = random.Random(3)
    seqs, kinds = transform_batch([text], _encode_batch(tok), ids, rng, fim_rate=1.0,
                                  spm_rate=1.0 if spm else 0.0)
    assert kinds == ["spm" if spm else "psm"]
    seq = seqs[0]
    # recover the split the transform used (same rng sequence) and rebuild the expected ids
    rng = random.Random(3)
    rng.random()  # the fim decision
    i, j = split_points(text, rng, 0.5)
    enc = lambda t: tok.encode(t, add_special_tokens=False).ids  # noqa: E731
    P, M, S = enc(text[:i]), enc(text[i:j]), enc(text[j:])
    if spm:
        want = [ids.prefix, ids.suffix] + S + [ids.middle] + P + M + [ids.eot]
    else:
        want = [ids.prefix] + P + [ids.suffix] + S + [ids.middle] + M + [ids.eot]
    assert seq == want
    assert seq.count(ids.prefix) == seq.count(ids.suffix) == seq.count(ids.middle) == seq.count(ids.eot) == 1
    assert tok.decode(P + M + S) == text  # no BOS, nothing lost


def test_plain_documents_end_with_eot(tiny_tokenizer):
    ids = FimIds.from_tokenizer(tiny_tokenizer)
    seqs, kinds = transform_batch(["x = 1\n"], _encode_batch(tiny_tokenizer), ids, random.Random(0), fim_rate=0.0)
    assert kinds == ["plain"]
    assert seqs[0][-1] == ids.eot and ids.prefix not in seqs[0]
    assert seqs[0][:-1] == tiny_tokenizer.encode("x = 1\n", add_special_tokens=False).ids


def test_rates_roughly_half_and_half(tiny_tokenizer):
    ids = FimIds.from_tokenizer(tiny_tokenizer)
    _, kinds = transform_batch(["abc\ndef\n"] * 2000, _encode_batch(tiny_tokenizer), ids, random.Random(1))
    n = len(kinds)
    assert 0.45 < kinds.count("plain") / n < 0.55
    assert 0.2 < kinds.count("psm") / n < 0.3 and 0.2 < kinds.count("spm") / n < 0.3


def test_split_points_bounds_and_cursor_like():
    text = "import os\n\ndef main():\n    x = compute(1, 2)\n    return x\n"
    rng = random.Random(0)
    line_end_middles = 0
    for _ in range(500):
        i, j = split_points(text, rng, line_rate=0.5)
        assert 0 <= i <= j <= len(text)
        if j < len(text) and text[j] == "\n" and "\n" not in text[i:j]:
            line_end_middles += 1
    # cursor-like splits (middle = rest of the line) make a good share of all splits
    assert line_end_middles > 150
    assert split_points("", rng) == (0, 0)
