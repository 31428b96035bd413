"""Review quality and speed on real code nobody here wrote: what `nib check`
finds in correct code (false findings per 1,000 lines, per rule and
language) and how often it finds a bug injected into it (recall, precision),
at several thresholds; and lines per second.

Sources, all already on a machine that ran scripts/test.sh: the Python
standard library (/usr/lib/python3.*), Rust crates in cargo's registry
(~/.cargo/registry/src), JavaScript packages under editors/.tools (the
code-server install) when present. None of it is in nib's training corpus
(registry packages from PyPI and crates.io sdists of other projects; see
models/data/DATA_CARD.md), and it is mostly correct code.

    .venv/bin/python bench/review_quality.py --model models/default --n 150

The benchmark (windows of 40–120 lines; half with one bug injected by the
rules of src/review/substitutions.json, half clean) is made by
nib_models.review_data.make_bench and scored by nib_models.evaluate, the
same code as `nib-eval review`. Results go to bench/out/review_quality.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models"))

from nib_models import review_data  # noqa: E402
from nib_models.evaluate import nib_check, run_review, score_review  # noqa: E402

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.97, 0.99)
# Not below 0.8: a rule that made no false finding in a sample of a few
# thousand lines would otherwise be set far lower than it deserves.
GRID = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.01)
RULE_SET = {"python": "python", "rust": "rust", "javascript": "c-like"}


def is_bug(entry: dict, f: dict) -> bool:
    """The finding flags the injected bug and proposes the original (as nib-eval scores it)."""
    b = entry["bug"]
    return f["line"] == b["line"] and f["replacement"].strip() == b["original"].strip() and \
        b["column"] <= f["column"] < b["column"] + len(b["mutated"])


def calibrate(runs: list[tuple[list, dict]], target: float) -> dict:
    """Per rule set and rule, the lowest thresholds (from GRID) that keep false findings on
    the clean windows of `runs` (manifest entries, findings) at or under `target` per 1,000
    lines in all, most recall per false finding first (greedy).
    Returns {rule set: {rule: threshold}}."""
    entries = [(e, findings) for manifest, findings in runs for e in manifest]
    clean_lines = sum(e["lines"] for e, _ in entries if e["kind"] == "clean")
    budget = target * clean_lines / 1000
    # (rule set, rule) -> confidences of false findings (clean windows) and of bugs found.
    false: dict[tuple, list[float]] = {}
    true: dict[tuple, list[float]] = {}
    for e, findings in entries:
        for f in findings.get(e["file"], []):
            key = (RULE_SET[e["lang"]], f["rule"])
            if e["kind"] == "clean":
                false.setdefault(key, []).append(f["confidence"])
            elif is_bug(e, f):
                true.setdefault(key, []).append(f["confidence"])
    keys = sorted(set(false) | set(true))
    chosen = {k: len(GRID) - 1 for k in keys}

    def count(values, k):
        return sum(v >= GRID[chosen[k]] for v in values.get(k, []))

    spent = 0
    while True:
        best = None
        for k in keys:
            if chosen[k] == 0:
                continue
            chosen[k] -= 1
            gain, cost = count(true, k), count(false, k)
            chosen[k] += 1
            gain -= count(true, k)
            cost -= count(false, k)
            if spent + cost > budget:
                continue
            ratio = (gain + 1e-9) / (cost + 1e-3)
            if best is None or ratio > best[0]:
                best = (ratio, k, cost)
        if best is None:
            break
        chosen[best[1]] -= 1
        spent += best[2]
    out: dict[str, dict[str, float]] = {}
    for (rule_set, rule), i in sorted(chosen.items()):
        out.setdefault(rule_set, {})[rule] = GRID[i]
    return out


def sources(max_files: int, seed: int) -> list[dict]:
    """Documents of each language: {lang, package, path, text}."""
    rng = random.Random(seed)
    found: dict[str, list[tuple[str, str]]] = {"python": [], "rust": [], "javascript": []}
    for lib in sorted(glob.glob("/usr/lib/python3.*")):
        for p in sorted(glob.glob(f"{lib}/**/*.py", recursive=True)):
            rel = os.path.relpath(p, lib)
            if "test" in rel.split(os.sep)[0] or "/test" in rel or "site-packages" in rel:
                continue
            found["python"].append((rel.split(os.sep)[0].removesuffix(".py"), p))
    for p in sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/*/src/**/*.rs"), recursive=True)):
        crate = p.split("/registry/src/")[1].split("/")[1]
        found["rust"].append((crate, p))
    for p in sorted(glob.glob(str(ROOT / "editors/.tools/**/node_modules/*/lib/**/*.js"), recursive=True)):
        if p.endswith(".min.js"):
            continue
        found["javascript"].append((p.split("/node_modules/")[-1].split("/")[0], p))
    docs = []
    for lang, files in found.items():
        rng.shuffle(files)
        for package, path in files[:max_files]:
            try:
                text = pathlib.Path(path).read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) < 200_000 and "\0" not in text:
                docs.append({"lang": lang, "package": package, "path": path, "text": text})
    return docs


def by_group(manifest: dict, findings: dict, key: str) -> dict:
    """False findings per 1,000 clean lines by `key` (lang or rule), per threshold."""
    clean = [e for e in manifest["entries"] if e["kind"] == "clean"]
    lines: dict[str, int] = {}
    for e in clean:
        lines[e["lang"]] = lines.get(e["lang"], 0) + e["lines"]
    total_lines = sum(lines.values())
    out: dict[str, dict] = {}
    for t in THRESHOLDS:
        counts: dict[str, int] = {}
        for e in clean:
            for f in findings.get(e["file"], []):
                if f["confidence"] >= t:
                    g = e["lang"] if key == "lang" else f["rule"]
                    counts[g] = counts.get(g, 0) + 1
        # Per language over its own lines; per rule over all clean lines.
        out[f"{t:g}"] = {g: round(1000 * n / max(1, lines[g] if key == "lang" else total_lines), 2)
                         for g, n in sorted(counts.items())}
    return out


def at_defaults(nib: str, model: str, work: pathlib.Path, manifest: dict, threads: int) -> dict:
    """`nib check` with no threshold given, so each rule's own default applies
    (configuration files aside): the numbers users get."""
    files = work / "files"
    paths = [files / e["file"] for e in manifest["entries"]]
    t0 = time.time()
    raw = nib_check(nib, model, paths, min_confidence=None, threads=threads)
    seconds = time.time() - t0
    names = {str(files / e["file"]): e["file"] for e in manifest["entries"]}
    findings: dict[str, list] = {}
    for f in raw:
        findings.setdefault(names[f["path"]], []).append(f)
    scores = score_review(manifest, findings, thresholds=(0.0,))["0"]
    clean = [e for e in manifest["entries"] if e["kind"] == "clean"]
    by_lang: dict[str, list[int]] = {}
    by_rule: dict[str, int] = {}
    for e in clean:
        n = len(findings.get(e["file"], []))
        acc = by_lang.setdefault(e["lang"], [0, 0])
        acc[0] += n
        acc[1] += e["lines"]
        for f in findings.get(e["file"], []):
            by_rule[f["rule"]] = by_rule.get(f["rule"], 0) + 1
    clean_lines = sum(e["lines"] for e in clean)
    lines = sum(e["lines"] for e in manifest["entries"])
    return {
        "seconds": round(seconds, 1),
        "lines_per_second": round(lines / seconds, 1),
        "recall": scores["recall"], "precision": scores["precision"],
        "fp_per_kloc_clean": scores["fp_per_kloc_clean"],
        "recall_by_rule": scores["recall_by_rule"],
        "fp_per_kloc_by_lang": {k: round(1000 * n / max(1, l), 2) for k, (n, l) in sorted(by_lang.items())},
        "fp_per_kloc_by_rule": {k: round(1000 * n / max(1, clean_lines), 2) for k, n in sorted(by_rule.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--nib", default=str(ROOT / "target" / "release" / "nib"))
    ap.add_argument("--n", type=int, default=150, help="buggy windows, and as many clean ones")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "review_quality.json"))
    ap.add_argument("--calibrate", type=float, default=None, metavar="FP_PER_KLOC",
                    help="also print per-rule thresholds for this many false findings per 1,000 "
                         "lines (run on another --seed than the one reported)")
    ap.add_argument("--calibrate-from", nargs="+", default=None, metavar="JSON",
                    help="with --calibrate: calibrate on these earlier outputs (their raw "
                         "findings) instead of running nib")
    args = ap.parse_args()
    if args.calibrate_from:
        runs = []
        for path in args.calibrate_from:
            raw = json.loads(pathlib.Path(path).read_text())["raw"]
            runs.append((raw["manifest"], raw["findings"]))
        print(json.dumps(calibrate(runs, args.calibrate), indent=1))
        return
    docs = sources(max_files=4 * args.n, seed=args.seed)
    work = pathlib.Path(args.out).parent / "review_quality_bench"
    with review_data.NibSites(args.nib) as sites:
        manifest = review_data.make_bench(docs, sites, work, args.n, seed=args.seed)
    t0 = time.time()
    res = run_review(args.model, work, backend="nib", nib=args.nib, thresholds=THRESHOLDS,
                     threads=args.threads, log=lambda *_: None)
    seconds = time.time() - t0
    lines = sum(e["lines"] for e in manifest["entries"])
    summary = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "windows": {lang: sum(e["lang"] == lang for e in manifest["entries"]) for lang in ("python", "rust", "javascript")},
        "lines": lines,
        "seconds": round(seconds, 1),
        "lines_per_second": round(lines / seconds, 1),
        "scores": {t: s for t, s in res["scores"].items() if isinstance(s, dict)},
        "fp_per_kloc_by_lang": by_group(manifest, res["findings"], "lang"),
        "fp_per_kloc_by_rule": by_group(manifest, res["findings"], "rule"),
    }
    summary["defaults"] = at_defaults(args.nib, args.model, work, manifest, args.threads)
    if args.calibrate is not None:
        summary["calibrated"] = calibrate([(manifest["entries"], res["findings"])], args.calibrate)
    summary["raw"] = {"manifest": manifest["entries"], "findings": res["findings"]}
    pathlib.Path(args.out).write_text(json.dumps(summary, indent=1))
    summary.pop("raw")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
