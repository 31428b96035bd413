"""Task set and mutation benchmark for nib's review (bug finding by substitution).

The bug classes come from ``src/review/substitutions.json`` (the one source of truth shared with
the Rust review): groups of interchangeable tokens per language. A *site* is a place where nib's
review looks (``nib sites``: operators of binary expressions and comparisons, 0/1 and boolean
literals, negations, found in the syntax tree, each alternative one that still parses); its
candidates are the member's alternatives as the review writes them there (``x==None`` gives
``!=`` and `` is ``). Sites come from the ``nib`` binary (``nib sites --jsonl``, one process for
every text; ``NibSites``), never from a scanner of this package's own, so examples, the
benchmark's injected bugs and the review agree on where a bug can be.

Outputs:
  tasks    JSONL for ``nib-finetune``: ``{"prompt", "completion", "negatives", "rules", "lang"}``;
           the prompt is ``<fim_prefix>{before}<fim_suffix>{after}<fim_middle>`` (PSM) laid out
           as nib's review lays it out (whole lines, the prefix's last token healed: its text
           starts every middle), for a random budget of 96-504 tokens, 50-80% of it before the
           site (the review's own: 448, 3/4 before); the completion is the member as written;
           negatives are the other candidates as the review spells them.
  bench    held-out mutation benchmark: windows of 40-120 lines of held-out files written as
           real files, half with exactly one injected bug (one site replaced by another
           candidate; path, line, column, original, mutated, rule recorded), half clean;
           ``manifest.json`` lists them. Deterministic for a seed.

Usage (``--nib``: the binary; default ``NIB_BIN``, else the repository's target/{release,debug}/nib):
  nib-review-data tasks --corpus /work/nibdata/corpus --tokenizer models/runs/base/final \\
      --out /work/nibdata/review/tasks.jsonl --n 40000
  nib-review-data bench --corpus /work/nibdata/corpus --out /work/nibdata/review/bench --n 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, split_points

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- sites

@dataclass
class Site:
    start: int  # character offsets into the text
    end: int
    original: str  # the member (``is not``; the text may space it otherwise)
    candidates: list[tuple[str, str]]  # (alternative, rule), the original excluded
    written: list[str] = field(default_factory=list)  # each alternative as the review writes it here

    def line_col(self, text):
        """1-based line and column (characters) of the site's start."""
        line = text.count("\n", 0, self.start) + 1
        col = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, col


EXT = {"python": "py", "rust": "rs", "javascript": "js", "typescript": "ts", "go": "go", "c": "c", "cpp": "cpp",
       "java": "java"}


def _char_offsets(text: str, byte_offsets: set[int]) -> dict[int, int]:
    """Character offsets of UTF-8 byte offsets into ``text``, in one pass."""
    wanted = sorted(byte_offsets)
    out, k, b = {}, 0, 0
    for c, ch in enumerate(text):
        while k < len(wanted) and wanted[k] <= b:
            out[wanted[k]] = c
            k += 1
        if k == len(wanted):
            return out
        b += len(ch.encode("utf-8", "surrogatepass"))
    for w in wanted[k:]:
        out[w] = len(text)
    return out


