"""Evaluate an exported nib model, through nib's Rust engine where it matters.

Metrics (one command, writes a Markdown table and JSON):
  bpc        held-out bits per character, per language. Computed with
             onnxruntime on the same exported model.onnx the engine loads
             (``nib`` has no scoring mode): full-sequence forward with empty
             past, nats of every predicted token / ln 2 / characters covered.
  line       CodeXGLUE-style line completion on held-out packages, Python and
             Rust separately: cut a file at a random non-trivial line, give the
             left context (whole lines above + the line's indentation) to
             ``nib generate --format json --stop "\\n"``, compare the first
             generated line with the rest of the true line: exact match (after
             stripping whitespace) and edit similarity (fuzzywuzzy-style
             Levenshtein ratio, 0-100).
  infill     HumanEval single-line infilling (1,033 tasks): exact match of the
             first generated line with the canonical line (stripped).
             mode "generate": PSM prompt text <fim_prefix>P<fim_suffix>S<fim_middle>
             given to ``nib generate`` (the standard protocol);
             mode "complete": the editor path, ``nib complete FILE:LINE:1`` on a
             file with an empty line inserted between prefix and suffix.
  pass@1     HumanEval (Python, 164 tasks) and HumanEval-Rust (HumanEval_rust.jsonl, 180 tasks):
             greedy completion of the prompt by ``nib generate`` (max 256 new tokens; prompts
             that do not fit the context with that budget are skipped and counted), then
             executed: Python runs prompt+completion+test+``check(entry_point)`` with python3
             (10 s); Rust compiles prompt+completion+tests with ``rustc --test`` (60 s) and runs
             the test binary (10 s). Pass = exit status 0. Stop sequences follow the Codex paper
             (Python) and MultiPL-E (Rust: "\n}", then the function is closed). First N tasks
             in file order (--pass1 N).

The nib binary: --nib, else $NIB_BIN, else target/release/nib, else target/debug/nib.

Usage: nib-eval --model models/default --corpus /work/nibdata/corpus --out runs/eval
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- metrics

def lcs_len(a: str, b: str) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def edit_similarity(a: str, b: str) -> float:
    """fuzzywuzzy ``fuzz.ratio``-style similarity in 0..100 (indel distance based)."""
    if not a and not b:
        return 100.0
    return 100.0 * 2 * lcs_len(a, b) / (len(a) + len(b))


def exact_match(pred: str, target: str) -> bool:
    return pred.strip() == target.strip()


# --------------------------------------------------------------------------- nib binary

def find_nib(explicit=None):
    for c in [explicit, os.environ.get("NIB_BIN"), REPO_ROOT / "target" / "release" / "nib",
              REPO_ROOT / "target" / "debug" / "nib"]:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def nib_generate(nib, model, prompt, max_tokens, stop=None, threads=1, timeout=120):
    cmd = [nib, "generate", "--model", str(model), "--max-tokens", str(max_tokens), "--format", "json",
           "--threads", str(threads), "--device", "cpu"]
    for st in ([stop] if isinstance(stop, str) else stop or []):
        cmd += ["--stop", st]
    r = subprocess.run(cmd, input=prompt, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"nib generate failed ({r.returncode}): {r.stderr[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def nib_complete(nib, model, path, line, col, max_tokens, threads=1, timeout=120):
    cmd = [nib, "complete", "--model", str(model), "--max-tokens", str(max_tokens), "--format", "json",
           "--threads", str(threads), "--device", "cpu", f"{path}:{line}:{col}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"nib complete failed ({r.returncode}): {r.stderr[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- data

def load_heldout(corpus, lang=None):
    docs = []
    with open(Path(corpus) / "heldout.jsonl") as f:
        for line in f:
            d = json.loads(line)
            if lang is None or d["lang"] == lang:
                docs.append(d)
    return docs


def fit_left(tok, text, budget):
    """Drop whole lines from the top of ``text`` until it has at most ``budget`` tokens."""
    ids = tok.encode(text, add_special_tokens=False).ids
    if len(ids) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    # estimate, then walk
    keep = max(1, int(len(lines) * budget / len(ids)))
    while keep > 1:
        t = "".join(lines[-keep:])
        if len(tok.encode(t, add_special_tokens=False).ids) <= budget:
            return t
        keep = int(keep * 0.9)
    return lines[-1][-budget:]


def line_completion_samples(docs, n, seed=0, min_target_chars=4, keep_indent=False):
    """(left_context, target) pairs: cut a file before a random non-trivial line.

    The left context is every line above, WITHOUT the final newline: the model writes the
    newline, the indentation and the line (its first non-blank output line is compared with
    the stripped target), as in CodeXGLUE line-level completion where the context ends with the
    previous line. Ending the prompt inside whitespace ("\n" or "\n    ") would cut a byte-level
    BPE token in two, which small models handle badly. ``keep_indent``: cursor after the
    indentation instead (the editor case)."""
    rng = random.Random(seed)
    docs = [d for d in docs if d["text"].count("\n") >= 5]
    rng.shuffle(docs)
    out = []
    for d in docs:
        if len(out) >= n:
            break
        lines = d["text"].split("\n")
        cands = [i for i in range(3, len(lines)) if len(lines[i].strip()) >= min_target_chars
                 and not lines[i].strip().startswith(("#", "//", "/*", "*"))]
        if not cands:
            continue
        i = rng.choice(cands)
        line = lines[i]
        indent = line[:len(line) - len(line.lstrip())]
        left = "\n".join(lines[:i]) + ("\n" + indent if keep_indent else "")
        out.append(dict(package=d["package"], path=d["path"], left=left, target=line.strip()))
    return out


def load_humaneval_infill(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


# --------------------------------------------------------------------------- bpc with onnxruntime

class OrtModel:
    """An exported model folder run with onnxruntime: full-sequence forward with an empty past."""

    def __init__(self, model_dir, threads=2):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), so,
                                         providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.sess.get_inputs()}
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]

        def dim(d):
            # Fused graphs leave the head size symbolic (`kv_cache_dim`).
            if isinstance(d, int):
                return d
            d = str(d)
            return 1 if "batch" in d else 0 if any(k in d for k in ("seq", "past", "length")) else head_dim

        self.empty = {}
        for i in self.sess.get_inputs():
            if i.name.startswith("past_key_values"):
                self.empty[i.name] = np.zeros([dim(d) for d in i.shape], dtype=np.float32)

    def logits(self, ids):
        """float64 logits [len(ids), vocab] of one sequence."""
        feeds = {"input_ids": np.array([ids], dtype=np.int64)}
        if "attention_mask" in self.names:
            feeds["attention_mask"] = np.ones((1, len(ids)), dtype=np.int64)
        if "position_ids" in self.names:
            feeds["position_ids"] = np.arange(len(ids), dtype=np.int64)[None]
        feeds.update(self.empty)
        return self.sess.run(["logits"], feeds)[0][0].astype(np.float64)

    def log_softmax(self, ids):
        logits = self.logits(ids)
        m = logits.max(-1, keepdims=True)
        return logits - (np.log(np.exp(logits - m).sum(-1, keepdims=True)) + m)

    def continuation_logprob(self, prompt_ids, cont_ids):
        """Sum of log p(cont_ids | prompt_ids + the continuation so far)."""
        lp = self.log_softmax(list(prompt_ids) + list(cont_ids))
        P = len(prompt_ids)
        return float(sum(lp[P - 1 + t, c] for t, c in enumerate(cont_ids)))


def bpc_onnx(model_dir, docs, tok, max_len, n_docs=60, seed=0, threads=2):
    model = OrtModel(model_dir, threads)
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    nats, chars, toks = 0.0, 0, 0
    for d in docs[:n_docs]:
        enc = tok.encode(d["text"], add_special_tokens=False)
        ids, offs = enc.ids, enc.offsets
        for s in range(0, max(1, len(ids) - 1), max_len):
            chunk = ids[s:s + max_len]
            if len(chunk) < 2:
                break
            logits = model.logits(chunk)
            lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
            tgt = np.array(chunk[1:])
            nats += float((lse[:-1] - logits[np.arange(len(chunk) - 1), tgt]).sum())
            o = offs[s:s + len(chunk)]
            chars += o[-1][1] - o[1][0]
            toks += len(chunk) - 1
    return {"bpc": nats / math.log(2) / max(1, chars), "nats_per_token": nats / max(1, toks),
            "chars_per_token": chars / max(1, toks), "tokens": toks, "docs": min(n_docs, len(docs))}


# --------------------------------------------------------------------------- runs

def run_line_completion(nib, model, tok, samples, max_pos, max_new=48, workers=2, threads=1):
    budget = max_pos - max_new - 2

    def one(s):
        prompt = fit_left(tok, s["left"], budget)
        keep_indent = s["left"].endswith((" ", "\t"))
        r = nib_generate(nib, model, prompt, max_new, stop="\n" if keep_indent else None, threads=threads)
        text = r.get("text") or ""
        if keep_indent:
            pred = text.split("\n")[0]
        else:  # first non-blank line after the previous line's end
            rest = text.split("\n")[1:]
            pred = next((l for l in rest if l.strip()), "")
        return dict(s, left=None, pred=pred, em=exact_match(pred, s["target"]),
                    es=edit_similarity(pred.strip(), s["target"].strip()))

    with ThreadPoolExecutor(workers) as ex:
        res = list(ex.map(one, samples))
    return {"n": len(res), "em": 100 * sum(r["em"] for r in res) / max(1, len(res)),
            "es": sum(r["es"] for r in res) / max(1, len(res))}, res


def _fit_fim(tok, prefix, suffix, budget):
    """Trim the prefix from the top and the suffix from the bottom (by lines) to fit ``budget`` tokens."""
    def n(t):
        return len(tok.encode(t, add_special_tokens=False).ids)
    while n(prefix) + n(suffix) > budget:
        if n(suffix) > budget // 3 and "\n" in suffix.rstrip("\n"):
            suffix = suffix[:suffix.rstrip("\n").rfind("\n") + 1]
        elif "\n" in prefix:
            prefix = prefix[prefix.find("\n") + 1:]
        else:
            break
    return prefix, suffix


def run_infill(nib, model, tok, tasks, max_pos, mode="generate", max_new=48, workers=2, threads=1):
    budget = max_pos - max_new - 4

    def one(t):
        prefix, suffix = _fit_fim(tok, t["prompt"], t["suffix"], budget)
        if mode == "generate":
            prompt = f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
            r = nib_generate(nib, model, prompt, max_new, stop="\n", threads=threads)
            text = r.get("text") or ""
        else:
            with tempfile.TemporaryDirectory() as td:
                p = Path(td) / "task.py"
                p.write_text(prefix + "\n" + suffix)
                line = prefix.count("\n") + 1
                r = nib_complete(nib, model, p, line, 1, max_new, threads=threads)
                text = r.get("text") or ""
        pred = text.split("\n")[0]
        return dict(task_id=t["task_id"], pred=pred, target=t["canonical_solution"],
                    em=exact_match(pred, t["canonical_solution"]))

    with ThreadPoolExecutor(workers) as ex:
        res = list(ex.map(one, tasks))
    return {"n": len(res), "em": 100 * sum(r["em"] for r in res) / max(1, len(res))}, res

# --------------------------------------------------------------------------- pass@1 (execution)

PY_STOPS = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]
RUST_STOPS = ["\n}"]  # MultiPL-E: the prompt ends inside the function; stop at its closing brace


def load_humaneval_python(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


def load_humaneval_rust(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def truncate_at_stops(text, stops):
    cut = min([i for i in (text.find(s) for s in stops) if i >= 0], default=len(text))
    return text[:cut]


def _run(cmd, cwd, timeout):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        return -1, "timeout"


def python_program(task, completion):
    return (task["prompt"] + completion + "\n\n" + task["test"] + "\n\n"
            + f"check({task['entry_point']})\n")


def rust_program(task, completion):
    """prompt + completion (already closed) + the task's #[cfg(test)] module."""
    return task["prompt"] + completion + "\n\n" + task["test"] + "\n"


