#!/usr/bin/env bash
# Builds llama.cpp's own server (llama-server), the second real inference
# server of tests/remote.rs, from the llama.cpp sources that PyPI's
# llama-cpp-python sdist carries (the version scripts/python-env.sh installs).
# Built once (about 15 minutes on two cores) into nib's cache folder and
# reused; prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.36
prefix=${XDG_CACHE_HOME:-$HOME/.cache}/nib/llama-server-$version
bin=$prefix/llama-server
if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi
command -v cmake >/dev/null || { echo "cmake is missing (apt-get install cmake)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "building llama-server from llama-cpp-python $version's llama.cpp (once; about 15 minutes)" >&2
.venv/bin/python -m pip download --quiet --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version"
tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
src=$work/llama_cpp_python-$version/vendor/llama.cpp
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >&2
cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$prefix"
cp "$work/build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
