#!/usr/bin/env bash
# Creates .venv with the pinned Python packages of the model pipeline
# (models/requirements.txt) and of the pytest-lsp client tests. Idempotent:
# pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
reqs=()
for r in models/requirements.txt tests/pytest_lsp/requirements.txt tests/formats/requirements.txt; do
  [[ -f $r ]] && reqs+=(-r "$r")
done
.venv/bin/python -m pip install --quiet --upgrade pip
if [[ ${#reqs[@]} -gt 0 ]]; then
  .venv/bin/python -m pip install --quiet "${reqs[@]}"
fi
if [[ -f models/pyproject.toml ]]; then
  .venv/bin/python -m pip install --quiet -e "models[train,test]"
fi
# llama-cpp-python is an sdist only, compiled here (about 10 minutes on two
# cores): built once into a wheel kept in nib's cache folder, which later
# runs install from. Built for this machine's CPU, as users build it.
wheels=${XDG_CACHE_HOME:-$HOME/.cache}/nib/wheels
if ! .venv/bin/python -c 'import llama_cpp.server' >/dev/null 2>&1; then
  if ! ls "$wheels"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python 0.3.36 (once; about 10 minutes)" >&2
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip wheel --quiet --no-deps \
      -w "$wheels" llama-cpp-python==0.3.36
  fi
  .venv/bin/python -m pip install --quiet --find-links "$wheels" \
    -r scripts/llama-cpp-requirements.txt
fi

# The SARIF 2.1.0 schema for tests/formats: the serde-sarif crate ships
# OASIS's schema; taken from crates.io once, and checked by its digest.
schema=${XDG_CACHE_HOME:-$HOME/.cache}/nib/sarif-schema-2.1.0.json
schema_sha256=af47e7b67f24efe74076621fd3a5fbe7398add9e84fe820c971219a385895cea
if ! echo "$schema_sha256  $schema" | sha256sum --check --status 2>/dev/null; then
  tmp=$(mktemp -d)
  curl --fail --silent --show-error --location --retry 3 -o "$tmp/serde-sarif.crate" \
    https://static.crates.io/crates/serde-sarif/serde-sarif-0.8.0.crate
  tar -xzf "$tmp/serde-sarif.crate" -C "$tmp" serde-sarif-0.8.0/src/schema.json
  echo "$schema_sha256  $tmp/serde-sarif-0.8.0/src/schema.json" | sha256sum --check --status \
    || { echo "the SARIF schema from serde-sarif 0.8.0 does not match its digest" >&2; rm -rf "$tmp"; exit 1; }
  mkdir -p "$(dirname "$schema")" && mv "$tmp/serde-sarif-0.8.0/src/schema.json" "$schema"
  rm -rf "$tmp"
fi