def exec_python(task, completion, timeout=10.0, python=None):
    """Run one HumanEval task; returns (passed, log)."""
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "prog.py"
        f.write_text(python_program(task, completion))
        rc, out = _run([python or sys.executable, "-I", str(f)], td, timeout)
    return rc == 0, out


def have_rustc():
    return shutil.which("rustc") is not None


def exec_rust(task, completion, compile_timeout=60.0, run_timeout=10.0, edition=None):
    """Compile prompt+completion+tests with ``rustc --test`` and run the tests; (passed, log)."""
    edition = edition or task.get("edition") or "2021"
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "prog.rs"
        f.write_text(rust_program(task, completion))
        rc, out = _run(["rustc", "--test", "--edition", str(edition), "-A", "warnings", "-C", "opt-level=0",
                        "-C", "debuginfo=0", "-o", str(Path(td) / "prog"), str(f)], td, compile_timeout)
        if rc != 0:
            return False, "compile: " + out
        rc, out = _run([str(Path(td) / "prog"), "--test-threads=1"], td, run_timeout)
    return rc == 0, out


def run_pass1(nib, model, tok, tasks, lang, max_pos, max_new=256, workers=2, threads=1):
    """Greedy pass@1 through ``nib generate`` + execution. Tasks whose prompt does not fit
    ``max_pos - max_new`` tokens are skipped (counted); left-truncating a HumanEval prompt would
    cut its signature/imports, so it is not done."""
    budget = max_pos - max_new - 2
    stops = PY_STOPS if lang == "python" else RUST_STOPS
    fits = [t for t in tasks if len(tok.encode(t["prompt"], add_special_tokens=False).ids) <= budget]
    skipped = len(tasks) - len(fits)

    def one(t):
        try:
            r = nib_generate(nib, model, t["prompt"], max_new, stop=stops, threads=threads, timeout=300)
            text = r.get("text") or ""
        except Exception as e:  # a failed generation counts as a failure
            return dict(task_id=t["task_id"], completion="", passed=False, log=f"generate: {e}"[:500])
        completion = truncate_at_stops(text, stops)
        if lang == "python":
            ok, log = exec_python(t, completion)
        else:
            completion = completion + "\n}"
            ok, log = exec_rust(t, completion)
        return dict(task_id=t["task_id"], completion=completion, passed=ok, log=log[-300:])

    with ThreadPoolExecutor(max(1, min(workers, 2))) as ex:
        res = list(ex.map(one, fits))
    n = len(res)
    return {"n": n, "requested": len(tasks), "skipped_too_long": skipped, "max_new_tokens": max_new,
            "passed": sum(r["passed"] for r in res),
            "pass1": 100 * sum(r["passed"] for r in res) / max(1, n)}, res


