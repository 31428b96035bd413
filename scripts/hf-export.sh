#!/usr/bin/env bash
# Exports a Hugging Face causal language model to a folder nib loads, with
# the pinned exporter set of models/requirements.txt (optimum-onnx,
# transformers, torch, accelerate) in a virtual environment of its own.
#
#   scripts/hf-export.sh Qwen/Qwen2.5-Coder-0.5B ~/models/qwen-coder-0.5b
#   scripts/hf-export.sh ./my-local-checkpoint out/
#
# The first run creates the environment (NIB_EXPORT_VENV, default
# ~/.cache/nib/hf-export) and downloads about 3.5 GB: torch from PyPI comes
# with NVIDIA's CUDA libraries. With PyTorch's own index reachable,
# NIB_TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the 200 MB CPU
# build instead. accelerate is in the set because without it transformers
# loads tied embeddings as two tensors and the export stores them twice.
# The model itself downloads from the Hub unless MODEL is a local folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -eq 2 ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
model=$1
out=$2
# A local checkpoint by absolute path: the exporter runs in / (Python puts
# the working folder first on its import path; a checkout could shadow a module).
[[ -d $model ]] && model=$(cd "$model" && pwd)
mkdir -p "$out" && out=$(cd "$out" && pwd)
venv=${NIB_EXPORT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nib/hf-export}

if [[ ! -x $venv/bin/optimum-cli ]]; then
  echo "nib: creating $venv with the pinned exporter set (a large download, once)" >&2
  python3 -m venv "$venv"
  if [[ -n ${NIB_TORCH_INDEX:-} ]]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check --index-url "$NIB_TORCH_INDEX" \
      "$(grep '^torch==' "$root/models/requirements.txt")"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/models/requirements.txt"
fi

echo "nib: exporting $model to $out" >&2
(cd / && "$venv/bin/optimum-cli" export onnx --model "$model" --task text-generation-with-past "$out" >&2)
nib=${NIB_BIN:-$(command -v nib || true)}
if [[ -n $nib ]]; then
  "$nib" doctor --model "$out"
else
  echo "nib: exported; check it with: nib doctor --model $out" >&2
fi
