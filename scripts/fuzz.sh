#!/usr/bin/env bash
# Fuzzes what untrusted input reaches (fuzz/fuzz_targets/), with cargo-fuzz
# and libFuzzer: each target for SECONDS (default 600) on one core, growing
# its corpus in fuzz/corpus/TARGET (committed); crashes and hangs (an input
# over 10 s) land in fuzz/artifacts/TARGET and fail the script.
#
#   scripts/fuzz.sh                  # every target, 10 minutes each
#   scripts/fuzz.sh transport 60     # one target, one minute
#
# A crash found is fixed and its input kept as a regression test (see
# RELIABILITY.md). libFuzzer needs nightly compiler flags: the nightly
# toolchain when rustup has one, else the stable one with RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2> /dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
targets=${1:-$(cargo "${toolchain[@]}" fuzz list)}
seconds=${2:-600}
mkdir -p ../target/fuzz
status=0
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s" >&2
  if ! cargo "${toolchain[@]}" fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 > "../target/fuzz/$t.log" 2>&1; then
    echo "$t: FAILED (see target/fuzz/$t.log and fuzz/artifacts/$t)" >&2
    status=1
  fi
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "../target/fuzz/$t.log" | tail -3 >&2 || true
  echo "$t: corpus of $(ls "corpus/$t" | wc -l) inputs" >&2
done
exit $status