def evaluate(model, corpus=None, humaneval_dir=None, nib=None, out=None, n_lines=200, n_infill=0,
             infill_modes=("generate",), bpc_docs=60, workers=2, threads=1, seed=0, log=print,
             n_pass1=0, pass1_langs=("python", "rust"), pass1_max_new=256):
    from tokenizers import Tokenizer

    model = Path(model)
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    cfg = json.loads((model / "config.json").read_text())
    max_pos = int(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 512)
    results = {"model": str(model), "max_position_embeddings": max_pos, "time": time.strftime("%Y-%m-%d %H:%M")}
    t0 = time.time()
    if corpus:
        for lang in ("python", "rust"):
            docs = load_heldout(corpus, lang)
            if not docs:
                continue
            results[f"bpc_{lang}"] = bpc_onnx(model, docs, tok, max_pos, n_docs=bpc_docs, seed=seed, threads=2)
            log(f"bpc {lang}: {results[f'bpc_{lang}']}")
    nib = find_nib(nib)
    results["nib"] = nib
    if nib is None:
        results["skipped"] = "no nib binary (build with cargo build --release, or set NIB_BIN)"
        log(results["skipped"])
    else:
        if corpus and n_lines:
            for lang in ("python", "rust"):
                docs = load_heldout(corpus, lang)
                samples = line_completion_samples(docs, n_lines, seed=seed)
                summary, rows = run_line_completion(nib, model, tok, samples, max_pos, workers=workers,
                                                    threads=threads)
                results[f"line_{lang}"] = summary
                results.setdefault("examples", {})[f"line_{lang}"] = rows[:20]
                log(f"line completion {lang}: {summary}")
        if humaneval_dir and n_infill != 0:
            tasks = load_humaneval_infill(Path(humaneval_dir) / "HumanEval-SingleLineInfilling.jsonl.gz")
            if n_infill > 0 and n_infill < len(tasks):
                tasks = random.Random(seed).sample(tasks, n_infill)
            for mode in infill_modes:
                summary, rows = run_infill(nib, model, tok, tasks, max_pos, mode=mode, workers=workers,
                                           threads=threads)
                results[f"infill_{mode}"] = summary
                results.setdefault("examples", {})[f"infill_{mode}"] = rows[:20]
                log(f"HumanEval single-line infilling ({mode}): {summary}")
        if humaneval_dir and n_pass1 != 0:
            for lang in pass1_langs:
                if lang == "python":
                    tasks = load_humaneval_python(Path(humaneval_dir) / "HumanEval.jsonl.gz")
                elif lang == "rust":
                    if not have_rustc():
                        results["pass1_rust"] = {"skipped": "rustc not found"}
                        log("HumanEval-Rust pass@1: skipped (no rustc)")
                        continue
                    tasks = load_humaneval_rust(Path(humaneval_dir) / "HumanEval_rust.jsonl")
                else:
                    raise ValueError(f"unknown pass@1 language {lang!r}")
                if n_pass1 > 0:
                    tasks = tasks[:n_pass1]
                summary, rows = run_pass1(nib, model, tok, tasks, lang, max_pos, max_new=pass1_max_new,
                                          workers=workers, threads=threads)
                results[f"pass1_{lang}"] = summary
                results.setdefault("examples", {})[f"pass1_{lang}"] = rows[:20]
                log(f"HumanEval pass@1 ({lang}): {summary}")
    results["eval_seconds"] = round(time.time() - t0, 1)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(results, indent=1))
        (out / "eval.md").write_text(table(results))
    return results


