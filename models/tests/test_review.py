import json

import pytest

from nib_models.evaluate import find_nib, score_review
from nib_models.review_data import NibSites, fim_prompt, make_bench


@pytest.fixture(scope="module")
def sites():
    if find_nib() is None:
        pytest.fail("no nib binary: cargo build first (scripts/test.sh does)")
    with NibSites() as s:
        yield s


def members(sites, text, lang):
    return [s.original for s in sites(text, lang)]


def test_sites_are_nib_s_places_in_code_only(sites):
    text = ('def f(island, x):\n'
            '    s = "a == b and c"  # x < y or z\n'
            '    if x is not None and island not in (10, 0.5):\n'
            '        return x[0]\n')
    # Strings and comments hold none, words are whole (`island` holds no `is`), `10` no `1`.
    assert members(sites, text, "python") == ["is not", "and", "not in", "0"]
    rust = 'fn f<T>(x: &[u8]) -> Vec<Vec<u8>> { let s = "a < b"; for i in 0..10 { if x[i] >= 1 { return x; } } }\n'
    # Type brackets, `->`, `>>` and loops' `in` are no places.
    assert members(sites, rust, "rust") == ["0", "..", ">=", "1"]


def test_offsets_are_characters_and_alternatives_are_written_as_the_review_writes_them(sites):
    text = "é = 'ü'\nif x==None:\n    pass\n"
    (s,) = [s for s in sites(text, "python") if s.original == "=="]
    assert text[s.start:s.end] == "=="
    assert s.candidates == [("!=", "equality"), ("is", "identity")]
    assert s.written == ["!=", " is "]
    assert s.line_col(text) == (2, 5)


def test_a_relative_binary_path_works_from_any_folder():
    import os

    with NibSites(os.path.relpath(find_nib())) as s:
        assert [x.original for x in s("a < b\n", "python")] == ["<"]


def test_texts_without_review_rules_have_no_sites_and_the_process_goes_on(sites):
    assert sites("a == b", "notes.txt") == []
    assert members(sites, "a == b\n", "python") == ["=="]


def test_prompt_heals_the_last_prefix_token(tiny_tokenizer, sites):
    text = "def check(x):\n    if x == None:\n        return 0\n"
    s = sites(text, "python")[0]
    prompt, healed = fim_prompt(tiny_tokenizer, text, s.start, s.end, 100, 100)
    before = prompt[len("<fim_prefix>"):prompt.index("<fim_suffix>")]
    after = prompt[prompt.index("<fim_suffix>") + len("<fim_suffix>"):-len("<fim_middle>")]
    assert healed and before + healed + text[s.start:s.end] + after == text


def _docs(n=12):
    body = "".join(f"    if value_{i} >= {i % 2} and flag:\n        total += {i}\n" for i in range(30))
    return [{"text": f"def f{k}(flag):\n    total = 0\n{body}    return total == 0\n", "lang": "python",
             "package": f"pkg{k % 4}", "path": f"m{k}.py"} for k in range(n)]


def test_bench_is_deterministic_and_records_the_bug(tmp_path, sites):
    a = make_bench(_docs(), sites, tmp_path / "a", 3, seed=7, log=lambda *_: None)
    b = make_bench(_docs(), sites, tmp_path / "b", 3, seed=7, log=lambda *_: None)
    assert a["entries"] == b["entries"]
    for e in a["entries"]:
        assert (tmp_path / "a/files" / e["file"]).read_text() == (tmp_path / "b/files" / e["file"]).read_text()
    assert [e["kind"] for e in a["entries"]] == ["buggy"] * 3 + ["clean"] * 3
    for e in a["entries"][:3]:
        bug = e["bug"]
        lines = (tmp_path / "a/files" / e["file"]).read_text().split("\n")
        line = lines[bug["line"] - 1]
        assert line[bug["column"] - 1:].startswith(bug["mutated"]) and bug["mutated"] != bug["original"]
    c = make_bench(_docs(), sites, tmp_path / "c", 3, seed=8, log=lambda *_: None)
    assert c["entries"] != a["entries"]


def test_unlikelihood_lowers_the_negative(tiny_tokenizer):
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    from nib_models.finetune import candidate_logprobs, review_loss

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tiny_tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    enc = lambda t: tiny_tokenizer.encode(t, add_special_tokens=False).ids  # noqa: E731
    prompt = enc("<fim_prefix>if x<fim_suffix> None:<fim_middle>")
    cands = [enc(" is") + [0], enc(" ==") + [0], enc(" !=") + [0]]
    with torch.no_grad():
        lp = candidate_logprobs(model, prompt, cands, 0)
        ref = []
        for c in cands:  # the shared-prefix cache gives the full-sequence numbers
            logp = torch.log_softmax(model(torch.tensor([prompt + c])).logits[0], -1)
            ref.append(sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(c)))
    assert torch.allclose(lp, torch.tensor(ref), atol=1e-4)
    # Make the first negative likely (a model that writes `==` there), then compare a few steps
    # with and without the unlikelihood term from that same start.
    import copy

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.tensor([prompt + cands[1]])
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x).logits[0, :-1], x[0, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    def tune(alpha):
        m = copy.deepcopy(model)
        o = torch.optim.SGD(m.parameters(), lr=2e-3)
        for _ in range(3):
            loss, _ = review_loss(m, [(prompt, cands)], 0, alpha=alpha)
            o.zero_grad()
            loss.backward()
            o.step()
        with torch.no_grad():
            return candidate_logprobs(m, prompt, cands, 0)

    with torch.no_grad():
        start = candidate_logprobs(model, prompt, cands, 0)
    assert start[1].exp() > 0.1
    with_ul, without = tune(1.0), tune(0.0)
    assert with_ul[1] < start[1] and with_ul[1] < without[1]
    assert with_ul[0] > start[0]


def test_review_scores_on_a_hand_made_manifest():
    manifest = {"entries": [
        {"kind": "buggy", "file": "b0.py", "lines": 50,
         "bug": {"line": 3, "column": 5, "original": "<", "mutated": "<=", "rule": "comparison"}},
        {"kind": "buggy", "file": "b1.py", "lines": 50,
         "bug": {"line": 7, "column": 9, "original": "is", "mutated": "==", "rule": "identity"}},
        {"kind": "clean", "file": "c0.py", "lines": 500},
        {"kind": "clean", "file": "c1.py", "lines": 500}]}
    f = lambda line, rep, conf, col=5: {"line": line, "column": col, "replacement": rep,  # noqa: E731
                                        "confidence": conf}
    findings = {"b0.py": [f(3, "<", 0.95), f(3, "<", 0.7, col=12), f(9, "-", 0.6)],  # the bug; same line, elsewhere
                "b1.py": [f(7, "!=", 0.99, 9), f(8, "is", 0.9, 9)],  # right place, wrong fix; wrong line
                "c0.py": [f(1, "0", 0.85)]}
    s = score_review(manifest, findings, (0.5, 0.9))
    lo, hi = s["0.5"], s["0.9"]
    assert lo["recall"] == 0.5 and lo["true_findings"] == 1 and lo["findings"] == 6
    assert lo["precision"] == pytest.approx(1 / 6) and lo["fp_per_kloc_clean"] == pytest.approx(1.0)
    assert lo["top1"] == 0.5 and lo["recall_by_rule"] == {"comparison": "1/1", "identity": "0/1"}
    assert hi["findings"] == 3 and hi["fp_per_kloc_clean"] == 0 and hi["precision"] == pytest.approx(1 / 3)
    json.dumps(s)
