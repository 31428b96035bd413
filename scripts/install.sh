#!/bin/sh
# Installs nib from an unpacked release bundle (scripts/release.sh puts this
# script at the bundle's top) under a prefix, ~/.local by default:
#
#   PREFIX/bin/nib
#   PREFIX/lib/nib/libonnxruntime.so*     (found by nib beside its binary)
#   PREFIX/share/nib/models/default/      (nib's default model)
#   PREFIX/share/doc/nib/                 (README, licences)
#
#   ./install.sh [--prefix DIR]            # install or upgrade (or NIB_PREFIX=DIR)
#   ./install.sh [--prefix DIR] --uninstall
#
# An upgrade replaces PREFIX/share/nib/models/default with the bundle's model.
# Plain POSIX sh and coreutils: no Rust, Python or network.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# NIB_PREFIX, not PREFIX: build environments (conda, Termux) set PREFIX for their own use.
prefix=${NIB_PREFIX:-$HOME/.local}
uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a folder" >&2; exit 2; }; prefix=$2; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ $uninstall -eq 1 ]; then
  rm -f "$prefix/bin/nib"
  rm -rf "$prefix/lib/nib" "$prefix/share/nib/models/default" "$prefix/share/doc/nib"
  rmdir "$prefix/share/nib/models" "$prefix/share/nib" 2>/dev/null || true
  echo "nib: removed from $prefix (the model cache in ~/.cache/nib, if any, stays)"
  exit 0
fi

[ -x "$here/bin/nib" ] || { echo "install.sh: run me from an unpacked nib bundle (no bin/nib beside me)" >&2; exit 2; }
mkdir -p "$prefix/bin" "$prefix/lib" "$prefix/share/nib/models" "$prefix/share/doc"
# Each part is copied beside its destination and then renamed over it, so
# an upgrade under a running nib never leaves a half-written file in place.
replace() { # source, destination
  rm -rf "$2.new"
  cp -R "$1" "$2.new"
  rm -rf "$2.old"
  if [ -e "$2" ]; then mv "$2" "$2.old"; fi
  mv "$2.new" "$2"
  rm -rf "$2.old"
}
replace "$here/lib/nib" "$prefix/lib/nib"
replace "$here/share/nib/models/default" "$prefix/share/nib/models/default"
replace "$here/share/doc/nib" "$prefix/share/doc/nib"
replace "$here/bin/nib" "$prefix/bin/nib"
echo "nib: installed $("$prefix/bin/nib" --version) in $prefix"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "nib: $prefix/bin is not on your PATH; add it (export PATH=\"$prefix/bin:\$PATH\")" ;;
esac
