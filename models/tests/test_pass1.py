"""The pass@1 execution harness, without a model: canonical solutions pass, wrong ones fail."""
import gzip
import json
from pathlib import Path

import pytest

from nib_models.evaluate import (PY_STOPS, RUST_STOPS, exec_python, exec_rust, have_rustc,
                                 table, truncate_at_stops)

HE = Path("/work/shared/data/humaneval")


def _python_task():
    p = HE / "HumanEval.jsonl.gz"
    if p.is_file():
        with gzip.open(p, "rt") as f:
            return json.loads(f.readline())
    # synthetic fallback in HumanEval's format
    return {"task_id": "Synthetic/0", "entry_point": "add",
            "prompt": "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n",
            "canonical_solution": "    return a + b\n",
            "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"}


SYNTH_RUST = {
    "task_id": "Synthetic/rust0", "entry_point": "add", "edition": "2021",
    "prompt": "// Add two numbers.\nfn add(a: i32, b: i32) -> i32 {",
    "canonical_solution": "\n    a + b\n}",
    "test": "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() {\n"
            "        assert_eq!(add(1, 2), 3);\n        assert_eq!(add(-1, 1), 0);\n    }\n}",
}


def test_truncate_at_stops():
    assert truncate_at_stops("    return 1\ndef g():\n", PY_STOPS) == "    return 1"
    assert truncate_at_stops("    return 1\n\n#x", PY_STOPS) == "    return 1\n"
    assert truncate_at_stops("\n    a + b\n}\nfn main() {}", RUST_STOPS) == "\n    a + b"
    assert truncate_at_stops("no stop", PY_STOPS) == "no stop"


def test_python_canonical_passes_wrong_fails():
    t = _python_task()
    ok, log = exec_python(t, t["canonical_solution"])
    assert ok, log
    ok, _ = exec_python(t, "    return None\n")
    assert not ok
    ok, _ = exec_python(t, "    while True: pass\n", timeout=1.0)
    assert not ok


@pytest.mark.skipif(not have_rustc(), reason="no rustc")
def test_rust_canonical_passes_wrong_fails():
    t = SYNTH_RUST
    # as the generation path produces it: cut at "\n}" and close the function
    ok, log = exec_rust(t, truncate_at_stops(t["canonical_solution"], RUST_STOPS) + "\n}")
    assert ok, log
    ok, _ = exec_rust(t, "\n    a - b\n}")
    assert not ok
    ok, log = exec_rust(t, "\n    a +\n}")  # does not compile
    assert not ok and log.startswith("compile")


def test_table_rows():
    r = {"pass1_python": {"n": 4, "passed": 1, "pass1": 25.0, "skipped_too_long": 0},
         "pass1_rust": {"n": 3, "passed": 0, "pass1": 0.0, "skipped_too_long": 2}}
    md = table(r)
    assert "HumanEval pass@1 (python, n=4, greedy) | 25.0% (1/4)" in md
    assert "HumanEval-Rust pass@1 (n=3, greedy), 2 skipped: prompt too long | 0.0% (0/3)" in md


@pytest.mark.skipif(not have_rustc() or not (HE / "HumanEval_rust.jsonl").is_file(), reason="no rustc/data")
def test_rust_real_task_canonical():
    with open(HE / "HumanEval_rust.jsonl") as f:
        t = json.loads(f.readline())
    ok, log = exec_rust(t, truncate_at_stops(t["canonical_solution"], RUST_STOPS) + "\n}")
    assert ok, log
    ok, _ = exec_rust(t, "\n    todo!()\n}")
    assert not ok
