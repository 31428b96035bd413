"""Build a permissively licensed code corpus from the package registries.

Rust comes from crates.io through a throwaway Cargo project (its own
CARGO_HOME, ``cargo generate-lockfile`` + ``cargo fetch``), Python from PyPI
through ``pip download --no-deps`` (wheels). Every kept file records its
package, version and licence. Files are filtered (generated, minified,
vendored, huge, tests in wheels are absent anyway), deduplicated exactly
(content hash after whitespace normalisation) and near-exactly (MinHash LSH on
token shingles), and split into train / held-out BY PACKAGE.

Output (``--out DIR``):
  train.jsonl, heldout.jsonl   one JSON object per file:
                               {"text", "lang", "package", "version", "license", "path"}
  packages.json                per package: lang, version, licence, split, files, bytes
  DATA_CARD.md                 sources, sizes, licences, token counts

Usage:
  nib-corpus fetch --work /work/nibdata            # downloads (network)
  nib-corpus build --work /work/nibdata --out /work/nibdata/corpus
  nib-corpus all ...                               # both
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .dedup import MinHasher, exact_key, near_dup_filter

# ~100 popular crates (pure Rust, permissive licences).
DEFAULT_CRATES = """
serde serde_json serde_derive regex regex-syntax aho-corasick memchr tokio tokio-util futures futures-util
bytes clap clap_builder anyhow thiserror rand rand_core rand_chacha log env_logger itertools syn quote proc-macro2
hyper http reqwest chrono time uuid once_cell lazy_static bitflags smallvec indexmap hashbrown parking_lot
crossbeam-channel crossbeam-utils rayon rayon-core num-traits num-bigint num-integer base64 hex sha2 digest
tracing tracing-subscriber tracing-core toml toml_edit walkdir ignore globset tempfile url tower axum mio socket2
nom winnow petgraph bincode csv semver strsim unicode-segmentation unicode-width textwrap heck either bstr
ropey lsp-types crossterm ratatui indicatif console similar insta proptest anstream colored termcolor dashmap
arc-swap ahash byteorder flate2 miniz_oxide tar notify dirs which glob derive_more strum async-trait pin-project
slab arrayvec tinyvec generic-array typenum cfg-if scopeguard ordered-float ndarray half bumpalo pest
pest_derive humantime fnv siphasher serde_with serde_yaml prost bytemuck zerocopy encoding_rs
""".split()

# ~90 permissively licensed PyPI packages (wheels).
DEFAULT_PYPI = """
requests urllib3 idna charset-normalizer six attrs click flask werkzeug jinja2 markupsafe itsdangerous
packaging pyparsing python-dateutil pytz setuptools wheel pip tomli pyyaml sqlalchemy pydantic fastapi
starlette httpx httpcore anyio sniffio h11 rich typer colorama pygments black isort flake8 pycodestyle
pyflakes mypy pytest pluggy iniconfig more-itertools toolz cachetools boto3 s3transfer jmespath decorator
wrapt simplejson marshmallow networkx joblib threadpoolctl aiohttp yarl multidict frozenlist aiosignal
websockets tornado gunicorn uvicorn django celery kombu redis cryptography cffi pycparser jsonschema
referencing platformdirs filelock virtualenv tox nox hatchling pathspec tomlkit msgpack markdown mistune
beautifulsoup4 soupsieve html5lib nltk sympy scikit-learn pandas numpy scipy matplotlib pillow
""".split()

PERMISSIVE = [
    "mit", "apache", "bsd", "isc", "zlib", "unlicense", "0bsd", "psf", "python software foundation",
    "cc0", "boost", "bsl-1.0", "unicode", "hpnd", "mit-0", "historical permission",
]
NON_PERMISSIVE = ["gpl", "mpl", "mozilla", "epl", "eupl", "cddl", "agpl", "lgpl", "proprietary", "commercial",
                  "sspl", "cc-by-sa", "wtfpl", "cdla"]

MAX_FILE_BYTES = 200_000
MIN_FILE_BYTES = 64


# --------------------------------------------------------------------------- licences

def licence_is_permissive(lic: str | None) -> bool:
    """True if every alternative of an SPDX-ish expression we'd rely on is permissive.

    For ``A OR B`` one permissive alternative suffices; for ``A AND B`` all must be.
    Unknown/empty licences are rejected."""
    if not lic:
        return False
    s = lic.lower().replace("/", " or ")
    s = re.sub(r"[()]", " ", s)
    for alt in re.split(r"\bor\b", s):
        parts = [p.strip() for p in re.split(r"\band\b|,|;", alt) if p.strip()]
        if not parts:
            continue
        ok = True
        for p in parts:
            p = p.replace("with llvm-exception", "").replace("with llvm exception", "").strip()
            if any(n in p for n in NON_PERMISSIVE):
                ok = False
                break
            if not any(k in p for k in PERMISSIVE):
                ok = False
                break
        if ok:
            return True
    return False


def wheel_licence(meta_text: str) -> str:
    expr = None
    lic = None
    classifiers = []
    for line in meta_text.splitlines():
        if not line.strip():
            break  # end of headers
        if line.startswith("License-Expression:"):
            expr = line.split(":", 1)[1].strip()
        elif line.startswith("License:"):
            lic = line.split(":", 1)[1].strip()
        elif line.startswith("Classifier: License ::"):
            classifiers.append(line.split("::")[-1].strip())
    if expr:
        return expr
    if classifiers:
        return " AND ".join(sorted(set(classifiers)))
    if lic and len(lic) < 100:
        return lic
    if lic:
        # full licence text in the field: guess from its first line
        first = lic.splitlines()[0].lower()
        for k in ("mit", "apache", "bsd"):
            if k in first:
                return k.upper()
    return ""


# --------------------------------------------------------------------------- filters

GENERATED_MARKERS = re.compile(
    r"(@generated|do not edit|generated by|autogenerated|auto-generated|automatically generated|"
    r"this file was generated|code generated)", re.I)
SKIP_DIR_PARTS = {"vendor", "vendored", "_vendor", "third_party", "third-party", "node_modules", "target",
                  "build", "dist", "benches", "fuzz", "tests", "test", "testing", "testdata", "examples",
                  "__pycache__", ".git", "site-packages"}


def skip_reason(path: str, text: str) -> str | None:
    parts = set(Path(path).parts[:-1])
    low = {p.lower() for p in parts}
    if low & SKIP_DIR_PARTS:
        return "vendored/tests/build dir"
    name = Path(path).name.lower()
    if name.startswith("test_") or name.endswith("_test.py") or name.endswith("_pb2.py") or name == "conftest.py":
        return "test/generated name"
    n = len(text)
    if n > MAX_FILE_BYTES:
        return "huge"
    if n < MIN_FILE_BYTES:
        return "tiny"
    if GENERATED_MARKERS.search(text[:2000]):
        return "generated"
    lines = text.split("\n")
    maxlen = max(len(l) for l in lines)
    if maxlen > 1000 or n / max(1, len(lines)) > 120:
        return "minified/long lines"
    # data-like files: mostly numbers / hex tables
    alnum = sum(c.isalpha() for c in text[:20000])
    if alnum / max(1, min(n, 20000)) < 0.25:
        return "data-like"
    return None


# --------------------------------------------------------------------------- fetch

def fetch_crates(work: Path, crates, log=print):
    proj = work / "cargo-proj"
    home = work / "cargo-home"
    (proj / "src").mkdir(parents=True, exist_ok=True)
    (proj / "src" / "lib.rs").write_text("")
    deps = "\n".join(f'{c} = "*"' for c in crates)
    (proj / "Cargo.toml").write_text(
        f'[package]\nname = "corpus-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n')
    env = dict(os.environ, CARGO_HOME=str(home))
    # crates that conflict in resolution are dropped one by one
    for attempt in range(20):
        r = subprocess.run(["cargo", "generate-lockfile"], cwd=proj, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            break
        m = re.search(r"(?:package|crate) `([A-Za-z0-9_-]+)`", r.stderr)
        log("cargo generate-lockfile failed:\n" + r.stderr[-800:])
        if not m or m.group(1) not in crates:
            raise RuntimeError("cargo generate-lockfile failed")
        crates = [c for c in crates if c != m.group(1)]
        deps = "\n".join(f'{c} = "*"' for c in crates)
        (proj / "Cargo.toml").write_text(
            f'[package]\nname = "corpus-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n{deps}\n')
    r = subprocess.run(["cargo", "fetch"], cwd=proj, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cargo fetch failed:\n" + r.stderr[-2000:])
    log(f"cargo fetch: {len(crates)} direct crates")


def fetch_pypi(work: Path, packages, log=print):
    dest = work / "pypi"
    dest.mkdir(parents=True, exist_ok=True)
    ok = 0
    for p in packages:
        have = [f for f in dest.iterdir() if f.name.lower().replace("_", "-").startswith(p.lower() + "-")
                or f.name.lower().startswith(p.lower().replace("-", "_") + "-")]
        if have:
            ok += 1
            continue
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "-q", "-d", str(dest), p], capture_output=True, text=True)
        if r.returncode != 0:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), p],
                               capture_output=True, text=True)
        if r.returncode != 0:
            log(f"pip download {p} failed: {r.stderr[-300:]}")
        else:
            ok += 1
    log(f"pip download: {ok}/{len(packages)} packages")


# --------------------------------------------------------------------------- collect

@dataclass
class Doc:
    text: str
    lang: str
    package: str
    version: str
    license: str
    path: str


def _vkey(v: str):
    out = []
    for x in re.split(r"[.+-]", v):
        out.append((0, int(x), "") if x.isdigit() else (1, 0, x))
    return out


def collect_crates(work: Path, log=print):
    """Yield (package, version, licence, [(path, text)]) for the newest version of each fetched crate."""
    src_roots = list((work / "cargo-home" / "registry" / "src").glob("*"))
    newest = {}
    for root in src_roots:
        for d in root.iterdir():
            m = re.match(r"^(.*?)-(\d+\.\d+\.\d+.*)$", d.name)
            if not m:
                continue
            name, ver = m.groups()
            if name.startswith("windows") or name.endswith("-sys") or name.startswith("winapi"):
                continue
            if name not in newest or _vkey(ver) > _vkey(newest[name][0]):
                newest[name] = (ver, d)
    for name in sorted(newest):
        ver, d = newest[name]
        lic = ""
        ct = d / "Cargo.toml"
        if ct.exists():
            m = re.search(r'^license\s*=\s*"([^"]+)"', ct.read_text(errors="replace"), re.M)
            if m:
                lic = m.group(1)
        files = []
        for f in sorted(d.rglob("*.rs")):
            try:
                files.append((str(f.relative_to(d)), f.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, OSError):
                continue
        yield name, ver, lic, files


def collect_pypi(work: Path, log=print):
    for f in sorted((work / "pypi").iterdir()):
        name = f.name
        files = []
        lic = ""
        ver = ""
        try:
            if name.endswith(".whl"):
                pkg, ver = name.split("-")[:2]
                with zipfile.ZipFile(f) as z:
                    for info in z.infolist():
                        if info.filename.endswith(".dist-info/METADATA"):
                            lic = wheel_licence(z.read(info).decode("utf-8", "replace"))
                        elif info.filename.endswith(".py") and ".data/" not in info.filename:
                            try:
                                files.append((info.filename, z.read(info).decode("utf-8")))
                            except UnicodeDecodeError:
                                pass
            elif name.endswith(".tar.gz"):
                pkg, ver = name[:-7].rsplit("-", 1)
                with tarfile.open(f) as t:
                    for m in t.getmembers():
                        if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"):
                            lic = wheel_licence(t.extractfile(m).read().decode("utf-8", "replace"))
                        elif m.isfile() and m.name.endswith(".py"):
                            try:
                                files.append(("/".join(m.name.split("/")[1:]),
                                              t.extractfile(m).read().decode("utf-8")))
                            except UnicodeDecodeError:
                                pass
            else:
                continue
        except (zipfile.BadZipFile, tarfile.TarError, ValueError) as e:
            log(f"skip {name}: {e}")
            continue
        yield pkg.lower().replace("_", "-"), ver, lic, files


def collect_site_packages(sp: Path, log=print):
    """Python sources of the distributions installed in a site-packages folder (RECORD lists their files)."""
    for di in sorted(Path(sp).glob("*.dist-info")):
        try:
            meta = (di / "METADATA").read_text(errors="replace")
            rec = (di / "RECORD").read_text(errors="replace")
        except OSError:
            continue
        stem = di.name[: -len(".dist-info")]
        name, _, ver = stem.partition("-")
        files = []
        for line in rec.splitlines():
            path = line.split(",")[0]
            if not path.endswith(".py") or path.startswith("..") or ".dist-info/" in path:
                continue
            try:
                files.append((path, (Path(sp) / path).read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
        yield name.lower().replace("_", "-"), ver, wheel_licence(meta), files


# --------------------------------------------------------------------------- split

def split_by_package(packages, heldout_frac=0.08, seed=0, min_heldout=1):
    """Deterministically assign whole packages to 'train' or 'heldout'.

    Uses a hash of (seed, package name), so adding packages does not move
    others between splits. Guarantees at least ``min_heldout`` held-out
    package when there are at least two packages."""
    pk = sorted(set(packages))
    def h(p):
        return int(hashlib.sha256(f"{seed}:{p}".encode()).hexdigest()[:12], 16) / float(16 ** 12)
    out = {p: ("heldout" if h(p) < heldout_frac else "train") for p in pk}
    n_held = sum(v == "heldout" for v in out.values())
    if n_held < min_heldout and len(pk) >= 2:
        for p in sorted(pk, key=h)[: min_heldout - n_held]:
            out[p] = "heldout"
    if all(v == "heldout" for v in out.values()) and len(pk) >= 2:
        out[max(pk, key=h)] = "train"
    return out


# --------------------------------------------------------------------------- build

def build(work: Path, out: Path, max_pkg_bytes=1_500_000, heldout_frac=0.08, seed=0,
          near_threshold=0.85, log=print, sources=None, near_dedup=True):
    """Collect, filter, dedup and split. ``sources`` overrides the collectors (tests)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stats = collections.Counter()
    pkg_info = {}
    docs: list[Doc] = []
    if sources is None:
        sources = [("rust", collect_crates(work, log)), ("python", collect_pypi(work, log))]
    for lang, it in sources:
        for pkg, ver, lic, files in it:
            key = f"{lang}:{pkg}"
            info = pkg_info.setdefault(key, dict(lang=lang, package=pkg, version=ver, license=lic,
                                                 files=0, bytes=0, kept=False, reason=""))
            if not licence_is_permissive(lic):
                info["reason"] = "licence"
                stats["pkg_dropped_licence"] += 1
                continue
            kept_bytes = 0
            rng.shuffle(files)  # cap per package without always taking the same directory
            for path, text in sorted(files, key=lambda x: x[0]) if max_pkg_bytes is None else files:
                text = text.replace("\r\n", "\n")
                r = skip_reason(path, text)
                if r:
                    stats["file_dropped_" + r] += 1
                    continue
                if max_pkg_bytes and kept_bytes + len(text) > max_pkg_bytes:
                    stats["file_dropped_pkg_cap"] += 1
                    continue
                kept_bytes += len(text)
                docs.append(Doc(text, lang, pkg, ver, lic, path))
            info["kept"] = True
    log(f"collected {len(docs)} files")
    # exact dedup
    seen = set()
    uniq = []
    for d in docs:
        k = exact_key(d.text)
        if k in seen:
            stats["file_dropped_exact_dup"] += 1
            continue
        seen.add(k)
        uniq.append(d)
    # near dedup
    if near_dedup:
        keep = near_dup_filter([d.text for d in uniq], threshold=near_threshold, hasher=MinHasher(num_perm=64))
    else:
        keep = [True] * len(uniq)
    stats["file_dropped_near_dup"] += len(uniq) - sum(keep)
    docs = [d for d, k in zip(uniq, keep) if k]
    log(f"after dedup {len(docs)} files")

    split = split_by_package([f"{d.lang}:{d.package}" for d in docs], heldout_frac=heldout_frac, seed=seed)
    files = {"train": open(out / "train.jsonl", "w"), "heldout": open(out / "heldout.jsonl", "w")}
    for d in sorted(docs, key=lambda d: (d.lang, d.package, d.path)):
        key = f"{d.lang}:{d.package}"
        s = split[key]
        files[s].write(json.dumps(dict(text=d.text, lang=d.lang, package=d.package, version=d.version,
                                       license=d.license, path=d.path)) + "\n")
        info = pkg_info[key]
        info["split"] = s
        info["files"] += 1
        info["bytes"] += len(d.text.encode())
    for f in files.values():
        f.close()
    (out / "packages.json").write_text(json.dumps(pkg_info, indent=1, sort_keys=True))
    (out / "stats.json").write_text(json.dumps(dict(stats), indent=1, sort_keys=True))
    return pkg_info, stats