# --------------------------------------------------------------------------- review (mutation benchmark)

EDITOR_EXAMPLE = "def check(x):\n    if x == None:\n        return 0\n    return x\n"  # editors/ tests' file


def review_text_onnx(model, tok, sites, text, path, min_confidence=0.5, prompt_tokens=1024, context=512):
    """nib's review (src/review/score.rs) re-done in Python on an exported model: every place
    ``sites`` (a ``review_data.NibSites``) gives, a PSM prompt with min(prompt_tokens, context - 64)
    tokens, 32 of them after the place, the prefix's last token healed into every candidate,
    candidates = the member as written and each alternative as the review writes it, each scored
    as its tokens + <|endoftext|>; a finding when the best alternative has softmax confidence >=
    min_confidence. For development and tests; the benchmark numbers come from ``nib check``. (The
    review's prefix, which starts at anchor lines, is approximated by a cut at the first whole
    line that fits.)"""
    from .review_data import fim_prompt

    found = sites(text, Path(str(path)).name)
    budget = max(16, min(prompt_tokens, context - 64))
    suf = min(32, budget // 4)
    pre = budget - suf
    eot = tok.token_to_id("<|endoftext|>")
    out = []
    for site in found:
        prompt, healed = fim_prompt(tok, text, site.start, site.end, pre, suf)
        p_ids = tok.encode(prompt, add_special_tokens=False).ids
        cands = [text[site.start:site.end]] + site.written
        scores = np.array([model.continuation_logprob(p_ids, tok.encode(healed + c, add_special_tokens=False).ids
                                                      + [eot]) for c in cands])
        prob = np.exp(scores - scores.max())
        prob /= prob.sum()
        best = int(np.argmax(prob[1:])) + 1
        if prob[best] >= min_confidence:
            line, col = site.line_col(text)
            out.append({"line": line, "column": col, "original": cands[0], "replacement": cands[best],
                        "rule": site.candidates[best - 1][1], "confidence": float(prob[best])})
    return out


def nib_check(nib, model, paths, min_confidence=0.5, threads=1, timeout=3600):
    """Findings of ``nib check --format json`` over ``paths``, normalised to
    {path, line (1-based), original, replacement, rule, confidence}. With
    ``min_confidence=None``, each rule's default threshold (and no configuration file)."""
    threshold = ["--isolated"] if min_confidence is None else ["--min-confidence", str(min_confidence)]
    cmd = [nib, "check", "--format", "json", "--model", str(model), *threshold,
           "--threads", str(threads), "--device", "cpu", "--exit-zero", *map(str, paths)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"nib check failed ({r.returncode}): {r.stderr[-800:]}")
    report = json.loads(r.stdout)
    return [normalise_finding(f) for f in report["findings"]]


def normalise_finding(f):
    """A finding of nib's JSON report (version 1, src/report/json.rs: 1-based ``start`` line and
    column, ``fix.replacement``, ``rule`` as ``nib/<class>``) as the benchmark scores it."""
    start = f["start"]
    fix = f.get("fix") or {}
    return {"path": f["path"], "line": int(start["line"]), "column": int(start["column"]),
            "replacement": fix.get("replacement", ""), "rule": str(f.get("rule", "")).removeprefix("nib/"),
            "confidence": float(f["confidence"])}


def score_review(manifest, findings, thresholds=(0.5, 0.8, 0.9)):
    """Benchmark scores from findings keyed by manifest file name (``entry["file"]``).

    recall: buggy files whose injected bug is flagged (a finding on the bug's line, starting
    inside the mutated text, whose replacement is the original text); precision: such findings /
    all findings (buggy and clean files; findings elsewhere in a buggy file count as false);
    fp_per_kloc: findings on clean files per 1,000 clean lines; top1: buggy files whose most
    confident finding is the bug."""
    entries = manifest["entries"]
    buggy = [e for e in entries if e["kind"] == "buggy"]
    clean = [e for e in entries if e["kind"] == "clean"]
    clean_lines = sum(e["lines"] for e in clean)
    out = {"n_buggy": len(buggy), "n_clean": len(clean), "clean_lines": clean_lines,
           "buggy_lines": sum(e["lines"] for e in buggy)}

    def is_bug(e, f):
        b = e["bug"]
        return f["line"] == b["line"] and f["replacement"].strip() == b["original"].strip() and \
            b["column"] <= f["column"] < b["column"] + len(b["mutated"])

    for t in thresholds:
        kept = {e["file"]: [f for f in findings.get(e["file"], []) if f["confidence"] >= t] for e in entries}
        hits = [e for e in buggy if any(is_bug(e, f) for f in kept[e["file"]])]
        top1 = [e for e in buggy if kept[e["file"]] and is_bug(e, max(kept[e["file"]], key=lambda f: f["confidence"]))]
        total = sum(len(v) for v in kept.values())
        tp = sum(sum(is_bug(e, f) for f in kept[e["file"]]) for e in buggy)
        fp_clean = sum(len(kept[e["file"]]) for e in clean)
        per_rule = {}
        for e in buggy:
            r = per_rule.setdefault(e["bug"]["rule"], [0, 0])
            r[0] += e in hits
            r[1] += 1
        out[f"{t:g}"] = {"recall": len(hits) / max(1, len(buggy)), "precision": tp / total if total else None,
                         "top1": len(top1) / max(1, len(buggy)), "findings": total, "true_findings": tp,
                         "findings_clean": fp_clean, "fp_per_kloc_clean": 1000 * fp_clean / max(1, clean_lines),
                         "recall_by_rule": {k: f"{a}/{b}" for k, (a, b) in sorted(per_rule.items())}}
    return out


def run_review(model, bench, backend="nib", nib=None, thresholds=(0.5, 0.8, 0.9), threads=1, log=print):
    """Findings for every benchmark file (at the lowest threshold) and the scores; also the
    editor example (``== None``)."""
    from tokenizers import Tokenizer

    from .review_data import NibSites

    bench = Path(bench)
    manifest = json.loads((bench / "manifest.json").read_text())
    files_dir = bench / manifest.get("files_dir", "files")
    low = min(thresholds)
    t0 = time.time()
    findings = {}
    with tempfile.TemporaryDirectory() as td:
        example = Path(td) / "check.py"
        example.write_text(EDITOR_EXAMPLE)
        if backend == "nib":
            nib = find_nib(nib)
            if nib is None:
                raise SystemExit("no nib binary (target/debug/nib or target/release/nib, or --nib)")
            paths = [files_dir / e["file"] for e in manifest["entries"]]
            raw = nib_check(nib, model, paths + [example], low, threads)
            names = {str(files_dir / e["file"]): e["file"] for e in manifest["entries"]}
            names[str(example)] = "editor_example"
            for f in raw:
                key = names.get(f["path"]) or names.get(str(Path(f["path"]).resolve()))
                findings.setdefault(key, []).append(f)
        else:
            tok = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
            ort_model = OrtModel(model, threads)
            with NibSites(nib) as sites:
                for e in manifest["entries"] + [{"file": "editor_example"}]:
                    p = example if e["file"] == "editor_example" else files_dir / e["file"]
                    findings[e["file"]] = review_text_onnx(ort_model, tok, sites, p.read_text(), p, low)
    res = {"model": str(model), "backend": backend, "bench": str(bench), "seed": manifest.get("seed"),
           "seconds": round(time.time() - t0, 1), "scores": score_review(manifest, findings, thresholds),
           "editor_example": {"text": EDITOR_EXAMPLE, "findings": findings.get("editor_example", [])},
           "findings": findings}
    if backend == "nib":
        res["nib"] = nib
    log(json.dumps(res["scores"], indent=1))
    log(f"editor example: {res['editor_example']['findings']}")
    return res


def review_main(argv):
    ap = argparse.ArgumentParser(prog="nib-eval review",
                                 description="nib's review on the mutation benchmark (nib-review-data bench)")
    ap.add_argument("--model", required=True, action="append",
                    help="exported model folder; repeat to compare (label=DIR names it)")
    ap.add_argument("--bench", required=True, help="folder with manifest.json")
    ap.add_argument("--backend", default="nib", choices=["nib", "onnx"],
                    help="nib: the nib check binary (the numbers to report); onnx: the Python re-implementation")
    ap.add_argument("--nib", default=None)
    ap.add_argument("--thresholds", default="0.5,0.8,0.9")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON file")
    a = ap.parse_args(argv)
    thresholds = tuple(float(x) for x in a.thresholds.split(","))
    results = {"command": "nib-eval review " + " ".join(argv), "time": time.strftime("%Y-%m-%d %H:%M")}
    for spec in a.model:
        label, _, path = spec.rpartition("=")
        results[label or Path(path).name] = run_review(path, a.bench, a.backend, a.nib, thresholds, a.threads)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(results, indent=1))
    return 0


