"""Task set and mutation benchmark for nib's review (bug finding by substitution).

The bug classes come from ``src/review/substitutions.json`` (read from the repository, the one
source of truth shared with the Rust review): groups of interchangeable tokens per language. A
*site* is an occurrence of a group member in code (not in a string or comment); its candidates
are the member itself and every other member of every group that contains it (``==`` in Python:
``!=`` by ``equality`` and ``is`` by ``identity``).

Matching (as the JSON's comment says: longest first, words whole): the text is cut into lexer
tokens, and a site is a token (or, for ``is not`` / ``not in``, two word tokens) equal to a
member. Python uses the ``tokenize`` module. Rust and the C-like languages use a small scanner
that skips comments (``//``, nested ``/* */``), strings (``"..."`` with escapes, Rust raw strings
``r#"..."#``, byte strings, char literals, JS template and single-quoted strings), reads words
and number literals whole (so ``0`` never matches inside ``10``, ``0.5`` or ``0x0``) and
punctuation by maximal munch over the language's operators (so ``->``, ``=>``, ``<<``, ``>>``
hold no ``-``, ``>`` or ``<`` site). Outside Python, ``<`` and ``>`` are sites only with whitespace
on both sides (``Vec<T>`` holds type brackets), as in nib's review (src/review/sites.rs).

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

Usage:
  nib-review-data tasks --corpus /work/nibdata/corpus --tokenizer models/runs/base/final \\
      --out /work/nibdata/review/tasks.jsonl --n 40000
  nib-review-data bench --corpus /work/nibdata/corpus --out /work/nibdata/review/bench --n 100
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, split_points

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSTITUTIONS = REPO_ROOT / "src" / "review" / "substitutions.json"
LANGUAGES = REPO_ROOT / "src" / "languages.json"


# --------------------------------------------------------------------------- rules

@dataclass
class LangRules:
    name: str
    extensions: list[str]
    groups: list[dict]
    # member -> [(alternative, rule)] in group order, no duplicates
    alternatives: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self):
        for g in self.groups:
            for m in g["members"]:
                alts = self.alternatives.setdefault(m, [])
                for o in g["members"]:
                    if o != m and o not in [a for a, _ in alts]:
                        alts.append((o, g["rule"]))

    @property
    def members(self):
        return sorted(self.alternatives, key=len, reverse=True)


def load_rules(path=None, languages=None) -> dict[str, LangRules]:
    """Rule set name -> rules, from substitutions.json, with the extensions that
    src/languages.json gives each rule set (defaults: the repository's files)."""
    d = json.loads(Path(path or SUBSTITUTIONS).read_text())
    table = json.loads(Path(languages or LANGUAGES).read_text())["languages"]
    extensions = {name: [] for name in d["languages"]}
    for lang in table:
        if lang.get("review") in extensions:
            extensions[lang["review"]].extend(lang["extensions"])
    return {name: LangRules(name, extensions[name], spec["groups"]) for name, spec in d["languages"].items()}


def rules_for_path(rules: dict[str, LangRules], path) -> LangRules | None:
    ext = Path(str(path)).suffix.lstrip(".")
    for r in rules.values():
        if ext in r.extensions:
            return r
    return None


def rules_for_lang(rules, lang: str) -> LangRules:
    """Corpus language names (python, rust) map to the JSON's language names."""
    return rules[lang] if lang in rules else rules["c-like"]


# --------------------------------------------------------------------------- sites

@dataclass
class Site:
    start: int  # character offsets into the text
    end: int
    original: str  # the member as written in the rules (``is not``, not the spacing in the text)
    candidates: list[tuple[str, str]]  # (alternative, rule), the original excluded

    def line_col(self, text):
        """1-based line and column (characters) of the site's start."""
        line = text.count("\n", 0, self.start) + 1
        col = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, col


def _line_starts(text):
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    return starts


def _python_tokens(text):
    """(kind, string, start, end) of Python's significant tokens, char offsets; what tokenize
    reads before an error (windows cut mid-statement) is kept. Strings, comments and f-string
    contents are not returned."""
    starts = _line_starts(text)
    out = []
    fstring_depth = 0
    fs_start = getattr(tokenize, "FSTRING_START", None)
    fs_end = getattr(tokenize, "FSTRING_END", None)
    try:
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            if fs_start is not None and t.type == fs_start:
                fstring_depth += 1
                continue
            if fs_end is not None and t.type == fs_end:
                fstring_depth -= 1
                continue
            if fstring_depth or t.type not in (tokenize.OP, tokenize.NAME, tokenize.NUMBER):
                continue
            (r0, c0), (r1, c1) = t.start, t.end
            if r0 - 1 >= len(starts) or r1 - 1 >= len(starts):
                break
            out.append((t.type, t.string, starts[r0 - 1] + c0, starts[r1 - 1] + c1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


RUST_OPS = ["..=", "...", "<<=", ">>=", "::", "->", "<-", "=>", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=",
            "*=", "/=", "%=", "^=", "&=", "|=", "<<", ">>", ".."]
C_OPS = [">>>=", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "...", "::", "->", "=>",
         "==", "!=", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=", "%=", "^=", "&=", "|=", "<<", ">>",
         "++", "--", "**", "?.", "??", ":=", "<-"]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:0[xXoObB][0-9A-Fa-f_]+|[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9_]+)?)"
                     r"[A-Za-z0-9_]*")
