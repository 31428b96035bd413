#!/usr/bin/env bash
# Tests the release bundle as a user meets it: scripts/release.sh makes the
# tarball and the platform .vsix, then the tarball is unpacked and installed
# into an empty HOME and used with nothing but the bundle: no Rust, no
# Python, no PATH beyond it, no network. Also checks that the crate
# `cargo package` makes fits crates.io (the model stays out of it).
# Leaves the bundle in target/release-test for editors/run-tests.sh (the
# .vsix test in code-server). Prints "ok"/"not ok" lines and a summary.
#
#   scripts/test-release.sh               # builds the bundle, then tests it
#   scripts/test-release.sh --bundle DIR  # tests the files already in DIR (a release's dist/)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/release-test
build=1
if [[ ${1:-} == --bundle ]]; then
  out=$(cd "${2:?--bundle needs a folder}" && pwd)
  build=0
fi
passed=0
failed=0
ok() { echo "ok release: $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok release: $1"; failed=$((failed + 1)); }
check() { # name, command...
  local name=$1; shift
  if "$@" > "$work/last.log" 2>&1; then ok "$name"; else not_ok "$name: $(tail -n 5 "$work/last.log" | tr '\n' ' ')"; fi
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ $build -eq 1 ]] && ! { rm -rf "$out" && scripts/release.sh --vsix --out "$out"; } > "$work/release.log" 2>&1; then
  tail -n 30 "$work/release.log"
  echo "not ok release: scripts/release.sh failed"
  echo "0 passed, 1 failed"
  exit 1
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tarball=$out/nib-$version-x86_64-linux.tar.gz
[[ -f $tarball ]] || { echo "not ok release: no $tarball"; echo "0 passed, 1 failed"; exit 1; }
ok "the bundle $(basename "$tarball") is there ($(du -h "$tarball" | cut -f1))"

check "the checksum file matches" bash -c "cd '$out' && sha256sum -c '$(basename "$tarball").sha256'"
listing() {
  tar -tzf "$tarball" | sed "s#^nib-$version-x86_64-linux/##" | sort
}
has_all() {
  local files
  files=$(listing)
  for f in bin/nib install.sh README.md share/doc/nib/LICENSE-MIT share/doc/nib/LICENSE-APACHE \
    share/doc/nib/onnxruntime/LICENSE share/doc/nib/onnxruntime/ThirdPartyNotices.txt \
    share/nib/models/default/model.onnx share/nib/models/default/tokenizer.json share/nib/models/default/config.json; do
    grep -qx "$f" <<< "$files" || { echo "missing $f"; return 1; }
  done
  grep -q '^lib/nib/libonnxruntime.so' <<< "$files" || { echo "missing lib/nib/libonnxruntime.so*"; return 1; }
}
check "the tarball holds the binary, ONNX Runtime, the model, the licences and install.sh" has_all

# A user with an empty HOME and a PATH without cargo, rustc or python3.
home=$work/home
mkdir -p "$home" "$work/unpack"
tar -xzf "$tarball" -C "$work/unpack"
bundle=$work/unpack/nib-$version-x86_64-linux
bare() { env -i HOME="$home" PATH="$home/.local/bin" "$@"; }
check "install.sh installs into ~/.local of an empty HOME" env -i HOME="$home" PATH=/usr/bin:/bin sh "$bundle/install.sh"
check "the installed files are where nib looks" test -x "$home/.local/bin/nib" -a -d "$home/.local/lib/nib" -a -f "$home/.local/share/nib/models/default/model.onnx"
doctor_ok() {
  local json
  json=$(bare nib doctor --format json) || { echo "$json"; return 1; }
  echo "$json"
  grep -q "\"library\": \"$home/.local/lib/nib/libonnxruntime.so" <<< "$json" || { echo "ONNX Runtime not from the bundle"; return 1; }
  grep -q "\"path\": \"$home/.local/share/nib/models/default/" <<< "$json" || { echo "the model not from the bundle"; return 1; }
}
check "nib doctor finds the bundled ONNX Runtime and model, with no Rust or Python on PATH" doctor_ok
complete_ok() {
  local text
  text=$(cd "$work" && cp "$root/examples/fibonacci.py" . && bare nib complete --format json fibonacci.py:5:31) || return 1
  echo "$text"
  grep -q '"version":1' <<< "$text"
}
check "nib complete answers from the installed bundle" complete_ok
check "nib check runs from the installed bundle" bash -c "cd '$work' && env -i HOME='$home' PATH='$home/.local/bin' nib check --exit-zero --format json fibonacci.py"
in_place_ok() {
  local text
  text=$(env -i HOME="$work/other-home" PATH=/nonexistent "$bundle/bin/nib" doctor --format json) || { echo "$text"; return 1; }
  echo "$text"
  grep -q "\"library\": \"$bundle/lib/nib/" <<< "$text" && grep -q "\"path\": \"$bundle/share/nib/models/default/" <<< "$text"
}
check "the unpacked bundle runs in place, with its own library and model" in_place_ok
check "install.sh again upgrades in place" env -i HOME="$home" PATH=/usr/bin:/bin sh "$bundle/install.sh"
check "install.sh --uninstall removes it" bash -c "env -i HOME='$home' PATH=/usr/bin:/bin sh '$bundle/install.sh' --uninstall && test ! -e '$home/.local/bin/nib' -a ! -e '$home/.local/lib/nib' -a ! -e '$home/.local/share/nib'"

