#!/usr/bin/env bash
# Installs the ONNX Runtime shared library nib loads at run time, from the
# PyPI wheels, into nib's per-user folder (~/.local/share/nib/onnxruntime on
# Linux, or $NIB_ORT_DIR). Nothing else on the system changes.
#
#   scripts/install-onnxruntime.sh          # CPU build (onnxruntime)
#   scripts/install-onnxruntime.sh --gpu    # CUDA 13 build (onnxruntime-gpu) and its NVIDIA libraries
set -euo pipefail

cpu_version=1.32.0
gpu_version=1.31.1
package=onnxruntime
version=$cpu_version
if [[ "${1:-}" == "--gpu" ]]; then
  package=onnxruntime-gpu
  version=$gpu_version
fi

dest=${NIB_ORT_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/nib/onnxruntime}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "nib: downloading $package $version from PyPI" >&2
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$package==$version"
mkdir -p "$dest"
"$python" - "$work" "$dest" <<'PY'
import pathlib, sys, zipfile
work, dest = map(pathlib.Path, sys.argv[1:])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    # The library and its licence terms (ONNX Runtime's MIT licence and the
    # notices of what it bundles), which go wherever the library goes.
    names = [n for n in z.namelist() if "/capi/libonnxruntime" in n
             or n.endswith(("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"))]
    for name in names:
        target = dest / name.rsplit("/", 1)[-1]
        target.write_bytes(z.read(name))
        print(f"nib: installed {target}", file=sys.stderr)
PY

if [[ "$package" == onnxruntime-gpu ]]; then
  # The CUDA provider loads cuBLAS, cuDNN and the CUDA runtime at run time;
  # these wheels carry them. nib reads NIB_CUDA_LIBS or finds them through
  # the Python environment's nvidia/ folders.
  echo "nib: installing the NVIDIA CUDA 13 libraries (about 1.3 GB)" >&2
  "$python" -m pip install --quiet "onnxruntime-gpu[cuda,cudnn]==$gpu_version"
fi
echo "nib: ONNX Runtime is in $dest" >&2