_RUST_RAW = re.compile(r'b?r(#*)"')
_RUST_CHAR = re.compile(r"b?'(?:\\(?:x[0-9A-Fa-f]{2}|u\{[0-9A-Fa-f]{1,6}\}|.)|[^\\'\n])'")


def _scan_tokens(text, lang):
    """(kind, string, start, end) of code tokens for Rust/C-like text: kind 'word', 'number', 'op'."""
    rust = lang == "rust"
    ops = sorted(RUST_OPS if rust else C_OPS, key=len, reverse=True)
    quotes = '"' if rust else "\"'`"
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if rust and text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if rust:
            m = _RUST_RAW.match(text, i)
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                close = '"' + m.group(1)
                j = text.find(close, m.end())
                i = n if j < 0 else j + len(close)
                continue
            m = _RUST_CHAR.match(text, i)
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                i = m.end()
                continue
            if c == "'":  # lifetime or label
                m = _WORD.match(text, i + 1)
                i = m.end() if m else i + 1
                continue
            if c == "b" and text.startswith('b"', i):
                i += 1
                c = '"'
        if c in quotes:
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and c != "`" and not rust:
                    break  # unterminated JS/C string: stop at the line end
                j += 1
            i = j + 1
            continue
        m = _WORD.match(text, i)
        if m:
            out.append(("word", m.group(), i, m.end()))
            i = m.end()
            continue
        if c.isdigit():
            m = _NUMBER.match(text, i)
            s = m.group()
            # `0..n`: a range, not the float `0.`
            out.append(("number", s, i, i + len(s)))
            i += len(s)
            continue
        for op in ops:
            if text.startswith(op, i):
                out.append(("op", op, i, i + len(op)))
                i += len(op)
                break
        else:
            out.append(("op", c, i, i + 1))
            i += 1
    return out


def _spaced(text, start, end):
    """Whitespace (or the text's edge) on both sides of text[start:end]."""
    return (start == 0 or text[start - 1].isspace()) and (end == len(text) or text[end].isspace())


def find_sites(text: str, rules: LangRules) -> list[Site]:
    """Every occurrence of a member of ``rules`` in code, in text order."""
    if rules.name == "python":
        toks = [(s, a, b) for _, s, a, b in _python_tokens(text)]
    else:
        toks = [(s, a, b) for _, s, a, b in _scan_tokens(text, rules.name)]
    multi = [m.split() for m in rules.members if " " in m]
    single = set(m for m in rules.members if " " not in m)
    sites = []
    k = 0
    while k < len(toks):
        s, a, b = toks[k]
        hit = None
        for words in multi:  # longest first
            if k + len(words) <= len(toks) and [t[0] for t in toks[k:k + len(words)]] == words:
                hit = (" ".join(words), a, toks[k + len(words) - 1][2], len(words))
                break
        if hit is None and s in single:
            hit = (s, a, b, 1)
        if hit is None:
            k += 1
            continue
        member, a, b, used = hit
        k += used
        if rules.name != "python" and member in ("<", ">") and not _spaced(text, a, b):
            continue  # `Vec<T>`, `impl<T>`: type brackets, not comparisons (as nib's review decides)
        sites.append(Site(a, b, member, list(rules.alternatives[member])))
    return sites


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


