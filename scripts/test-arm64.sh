#!/usr/bin/env bash
# `cargo test` for arm64 Linux (aarch64-unknown-linux-gnu) on this amd64 machine: the unit
# tests and the integration tests, cross-built with Debian's toolchain and run under
# qemu-aarch64-static (scripts/lib/arm64.sh installs both when missing).
#
#   scripts/test-arm64.sh            the unit tests and the integration modules whose
#                                    behaviour rests on the CPU or the kernel's ABI (what
#                                    ./test.sh and CI run; see SUBSET below)
#   scripts/test-arm64.sh --full     every test (about 15 minutes of emulation)
#   scripts/test-arm64.sh -- FILTER  the tests matching FILTER
#
# The subset: the wire format (protocol), the cache's files, locks and concurrent
# processes (cache, cache_policy, concurrency, entra_sharing, store, durability), the
# checked directory's openat/fstat/ownership calls whose structures differ by
# architecture (trust_dirs), the crypto of every credential kind (credentials, ring's
# arm64 assembly), the exchange and token lifetimes (integer widths). Left out: modules
# of pure logic the amd64 run already covers byte for byte (host names, config, doctor
# and configure text, completions, docs, redaction, CI variables) and the throttling
# timings.
#
# Bounds that tell a wait from a hang are scaled (ACR_ENTRA_TEST_TIME_SCALE=8): emulation
# makes each process several times slower, and that must not read as a hang.
#
# The tests run in a private user and mount namespace whose binfmt_misc sends arm64 ELF
# files to qemu (arm64_world), because the integration tests spawn the arm64 helper and
# qemu does not follow execve by itself. Needs root (as CI runs).
#
# Dependencies are built optimised (opt-level 2), the crate itself as `cargo test` builds
# it (debug assertions, overflow checks): under emulation ring's P-256 and RSA and rustls
# in a debug build take about 1.4 s per full mint (0.36 s optimised), which turns the
# concurrency tests' 64 processes into minutes of emulated crypto. Nothing the tests assert
# changes with it.
#
# Builds go to $CARGO_TARGET_DIR/arm64-test (default target/arm64-test): another compiler
# and another target, so nothing is shared with the host's `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/arm64.sh
arm64_toolchain

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/arm64-test
opts=(--locked --target "$ARM64_TARGET"
  --config 'profile.dev.package."*".opt-level=2' --config 'profile.test.package."*".opt-level=2')

t0=$SECONDS
echo "== arm64: cargo test --no-run --target $ARM64_TARGET (Debian's $(/usr/bin/rustc --version))" >&2
arm64_cargo test --no-run "${opts[@]}" 2>&1 | grep -v '^  Executable' >&2 || { echo "test-arm64.sh: the arm64 build failed" >&2; exit 1; }
t1=$SECONDS
echo "   built in $((t1 - t0)) s" >&2
echo "== arm64: cargo test under qemu-aarch64-static" >&2
SUBSET=(protocol:: cache:: cache_policy:: concurrency:: entra_sharing:: store:: durability::
  trust_dirs:: credentials:: exchange:: lifetimes::)
export ACR_ENTRA_TEST_TIME_SCALE=${ACR_ENTRA_TEST_TIME_SCALE:-8}
mode=subset
case "${1:-}" in
  --full) mode=full; shift ;;
  --) mode=filter; shift ;;
  "") ;;
  *) echo "test-arm64.sh: unknown argument $1 (--full, or -- FILTER)" >&2; exit 2 ;;
esac
case $mode in
  subset)
    arm64_world "${ARM64_CARGO[@]}" test "${opts[@]}" --lib
    arm64_world "${ARM64_CARGO[@]}" test "${opts[@]}" --test integration -- "${SUBSET[@]}" ;;
  full) arm64_world "${ARM64_CARGO[@]}" test "${opts[@]}" ;;
  filter) arm64_world "${ARM64_CARGO[@]}" test "${opts[@]}" -- "$@" ;;
esac
echo "   arm64 tests ran in $((SECONDS - t1)) s (build $((t1 - t0)) s)" >&2
