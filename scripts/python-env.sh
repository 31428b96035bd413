#!/usr/bin/env bash
# Creates .venv with the pinned Python packages of the model pipeline
# (models/requirements.txt) and of the pytest-lsp client tests. Idempotent:
# pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
reqs=()
for r in models/requirements.txt tests/pytest_lsp/requirements.txt; do
  [[ -f $r ]] && reqs+=(-r "$r")
done
.venv/bin/python -m pip install --quiet --upgrade pip
if [[ ${#reqs[@]} -gt 0 ]]; then
  .venv/bin/python -m pip install --quiet "${reqs[@]}"
fi
if [[ -f models/pyproject.toml ]]; then
  .venv/bin/python -m pip install --quiet -e "models[train,test]"
fi