def table(r):
    L = ["| metric | value |", "|---|---|"]
    for lang in ("python", "rust"):
        if f"bpc_{lang}" in r:
            b = r[f"bpc_{lang}"]
            L.append(f"| held-out bits/char, {lang} (onnxruntime, {b['tokens']} tokens) | {b['bpc']:.3f} |")
    for lang in ("python", "rust"):
        if f"line_{lang}" in r:
            x = r[f"line_{lang}"]
            L.append(f"| line completion {lang}, exact match (n={x['n']}, nib generate) | {x['em']:.1f}% |")
            L.append(f"| line completion {lang}, edit similarity | {x['es']:.1f} |")
    for mode in ("generate", "complete"):
        if f"infill_{mode}" in r:
            x = r[f"infill_{mode}"]
            L.append(f"| HumanEval single-line infilling EM (n={x['n']}, nib {mode}) | {x['em']:.1f}% |")
    for lang, name in (("python", "HumanEval pass@1 (python, n={n}, greedy)"),
                       ("rust", "HumanEval-Rust pass@1 (n={n}, greedy)")):
        x = r.get(f"pass1_{lang}")
        if x is None:
            continue
        if "skipped" in x:
            L.append(f"| {name.format(n=0)} | skipped: {x['skipped']} |")
        else:
            skip = f", {x['skipped_too_long']} skipped: prompt too long" if x.get("skipped_too_long") else ""
            L.append(f"| {name.format(n=x['n'])}{skip} | {x['pass1']:.1f}% ({x['passed']}/{x['n']}) |")
    if "skipped" in r:
        L.append(f"| nib-based metrics | skipped: {r['skipped']} |")
    return "\n".join(L) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["review"]:
        return review_main(argv[1:])
    ap = argparse.ArgumentParser(description="Evaluate an exported nib model through nib's engine "
                                             "(nib-eval review --help: the review benchmark)")
    ap.add_argument("--model", required=True, help="exported model folder (model.onnx + tokenizer + config)")
    ap.add_argument("--corpus", default=None, help="corpus folder with heldout.jsonl")
    ap.add_argument("--humaneval", default=None, help="folder with HumanEval-SingleLineInfilling.jsonl.gz")
    ap.add_argument("--nib", default=None, help="nib binary (default $NIB_BIN, target/release/nib)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--lines", type=int, default=200, help="line-completion samples per language")
    ap.add_argument("--infill", type=int, default=-1, help="HumanEval tasks (-1: all 1,033; 0: skip)")
    ap.add_argument("--infill-modes", default="generate,complete")
    ap.add_argument("--pass1", type=int, default=0,
                    help="HumanEval pass@1 tasks per language (0: skip, -1: all); needs --humaneval")
    ap.add_argument("--pass1-langs", default="python,rust")
    ap.add_argument("--pass1-max-tokens", type=int, default=256)
    ap.add_argument("--bpc-docs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per nib process")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    r = evaluate(a.model, a.corpus, a.humaneval, a.nib, a.out, a.lines, a.infill,
                 [m for m in a.infill_modes.split(",") if m], a.bpc_docs, a.workers, a.threads, a.seed,
                 n_pass1=a.pass1, pass1_langs=[x for x in a.pass1_langs.split(",") if x],
                 pass1_max_new=a.pass1_max_tokens)
    print(table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
