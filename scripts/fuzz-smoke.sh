#!/usr/bin/env bash
# Fuzz smoke for CI: builds every cargo-fuzz target in fuzz/ and runs each for
# a few seconds from its small seed corpus. Installs cargo-fuzz from crates.io when it is
# missing. libFuzzer needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Crashes fail the script (libFuzzer exits non-zero) and leave the
# input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz-smoke.sh              every target, FUZZ_SECONDS (default 5) each
#   FUZZ_SECONDS=600 FUZZ_RUNS=10000000 scripts/fuzz-smoke.sh jwt_claims   a long run
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-5}"
runs="${FUZZ_RUNS:--1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build -O

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # New inputs go to corpus/ (ignored by git); seeds/ is the small corpus kept in the repo.
  out=$(cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -runs="$runs" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 2>&1) || {
    printf '%s\n' "$out" | tail -40
    echo "fuzz target $t FAILED"
    exit 1
  }
  execs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
  echo "fuzz $t: ${execs:-?} executions in ≤${seconds}s, 0 crashes"
done
