#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, then the
# end-to-end suite with real clients (needs root: it edits /etc/hosts and binds :443).
# E2E=0 skips the end-to-end part; FUZZ_SMOKE=1 also runs each fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
if [ "${E2E:-1}" != 0 ]; then
  echo "== end-to-end suite"
  cargo build --release --locked
  ACR_ENTRA_BIN="$PWD/target/release/docker-credential-acr-entra" bash tests/e2e/run.sh
fi
