#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (on amd64, then
# for arm64 under qemu: scripts/test-arm64.sh), then the
# end-to-end suite with real clients (needs root: it edits /etc/hosts and binds :443) and
# the installed binary under hostile NSS configurations (tests/nss/run.sh).
# Then a fleet smoke (scripts/fleet.sh --smoke: a few machines at once under a rate limit),
# supply-chain checks (cargo deny), a few seconds of each fuzz target, and the packages:
# scripts/package.sh all (.deb, reproducible release archive built twice, scratch image,
# each for amd64 and arm64) and scripts/package-check.sh (installs the .debs, as root, and
# runs every artifact, the arm64 ones under qemu).
# Then the Windows and macOS checks (scripts/cross-check.sh --short --zip dist: the
# Windows .exe built with Debian's toolchain, run under wine and zipped into dist/, the
# macOS type-check).
# E2E=0, FLEET=0, DENY=0, FUZZ=0, PACKAGE=0 and CROSS=0 skip those parts (they install
# cargo-deny, cargo-fuzz, cargo-deb and the Debian cross toolchains once); ARM64=0 skips
# everything arm64 (the tests under qemu and the arm64 packages).
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
if [ "${ARM64:-1}" != 0 ]; then
  echo "== cargo test for arm64 under qemu"
  scripts/test-arm64.sh
fi
if [ "${E2E:-1}" != 0 ]; then
  echo "== end-to-end suite"
  cargo build --release --locked
  ACR_ENTRA_BIN="$PWD/target/release/docker-credential-acr-entra" bash tests/e2e/run.sh
  echo "== installed binary under hostile NSS configurations"
  bash tests/nss/run.sh
fi
if [ "${FLEET:-1}" != 0 ]; then
  echo "== fleet smoke"
  scripts/fleet.sh --smoke
fi
if [ "${DENY:-1}" != 0 ]; then
  echo "== cargo deny"
  scripts/deny.sh
fi
if [ "${FUZZ:-1}" != 0 ]; then
  echo "== fuzz smoke"
  FUZZ_SECONDS="${FUZZ_SECONDS:-5}" scripts/fuzz-smoke.sh
fi
if [ "${PACKAGE:-1}" != 0 ]; then
  echo "== packages: build (.deb, release archive twice, image) and check"
  scripts/package.sh all
  scripts/package-check.sh all
fi
if [ "${CROSS:-1}" != 0 ]; then
  echo "== Windows (built, run under wine) and macOS (type-checked)"
  # The zip goes beside the Linux artifacts, in the same SHA256SUMS.
  scripts/cross-check.sh --short --zip dist
fi