action_ok() {
  local runner=$work/runner
  mkdir -p "$runner"
  : > "$runner/path"
  local nib_bin
  nib_bin=$(env -i HOME="$work/ci-home" PATH=/usr/bin:/bin RUNNER_TEMP="$runner" GITHUB_PATH="$runner/path" \
    NIB_VERSION="$version" NIB_RELEASE_URL="file://$out" "$root/scripts/action-install.sh") || return 1
  [ "$(cat "$runner/path")" = "$runner/nib/bin" ] || { echo "GITHUB_PATH holds $(cat "$runner/path")"; return 1; }
  env -i HOME="$work/ci-home" PATH="$runner/nib/bin" "$nib_bin" check --exit-zero --format sarif "$root/examples/fibonacci.py" > "$work/ci.sarif" || return 1
  grep -q '"version": "2.1.0"' "$work/ci.sarif"
  # A tampered download is refused.
  cp "$tarball" "$work/tampered.tar.gz" && printf 'x' >> "$work/tampered.tar.gz"
  mkdir -p "$work/mirror" && cp "$work/tampered.tar.gz" "$work/mirror/$(basename "$tarball")" && cp "$tarball.sha256" "$work/mirror/"
  if env -i HOME="$work/ci-home" PATH=/usr/bin:/bin RUNNER_TEMP="$runner" NIB_VERSION="$version" \
      NIB_RELEASE_URL="file://$work/mirror" "$root/scripts/action-install.sh" > /dev/null 2>&1; then
    echo "a download that fails its checksum was installed"; return 1
  fi
}
check "the GitHub Action's install step installs a release (checksum checked) and nib check runs" action_ok

vsix=$out/nib-$version-linux-x64.vsix
vsix_ok() {
  python3 - "$vsix" <<'PY'
import stat, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = set(z.namelist())
for need in ["extension/server/bin/nib", "extension/server/share/nib/models/default/model.onnx",
             "extension/package.json", "extension/LICENSE.txt", "extension/changelog.md", "extension/images/icon.png"]:
    assert need in names, f"missing {need}"
assert any(n.startswith("extension/server/lib/nib/libonnxruntime.so") for n in names), "no ONNX Runtime"
mode = z.getinfo("extension/server/bin/nib").external_attr >> 16
assert mode & stat.S_IXUSR, f"bin/nib is not executable in the .vsix (mode {oct(mode)})"
assert '"targetPlatform":"linux-x64"' in z.read("extension.vsixmanifest").decode().replace(" ", "") or 'TargetPlatform="linux-x64"' in z.read("extension.vsixmanifest").decode()
PY
}
check "the linux-x64 .vsix carries the bundle's server, model and library" vsix_ok

crate_ok() {
  local dir=$work/package
  cargo package --no-verify --allow-dirty --locked --target-dir "$dir" > "$work/package.log" 2>&1 || { cat "$work/package.log"; return 1; }
  local crate size
  crate=$(ls "$dir"/package/nib-"$version".crate)
  size=$(stat -c %s "$crate")
  echo "crate: $size bytes"
  [ "$size" -lt 10000000 ] || { echo "$crate is $size bytes, over crates.io's 10 MB"; return 1; }
  local files
  files=$(tar -tzf "$crate")
  grep -q '/models/' <<< "$files" && { echo "the crate holds a model"; return 1; }
  grep -qx "nib-$version/src/lib.rs" <<< "$files"
}
check "cargo package makes a crate under crates.io's 10 MB, without the model" crate_ok

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
