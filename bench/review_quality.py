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
from nib_models.evaluate import run_review  # noqa: E402

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.97, 0.99)


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
        denominators = lines if key == "lang" else {g: total_lines for g in counts}
        out[f"{t:g}"] = {g: round(1000 * n / max(1, denominators.get(g, total_lines)), 2)
                         for g, n in sorted(counts.items())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--nib", default=str(ROOT / "target" / "release" / "nib"))
    ap.add_argument("--n", type=int, default=150, help="buggy windows, and as many clean ones")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "review_quality.json"))
    args = ap.parse_args()
    review_data.EXT.setdefault("javascript", "js")
    docs = sources(max_files=4 * args.n, seed=args.seed)
    work = pathlib.Path(args.out).parent / "review_quality_bench"
    manifest = review_data.make_bench(docs, review_data.load_rules(), work, args.n, seed=args.seed)
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
        "scores": {t: {k: v for k, v in s.items() if k != "recall_by_rule"} | {"recall_by_rule": s["recall_by_rule"]}
                   for t, s in res["scores"].items() if isinstance(s, dict)},
        "fp_per_kloc_by_lang": by_group(manifest, res["findings"], "lang"),
        "fp_per_kloc_by_rule": by_group(manifest, res["findings"], "rule"),
    }
    pathlib.Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