def write_data_card(out: Path, pkg_info, stats, tokenizer_path=None):
    """Write DATA_CARD.md (token counts with the tokenizer if given, else bytes/3.5)."""
    tok = None
    if tokenizer_path and Path(tokenizer_path).exists():
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(tokenizer_path))
    rows = collections.defaultdict(lambda: collections.Counter())
    lic_count = collections.Counter()
    for split in ("train", "heldout"):
        p = out / f"{split}.jsonl"
        if not p.exists():
            continue
        batch = []
        def flush():
            if tok and batch:
                for enc, (lang, _) in zip(tok.encode_batch([t for _, t in batch]), batch):
                    rows[(split, lang)]["tokens"] += len(enc.ids)
            batch.clear()
        with open(p) as f:
            for line in f:
                d = json.loads(line)
                r = rows[(split, d["lang"])]
                r["files"] += 1
                r["bytes"] += len(d["text"].encode())
                r["chars"] += len(d["text"])
                if tok:
                    batch.append((d["lang"], d["text"]))
                    if len(batch) >= 256:
                        flush()
        flush()
    kept = [v for v in pkg_info.values() if v.get("files")]
    for v in kept:
        lic_count[v["license"]] += 1
    L = ["# Data card: nib code corpus", ""]
    L += ["## Sources", "",
          "- Rust: crates.io, via a throwaway Cargo project listing popular crates as `\"*\"` dependencies",
          "  (its own `CARGO_HOME`; `cargo generate-lockfile` + `cargo fetch`); the newest version of each fetched",
          "  crate (direct and transitive), without `windows*`, `winapi*` and `*-sys` crates.",
          "- Python: PyPI wheels via `pip download --no-deps --only-binary=:all:` (sdist if no wheel); `.py` files.",
          "- Licence from `Cargo.toml` `license` / wheel METADATA (`License-Expression`, classifiers, `License`).",
          "  Kept only if an alternative is entirely permissive (MIT, Apache-2.0, BSD, ISC, Zlib, Unlicense, PSF,",
          "  CC0, BSL-1.0, Unicode, HPND); GPL/LGPL/MPL/EPL/unknown dropped.",
          "- Filters: files > 200 KB or < 64 B, generated markers (`@generated`, `do not edit`, ...), minified/long",
          "  lines (> 1000 chars or mean > 120), data-like (< 25% letters), vendored/test/bench/example/build",
          "  directories, `*_pb2.py`, `test_*.py`; at most 1.5 MB per package (random files).",
          "- Dedup: exact (SHA-256 of whitespace-normalised text), then near-duplicates (MinHash, 64 permutations,",
          "  5-token shingles, LSH 16 bands x 4 rows, Jaccard estimate >= 0.85 drops the later file).",
          "- Held-out split BY PACKAGE (hash of the package name, ~8% of packages); no package is in both.",
          ""]
    L += ["## Sizes", "", "| split | lang | files | MB | tokens |", "|---|---|---|---|---|"]
    for (split, lang), r in sorted(rows.items()):
        t = r["tokens"] if tok else int(r["bytes"] / 3.5)
        L.append(f"| {split} | {lang} | {r['files']} | {r['bytes']/1e6:.1f} | {t/1e6:.2f}M{'' if tok else ' (est.)'} |")
    L += ["", "Tokens counted with the nib tokenizer" if tok else "Tokens estimated as bytes / 3.5", ""]
    L += ["## Packages", ""]
    for lang in ("rust", "python"):
        tr = sorted(v["package"] for v in kept if v["lang"] == lang and v["split"] == "train")
        ho = sorted(v["package"] for v in kept if v["lang"] == lang and v["split"] == "heldout")
        L.append(f"- {lang}: {len(tr)} train packages, {len(ho)} held-out packages: {', '.join(ho)}")
    dropped = sorted(f"{v['package']} ({v['license'] or 'unknown'})" for v in pkg_info.values()
                     if v.get("reason") == "licence")
    L += [f"- dropped for licence ({len(dropped)}): {', '.join(dropped)}", ""]
    L += ["## Licences (kept packages)", "", "| licence | packages |", "|---|---|"]
    for lic, n in lic_count.most_common():
        L.append(f"| {lic} | {n} |")
    L += ["", "## Filter statistics (files)", ""]
    for k, v in sorted(stats.items()):
        L.append(f"- {k}: {v}")
    L += ["", "`packages.json` lists every package with version, licence, split, files and bytes.", ""]
    (out / "DATA_CARD.md").write_text("\n".join(L))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Build nib's code corpus from crates.io and PyPI")
    ap.add_argument("step", choices=["fetch", "build", "card", "all"])
    ap.add_argument("--work", default="/work/nibdata", help="download cache")
    ap.add_argument("--out", default=None, help="corpus folder (default WORK/corpus)")
    ap.add_argument("--crates", default=None, help="file with crate names (default: built-in list)")
    ap.add_argument("--pypi", default=None, help="file with PyPI names (default: built-in list)")
    ap.add_argument("--max-pkg-bytes", type=int, default=1_500_000)
    ap.add_argument("--heldout-frac", type=float, default=0.08)
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json for token counts in the data card")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--site-packages", default=None,
                    help="build from the distributions installed here (Python only) instead of the downloads")
    ap.add_argument("--no-near-dedup", action="store_true", help="exact dedup only (fast, for big local trees)")
    a = ap.parse_args(argv)
    work = Path(a.work)
    out = Path(a.out) if a.out else work / "corpus"
    crates = Path(a.crates).read_text().split() if a.crates else DEFAULT_CRATES
    pypi = Path(a.pypi).read_text().split() if a.pypi else DEFAULT_PYPI
    if a.step in ("fetch", "all"):
        work.mkdir(parents=True, exist_ok=True)
        fetch_crates(work, crates)
        fetch_pypi(work, pypi)
    if a.step in ("build", "all"):
        sources = None
        if a.site_packages:
            sources = [("python", collect_site_packages(Path(a.site_packages)))]
        info, stats = build(work, out, a.max_pkg_bytes, a.heldout_frac, a.seed, sources=sources,
                            near_dedup=not a.no_near_dedup)
        write_data_card(out, info, stats, a.tokenizer)
    if a.step == "card":
        info = json.loads((out / "packages.json").read_text())
        stats = collections.Counter(json.loads((out / "stats.json").read_text()))
        write_data_card(out, info, stats, a.tokenizer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
