#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (ONNX Runtime from PyPI, a Python environment for the model pipeline and the
# pytest-lsp client, the real editors), then runs every suite and prints one
# closing line `N passed, N failed` over all of them. CI runs exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log_dir=${NIB_TEST_LOGS:-$root/target/test-logs}
mkdir -p "$log_dir"
passed=0
failed=0
skipped=0
failed_suites=()

step() { printf '\n==> %s\n' "$*" >&2; }

# Adds a suite's counts, read from its own closing lines.
count() {
  local name=$1 log=$2 status=$3 p f s
  case $name in
    cargo*) p=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
            f=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
            s=$(grep -Eo '[0-9]+ ignored' "$log" | awk '{s+=$1} END {print s+0}') ;;
    *)      p=$(grep -Eo '[0-9]+ passed' "$log" | tail -n 1 | awk '{print $1+0}')
            f=$(grep -Eo '[0-9]+ failed' "$log" | tail -n 1 | awk '{print $1+0}')
            s=$(grep -Eo '[0-9]+ skipped' "$log" | tail -n 1 | awk '{print $1+0}') ;;
  esac
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  # A suite that failed without reporting a failed test (a build error) counts as one failure.
  if [[ $status -ne 0 && $f -eq 0 ]]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [[ $status -ne 0 ]] && failed_suites+=("$name")
  printf '%s: %s passed, %s failed, %s skipped\n' "$name" "$p" "$f" "$s" >&2
}

suite() {
  local name=$1; shift
  step "$name: $*"
  local log="$log_dir/$name.log"
  "$@" 2>&1 | tee "$log"
  count "$name" "$log" "${PIPESTATUS[0]}"
}

# Debian packages first: a fresh Debian has python3 without venv/ensurepip
# (python3-venv), and pip refuses to install into the system Python.
step "system packages"
need_apt=()
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# tests/security.rs traces nib's system calls (no socket, nothing opened from the workspace).
[[ -x /usr/bin/strace ]] || need_apt+=(strace)
# scripts/llama-server.sh builds llama.cpp's server for tests/remote.rs.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages (install them as root): ${need_apt[*]}" >&2; exit 2
  fi
  echo "apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; } >&2 \
    || { echo "cannot install ${need_apt[*]}" >&2; exit 2; }
fi

step "ONNX Runtime"
ort_dir=${XDG_DATA_HOME:-$HOME/.local/share}/nib/onnxruntime
if ! ls "$ort_dir"/libonnxruntime.so.* >/dev/null 2>&1; then
  scripts/install-onnxruntime.sh || { echo "cannot install ONNX Runtime" >&2; exit 2; }
fi

step "Python environment (.venv)"
scripts/python-env.sh || { echo "cannot set up the Python environment" >&2; exit 2; }

step "llama.cpp's server"
NIB_LLAMA_SERVER=$(scripts/llama-server.sh) || { echo "cannot build llama-server" >&2; exit 2; }
export NIB_LLAMA_SERVER
export NIB_BIN=$root/target/debug/nib

suite cargo-fmt cargo fmt --all -- --check
suite cargo-clippy cargo clippy --all-targets --locked -- -D warnings
suite cargo-test cargo test --locked --no-fail-fast
for dir in tests/pytest_lsp tests/formats models; do
  if [[ -d $dir ]]; then
    suite "pytest-${dir//\//-}" .venv/bin/python -m pytest -q -p no:cacheprovider "$dir"
  fi
done
# The release bundle installed into an empty HOME (and the .vsix the editors' suite installs).
suite release scripts/test-release.sh
if [[ -x editors/run-tests.sh ]]; then
  suite editors editors/run-tests.sh
fi

echo
if [[ -f $log_dir/editors.log ]]; then
  grep '^skip ' "$log_dir/editors.log" | sed 's/^/skipped: /' || true
fi
if [[ ${#failed_suites[@]} -gt 0 ]]; then
  echo "failed suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 && ${#failed_suites[@]} -eq 0 ]]
