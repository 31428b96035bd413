#!/usr/bin/env bash
# Installs a nib release bundle for a CI job (action.yml runs it): downloads
# the tarball and its checksum, verifies it, installs it under
# $RUNNER_TEMP/nib and puts its bin/ on $GITHUB_PATH.
#
#   NIB_VERSION=0.1.0 scripts/action-install.sh
#
# NIB_RELEASE_URL overrides where the files are (a mirror, or file:///dir).
set -euo pipefail
version=${NIB_VERSION:?set NIB_VERSION}
[[ $(uname -sm) == "Linux x86_64" ]] \
  || { echo "nib: release bundles are for x86_64 Linux; this runner is $(uname -sm)" >&2; exit 2; }
base=${NIB_RELEASE_URL:-https://github.com/nib-dev/nib/releases/download/v$version}
name=nib-$version-x86_64-linux
tmp=${RUNNER_TEMP:-$(mktemp -d)}
work=$(mktemp -d "$tmp/nib-download.XXXXXX")
trap 'rm -rf "$work"' EXIT

fetch() { # url, file
  case $1 in
    file://*) cp "${1#file://}" "$2" ;;
    *) curl --fail --silent --show-error --location --retry 3 --output "$2" "$1" ;;
  esac
}
fetch "$base/$name.tar.gz" "$work/$name.tar.gz"
fetch "$base/$name.tar.gz.sha256" "$work/$name.tar.gz.sha256"
(cd "$work" && sha256sum --check --quiet "$name.tar.gz.sha256") \
  || { echo "nib: the download does not match its checksum" >&2; exit 1; }
tar -xzf "$work/$name.tar.gz" -C "$work"
prefix=$tmp/nib
sh "$work/$name/install.sh" --prefix "$prefix" >&2
if [[ -n ${GITHUB_PATH:-} ]]; then
  echo "$prefix/bin" >> "$GITHUB_PATH"
fi
echo "$prefix/bin/nib"
