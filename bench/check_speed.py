"""How fast `nib check` reviews real code: lines per second over a folder of
real code with --jobs 1 and 2, and the time `--diff` takes over a change of
1,000 lines in a git repository (every changed line reviewed, the rest
skipped).

    .venv/bin/python bench/check_speed.py                      # Python's standard library sample
    .venv/bin/python bench/check_speed.py --src DIR --nib target/release/nib
    .venv/bin/python bench/check_speed.py --ext rs --src ~/.cargo/registry/src/*/tokio-1.*/src

The folder sample: the files of --src with the extension --ext (default py) (default: Python's own
json, email, http, logging and importlib packages), one nib check run each
with --format json (one model load per run, counted in the time). The
--diff sample: a git repository holding those files, committed, plus one
new untracked file of 1,000 lines cut from a file outside the sample.
Results go to bench/out/check_speed.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
STDLIB = pathlib.Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def default_src() -> list[pathlib.Path]:
    base = pathlib.Path("/usr/lib/python3.11") if pathlib.Path("/usr/lib/python3.11").is_dir() else STDLIB
    return [base / p for p in ("json", "email", "http", "logging", "importlib")]


def timed_check(nib: str, args: list[str], cwd: pathlib.Path) -> tuple[float, dict]:
    start = time.perf_counter()
    run = subprocess.run([nib, "check", "-q", "--format", "json", "--exit-zero", *args],
                         cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"nib check failed: {run.stderr}")
    return elapsed, json.loads(run.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nib", default=str(ROOT / "target/release/nib"))
    ap.add_argument("--src", type=pathlib.Path, action="append", help="folders of code (repeatable)")
    ap.add_argument("--model", help="model folder (default: nib's own)")
    ap.add_argument("--ext", default="py", help="the files' extension (default: py)")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "bench/out/check_speed.json")
    args = ap.parse_args()
    srcs = args.src or default_src()
    model = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        repo = pathlib.Path(tmp) / "repo"
        for src in srcs:
            shutil.copytree(src, repo / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        files = sorted(repo.rglob(f"*.{args.ext}"))
        lines = sum(f.read_text(errors="replace").count("\n") for f in files)
        result = {"files": len(files), "lines": lines, "sources": [str(s) for s in srcs], "ext": args.ext}
        for jobs in (1, 2):
            elapsed, report = timed_check(args.nib, [*model, "--jobs", str(jobs), "."], repo)
            result[f"jobs{jobs}"] = {"seconds": round(elapsed, 2), "lines_per_s": round(lines / elapsed),
                                     "sites": report["summary"]["sites"], "findings": report["summary"]["findings"]}
            print(f"--jobs {jobs}: {lines} lines in {elapsed:.1f} s = {lines / elapsed:.0f} lines/s", file=sys.stderr)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=repo, check=True)
        # A file of 1,000 lines or more from beside the sample, outside it.
        sample = [src.resolve() for src in srcs]
        donor = next((p for p in sorted(srcs[0].parent.rglob(f"*.{args.ext}"))
                      if not any(p.resolve().is_relative_to(s) for s in sample)
                      and p.read_text(errors="replace").count("\n") >= 1000), None)
        if donor is None:
            print("no file of 1,000 lines beside the sample: --diff not measured", file=sys.stderr)
        else:
            change = "".join(donor.read_text(errors="replace").splitlines(keepends=True)[:1000])
            (repo / f"changed.{args.ext}").write_text(change)
            elapsed, report = timed_check(args.nib, [*model, "--diff", "HEAD", "."], repo)
            result["diff_1000_lines"] = {"seconds": round(elapsed, 2), "donor": str(donor),
                                         "sites": report["summary"]["sites"], "files_checked": report["files_checked"]}
            print(f"--diff HEAD over a 1,000-line change: {elapsed:.1f} s", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