def spelled(text, site: Site, alternative: str) -> str:
    """``alternative`` as it would be written at ``site``: a word between identifier characters
    gets spaces (``x==None`` -> ``x is None``), as nib's review spells its candidates."""
    def ident(c):
        return bool(c) and (c.isalnum() or c == "_")
    if not alternative[:1].isalpha():
        return alternative
    return (" " if ident(text[site.start - 1:site.start]) else "") + alternative + \
        (" " if ident(text[site.end:site.end + 1]) else "")


def load_docs(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def make_tasks(docs, tok, rules, n, seed=0, max_prompt=504, min_prompt=96, per_rule_per_file=2, fim_share=0.0,
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
        lr = rules_for_lang(rules, lang)
        sites = find_sites(d["text"], lr)
        by_rule = {}
        for s in sites:
            by_rule.setdefault(s.candidates[0][1], []).append(s)
        for rule_sites in by_rule.values():
            for s in rng.sample(rule_sites, min(per_rule_per_file, len(rule_sites))):
                budget = rng.randint(min_prompt, max_prompt)
                pre = int(budget * rng.uniform(0.5, 0.8))
                prompt, healed = fim_prompt(tok, d["text"], s.start, s.end, pre, budget - pre)
                out.append({"prompt": prompt, "completion": healed + d["text"][s.start:s.end],
                            "negatives": [healed + spelled(d["text"], s, a) for a, _ in s.candidates],
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

EXT = {"python": "py", "rust": "rs"}


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


def make_bench(docs, rules, out_dir, n, seed=0, min_lines=40, max_lines=120, max_share=0.25, log=print,
               find=None):
    """``n`` buggy and ``n`` clean windows of held-out files; returns the manifest.

    ``find(text, lang, rules)`` gives a window's sites; the default is this module's scanner,
    while the benchmark passes nib's own places (``nib sites``), so that bugs go only where nib
    would look and every injected bug still parses.

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
            lr = rules_for_lang(rules, lang)
            find = find or (lambda text, lang, lr: find_sites(text, lr))
            sites = find(text, lang, lr)
            if not sites:
                continue
            entry = {"kind": kind, "lang": lang, "package": d["package"], "source": d["path"],
                     "source_first_line": first_line, "lines": text.count("\n") + (not text.endswith("\n"))}
            if kind == "buggy":
                # rule first, then site: Rust generics' `<`/`>` would otherwise make most bugs comparisons
                rule_sites = {}
                for x in sites:
                    rule_sites.setdefault(x.candidates[0][1], []).append(x)
                s = rng.choice(rule_sites[rng.choice(sorted(rule_sites))])
                alt, rule = rng.choice(s.candidates)
                alt_text = spelled(text, s, alt)
                mutated = text[:s.start] + alt_text + text[s.end:]
                again = find(mutated, lang, lr)
                if len(again) != len(sites) or not any(s.start <= x.start < s.start + len(alt_text) and x.original == alt for x in again):
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
                "rules": str(SUBSTITUTIONS.relative_to(REPO_ROOT)) if SUBSTITUTIONS.exists() else None,
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
        p.add_argument("--rules", default=None, help="substitutions.json (default: the repository's)")
        p.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rules = load_rules(a.rules)
    if a.cmd == "tasks":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(a.tokenizer) / "tokenizer.json"))
        rows = make_tasks(load_docs(Path(a.corpus) / "train.jsonl"), tok, rules, a.n, a.seed,
                          a.max_prompt, a.min_prompt, fim_share=a.fim_share)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    else:
        make_bench(load_docs(Path(a.corpus) / "heldout.jsonl"), rules, a.out, a.n, a.seed, a.min_lines,
                   a.max_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