class NibSites:
    """The places nib's review scores in a text, from one ``nib sites --jsonl`` process.

    ``sites(text, lang)`` with a corpus language name (``python``, ``rust``, ...) or a file name
    (``lang="x.kt"``); a text of a language without review rules has no sites."""

    def __init__(self, nib=None):
        from .evaluate import find_nib

        path = find_nib(nib)
        if path is None:
            raise RuntimeError("no nib binary: build it (cargo build --release) or set NIB_BIN")
        # cwd="/": nothing of the caller's folder is read.
        # Absolute: the process runs in "/", so that nothing of the caller's folder is read.
        self._path = os.path.abspath(path)
        # A file, not a pipe: nothing reads stderr while the process runs.
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([self._path, "sites", "--jsonl"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, cwd="/", text=True,
                                      encoding="utf-8", bufsize=1)

    def __call__(self, text: str, lang: str) -> list[Site]:
        name = lang if "." in lang else f"window.{EXT.get(lang, lang)}"
        try:
            self._proc.stdin.write(json.dumps({"path": name, "text": text}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"{self._path} sites --jsonl stopped answering (an older nib?): "
                               f"{self._stderr.read()[-500:].decode(errors='replace')}")
        answer = json.loads(line)
        if "error" in answer:
            return []
        chars = _char_offsets(text, {b for x in answer["sites"] for b in (x["start"], x["end"])})
        return [Site(chars[x["start"]], chars[x["end"]], x["member"],
                     [(a["text"], a["rule"]) for a in x["alternatives"]],
                     [a["written"] for a in x["alternatives"]])
                for x in answer["sites"]]

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- prompts

def fim_prompt(tok, text, start, end, prefix_tokens, suffix_tokens, heal=True):
    """(prompt, healed) around text[start:end], laid out as nib's review does (src/review/score.rs,
    src/prompt/context.rs): the prefix is whole lines, at most ``prefix_tokens`` tokens, and its
    last token is taken out (token healing: ``healed``, its text, starts every candidate middle);
    the suffix is whole lines, at most ``suffix_tokens`` tokens (the end of one long line if no
    whole line fits). PSM: ``<fim_prefix>{before}<fim_suffix>{after}<fim_middle>``."""
    before = text[max(0, start - prefix_tokens * 8):start]
    enc = tok.encode(before, add_special_tokens=False)
    if len(enc.ids) > prefix_tokens:
        cut = enc.offsets[len(enc.ids) - prefix_tokens][0]
        nl = before.find("\n", cut - 1 if cut else 0)
        before = before[nl + 1:] if 0 <= nl < len(before) - 1 else before[cut:]
        enc = tok.encode(before, add_special_tokens=False)
    healed = ""
    if heal and enc.ids:
        last = before[enc.offsets[-1][0]:]
        if last and tok.decode([enc.ids[-1]]) == last:
            healed, before = last, before[:len(before) - len(last)]
    after = text[end:end + suffix_tokens * 8]
    enc = tok.encode(after, add_special_tokens=False)
    if len(enc.ids) > suffix_tokens:
        cut = enc.offsets[suffix_tokens][0]
        nl = after.rfind("\n", 0, cut)
        after = after[:nl + 1] if nl >= 0 else after[:cut]
    return f"{FIM_PREFIX}{before}{FIM_SUFFIX}{after}{FIM_MIDDLE}", healed


def load_docs(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def make_tasks(docs, tok, sites, n, seed=0, max_prompt=504, min_prompt=96, per_rule_per_file=2, fim_share=0.0,
               log=print):
    """``n`` review examples from random sites of ``docs`` (half Python, half Rust files when both
    exist); at most ``per_rule_per_file`` sites of a rule per file, so frequent classes (``0``/``1``,
    ``<`` in generics) do not crowd out the rest. Prompt budgets are random in
    [min_prompt, max_prompt] tokens, 50-80% of it before the site.

    With ``fim_share`` > 0, that share of the ``n`` examples are plain infilling examples instead
    (no negatives): a cursor-like split of a file as in pretraining (fim.split_points: the cursor
    in a line, the middle the rest of it, sometimes a few more lines), laid out without token
    healing as ``nib generate`` gets a PSM prompt. They keep the model from learning that every
    middle is one short operator."""
    rng = random.Random(seed)
    by_lang = {}
    for d in docs:
        by_lang.setdefault(d["lang"], []).append(d)
    for v in by_lang.values():
        rng.shuffle(v)
    langs = sorted(by_lang)
    cursors = {lang: 0 for lang in langs}
    out = []
    while len(out) < n and any(cursors[lang] < len(by_lang[lang]) for lang in langs):
        lang = langs[len(out) % len(langs)] if len(langs) > 1 else langs[0]
        if cursors[lang] >= len(by_lang[lang]):
            lang = next(x for x in langs if cursors[x] < len(by_lang[x]))
        d = by_lang[lang][cursors[lang]]
        cursors[lang] += 1
        by_rule = {}
        for s in sites(d["text"], lang):
            by_rule.setdefault(s.candidates[0][1], []).append(s)
        for rule_sites in by_rule.values():
            for s in rng.sample(rule_sites, min(per_rule_per_file, len(rule_sites))):
                budget = rng.randint(min_prompt, max_prompt)
                pre = int(budget * rng.uniform(0.5, 0.8))
                prompt, healed = fim_prompt(tok, d["text"], s.start, s.end, pre, budget - pre)
                out.append({"prompt": prompt, "completion": healed + d["text"][s.start:s.end],
                            "negatives": [healed + w for w in s.written],
                            "rules": [r for _, r in s.candidates], "lang": lang,
                            "package": d["package"], "path": d["path"]})
                if fim_share and rng.random() < fim_share / (1 - fim_share):
                    i, j = split_points(d["text"], rng, line_rate=1.0)
                    prompt, _ = fim_prompt(tok, d["text"], i, j, pre, budget - pre, heal=False)
                    out.append({"prompt": prompt, "completion": d["text"][i:j], "negatives": [], "rules": [],
                                "lang": lang, "package": d["package"], "path": d["path"]})
    rng.shuffle(out)
    log(f"{len(out)} review examples from {sum(cursors.values())} files")
    return out[:n]


# --------------------------------------------------------------------------- mutation benchmark



def _windows(text, rng, min_lines, max_lines):
    lines = text.splitlines(keepends=True)
    if len(lines) < min_lines:
        return None
    size = rng.randint(min_lines, min(max_lines, len(lines)))
    s = rng.randint(0, len(lines) - size)
    # start at a line that is not indented when one is near (a window then reads like a file)
    for k in range(s, max(-1, s - 20), -1):
        if lines[k].strip() and not lines[k][0].isspace():
            s = k
            break
    return "".join(lines[s:s + size]), s + 1


def make_bench(docs, sites, out_dir, n, seed=0, min_lines=40, max_lines=120, max_share=0.25, log=print):
    """``n`` buggy and ``n`` clean windows of held-out files; returns the manifest.

    ``sites(text, lang)`` gives a window's sites (``NibSites``: nib's own places), so bugs go only
    where nib looks and every injected bug still parses.

    Every window holds at least one site. A buggy window has one site replaced by a uniformly
    chosen candidate (the site: a uniform rule among the window's, then a uniform site of it); the mutated text must lex to the same sites
    with the replacement at that place. Windows come from distinct files; at most ``max_share``
    of each half from one package; languages alternate."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    (out_dir / "files").mkdir(parents=True, exist_ok=True)
    by_lang = {}
    for d in sorted(docs, key=lambda d: (d["lang"], d["package"], d["path"])):
        by_lang.setdefault(d["lang"], []).append(d)
    for v in by_lang.values():
        rng.shuffle(v)
    langs = sorted(by_lang)
    used = {lang: 0 for lang in langs}
    per_pkg = {}
    entries = []
    cap = max(1, int(max_share * n))
    for kind in ("buggy", "clean"):
        made = 0
        while made < n:
            left = [x for x in langs if used[x] < len(by_lang[x])]
            if not left:
                break
            lang = langs[made % len(langs)]
            if lang not in left:
                lang = left[0]
            d = by_lang[lang][used[lang]]
            used[lang] += 1
            if per_pkg.get((kind, d["package"]), 0) >= cap:
                continue
            w = _windows(d["text"], rng, min_lines, max_lines)
            if w is None:
                continue
            text, first_line = w
            found = sites(text, lang)
            if not found:
                continue
            entry = {"kind": kind, "lang": lang, "package": d["package"], "source": d["path"],
                     "source_first_line": first_line, "lines": text.count("\n") + (not text.endswith("\n"))}
            if kind == "buggy":
                # rule first, then site: Rust generics' `<`/`>` would otherwise make most bugs comparisons
                rule_sites = {}
                for x in found:
                    rule_sites.setdefault(x.candidates[0][1], []).append(x)
                s = rng.choice(rule_sites[rng.choice(sorted(rule_sites))])
                k = rng.randrange(len(s.candidates))
                (alt, rule), alt_text = s.candidates[k], s.written[k]
                mutated = text[:s.start] + alt_text + text[s.end:]
                again = sites(mutated, lang)
                if len(again) != len(found) or not any(s.start <= x.start < s.start + len(alt_text) and x.original == alt for x in again):
                    continue
                line, col = s.line_col(text)
                entry["bug"] = {"line": line, "column": col, "start": s.start, "end": s.start + len(alt_text),
                                "start_byte": len(mutated[:s.start].encode()),
                                "end_byte": len(mutated[:s.start + len(alt_text)].encode()),
                                "original": text[s.start:s.end], "mutated": alt_text, "rule": rule}
                text = mutated
            name = f"{kind}/{len([e for e in entries if e['kind'] == kind]):04d}_" \
                   f"{re.sub(r'[^A-Za-z0-9]+', '_', d['package'])}.{EXT.get(lang, 'txt')}"
            entry["file"] = name
            (out_dir / "files" / name).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / "files" / name).write_text(text)
            entries.append(entry)
            per_pkg[(kind, d["package"])] = per_pkg.get((kind, d["package"]), 0) + 1
            made += 1
    manifest = {"seed": seed, "n": n, "min_lines": min_lines, "max_lines": max_lines,
                "files_dir": "files", "entries": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    nb = sum(e["kind"] == "buggy" for e in entries)
    log(f"bench: {nb} buggy, {len(entries) - nb} clean windows in {out_dir}")
    return manifest


# --------------------------------------------------------------------------- cli

def main(argv=None):
    ap = argparse.ArgumentParser(description="Review task set and mutation benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tasks", help="fine-tuning examples from the training split")
    t.add_argument("--corpus", required=True)
    t.add_argument("--tokenizer", required=True, help="folder with tokenizer.json")
    t.add_argument("--out", required=True, help="JSONL file")
    t.add_argument("--n", type=int, default=40000)
    t.add_argument("--max-prompt", type=int, default=504)
    t.add_argument("--min-prompt", type=int, default=96)
    t.add_argument("--fim-share", type=float, default=0.0, help="share of plain infilling examples (no negatives)")
    b = sub.add_parser("bench", help="held-out mutation benchmark")
    b.add_argument("--corpus", required=True)
    b.add_argument("--out", required=True, help="folder")
    b.add_argument("--n", type=int, default=100, help="buggy windows (and as many clean ones)")
    b.add_argument("--min-lines", type=int, default=40)
    b.add_argument("--max-lines", type=int, default=120)
    for p in (t, b):
        p.add_argument("--nib", default=None, help="the nib binary whose places are used")
        p.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    with NibSites(a.nib) as sites:
        if a.cmd == "tasks":
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(Path(a.tokenizer) / "tokenizer.json"))
            rows = make_tasks(load_docs(Path(a.corpus) / "train.jsonl"), tok, sites, a.n, a.seed,
                              a.max_prompt, a.min_prompt, fim_share=a.fim_share)
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            with open(a.out, "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        else:
            make_bench(load_docs(Path(a.corpus) / "heldout.jsonl"), sites, a.out, a.n, a.seed, a.min_lines,
                       a.max_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
