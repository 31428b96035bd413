#!/usr/bin/env bash
# Makes nib's release bundle: a tarball that runs on x86_64 Linux with no
# Rust, Python or network (the binary, the ONNX Runtime library beside it,
# the default model, the licences, an install script), its checksum, and
# with --vsix the platform VS Code extension that carries the same files.
#
#   scripts/release.sh                 # dist/nib-<version>-x86_64-linux.tar.gz
#   scripts/release.sh --vsix          # and dist/nib-<version>-linux-x64.vsix
#   scripts/release.sh --out DIR       # somewhere else
#
# The bundle's tree is an installation prefix, so it runs where it is
# unpacked (bin/nib finds ../lib/nib and ../share/nib) and install.sh only
# copies it under ~/.local:
#
#   bin/nib                              the binary (no model embedded)
#   lib/nib/libonnxruntime.so.*          ONNX Runtime (CPU build), from PyPI
#   share/nib/models/default/            nib's default model
#   share/doc/nib/                       README, licences, ONNX Runtime's notices
#   install.sh, README.md                at the top
#
# Needs what a source build needs (cargo, a C linker, python3 with pip for
# the ONNX Runtime wheel); --vsix also needs editors/vscode's npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/dist
vsix=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    --vsix) vsix=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(uname -sm) == "Linux x86_64" ]] || { echo "release.sh: builds x86_64 Linux bundles only" >&2; exit 2; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
name=nib-$version-x86_64-linux
stage=$out/$name
say() { echo "release: $*" >&2; }

say "building nib $version (profile dist, no embedded model)"
# An empty NIB_EMBED_MODEL_DIR embeds nothing: the model ships as files.
NIB_EMBED_MODEL_DIR= cargo build --profile dist --locked --bin nib >&2

rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib/nib" "$stage/share/nib/models" "$stage/share/doc/nib/onnxruntime"
cp target/dist/nib "$stage/bin/nib"
say "ONNX Runtime (CPU build) from PyPI"
NIB_ORT_DIR=$stage/lib/nib PYTHON=${PYTHON:-python3} scripts/install-onnxruntime.sh
mv "$stage/lib/nib/LICENSE" "$stage/lib/nib/ThirdPartyNotices.txt" "$stage/share/doc/nib/onnxruntime/"
cp -r models/default "$stage/share/nib/models/default"
cp README.md LICENSE-MIT LICENSE-APACHE "$stage/share/doc/nib/"
cp scripts/install.sh "$stage/install.sh"
cat > "$stage/README.md" <<TXT
# nib $version for x86_64 Linux

    ./install.sh              # into ~/.local (bin/nib, lib/nib, share/nib); --prefix DIR for elsewhere
    nib doctor                # the library, the device and the model nib found
    nib complete FILE:LINE:COL

Or run bin/nib from this folder without installing. Nothing here needs
Rust, Python or a network connection. ./install.sh --uninstall removes it.
The full documentation is share/doc/nib/README.md; the licences are in
share/doc/nib (nib: MIT OR Apache-2.0; ONNX Runtime: MIT, with the notices
of what it bundles).
TXT
chmod 755 "$stage/install.sh" "$stage/bin/nib"
"$stage/bin/nib" --version > /dev/null || { echo "release.sh: the staged binary does not run" >&2; exit 1; }

say "packing $name.tar.gz"
# Sorted names, fixed owner and times: the same inputs give the same tarball.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$out" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")

if [[ $vsix -eq 1 ]]; then
  say "packing the linux-x64 .vsix with the bundle as its server"
  ext=$root/editors/vscode
  rm -rf "$ext/server" && mkdir -p "$ext/server"
  cp -r "$stage/bin" "$stage/lib" "$stage/share" "$ext/server/"
  trap 'rm -rf "$ext/server"' EXIT
  if [[ ! -x $ext/node_modules/.bin/vsce ]]; then
    (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  (cd "$ext" && npm run --silent build >&2 && npm run --silent license >&2 \
      && npx --no-install vsce package --no-dependencies --target linux-x64 \
        --baseImagesUrl https://github.com/nib-dev/nib/raw/HEAD/editors/vscode \
        --out "$out/nib-$version-linux-x64.vsix" >&2)
fi
ls -1 "$out"/*.tar.gz "$out"/*.vsix 2>/dev/null || true
