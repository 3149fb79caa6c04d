#!/usr/bin/env bash
# The test suite for arm64 Linux (aarch64-unknown-linux-gnu) on this amd64 machine, built
# with Debian's toolchain and run under qemu-aarch64-static (scripts/lib/arm64.sh installs
# both when missing):
#
#   - the unit tests, cross-built and run emulated;
#   - every integration test, with the helper they run being the arm64 build: the test
#     harness and its loopback fakes are the host's own `cargo test` binary (it only
#     spawns the helper, through ACR_ENTRA_TEST_BIN), and each helper process it starts
#     is emulated.
#
#   scripts/test-arm64.sh              both (what ./test.sh and CI run)
#   scripts/test-arm64.sh -- FILTER    the integration tests matching FILTER
#
# Why the harness is not emulated too: qemu-user emulates a multithreaded program's fork
# poorly, and the harness forks helpers from many threads at once. A child forked while
# another thread held one of qemu's locks now and then never reaches exec, sleeps in a
# futex, and keeps the write ends of other children's stdin pipes open, so those helpers
# wait for their stdin forever. The helper itself is single-threaded where it spawns
# (az, azd), and what is under test is the helper, not the harness.
#
# Bounds that tell a bounded wait from a hang are scaled (ACR_ENTRA_TEST_TIME_SCALE=8):
# emulation makes each helper process several times slower, and that must not read as a
# hang. Lower bounds and counts are never scaled.
#
# The helpers run in a private user and mount namespace whose binfmt_misc sends arm64 ELF
# files to qemu (arm64_world), because qemu does not follow execve by itself. Needs root
# (as CI runs).
#
# Dependencies are built optimised (opt-level 2), the crate itself as `cargo test` builds
# it (debug assertions, overflow checks): under emulation ring's P-256 and RSA and rustls
# in a debug build take about 1.4 s per full mint (0.36 s optimised), which turns the
# concurrency tests' 64 processes into minutes of emulated crypto. Nothing the tests assert
# changes with it.
#
# The arm64 builds go to $CARGO_TARGET_DIR/arm64-test (default target/arm64-test): another
# compiler and another target, so nothing is shared with the host's `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=()
case "${1:-}" in
  --) shift; filter=(-- "$@") ;;
  "") ;;
  *) echo "test-arm64.sh: unknown argument $1 (or -- FILTER)" >&2; exit 2 ;;
esac
. scripts/lib/arm64.sh
arm64_toolchain

host_target=${CARGO_TARGET_DIR:-$PWD/target}
arm64_dir=$host_target/arm64-test
opts=(--locked --target "$ARM64_TARGET"
  --config 'profile.dev.package."*".opt-level=2' --config 'profile.test.package."*".opt-level=2')

t0=$SECONDS
echo "== arm64: the helper and its unit tests (Debian's $(/usr/bin/rustc --version))" >&2
CARGO_TARGET_DIR=$arm64_dir arm64_cargo test --no-run --lib "${opts[@]}" 2>&1 \
  | grep -v '^  Executable' >&2 || { echo "test-arm64.sh: the arm64 build failed" >&2; exit 1; }
CARGO_TARGET_DIR=$arm64_dir arm64_cargo build --bin docker-credential-acr-entra "${opts[@]}" >&2 \
  || { echo "test-arm64.sh: the arm64 build failed" >&2; exit 1; }
helper=$arm64_dir/$ARM64_TARGET/debug/docker-credential-acr-entra
readelf -h "$helper" | grep -q 'AArch64' || { echo "test-arm64.sh: $helper is not an arm64 program" >&2; exit 1; }
echo "== the host's integration test binary" >&2
cargo test --locked --test integration --no-run 2>&1 | grep -v '^  Executable' >&2
t1=$SECONDS
echo "   built in $((t1 - t0)) s" >&2

export ACR_ENTRA_TEST_TIME_SCALE=${ACR_ENTRA_TEST_TIME_SCALE:-8}
if [ "${#filter[@]}" = 0 ]; then
  echo "== arm64: unit tests under qemu-aarch64-static" >&2
  CARGO_TARGET_DIR=$arm64_dir arm64_world "${ARM64_CARGO[@]}" test "${opts[@]}" --lib
fi
echo "== arm64: integration tests, every helper process under qemu-aarch64-static" >&2
arm64_world env ACR_ENTRA_TEST_BIN="$helper" cargo test --locked --test integration "${filter[@]}"
echo "   arm64 tests ran in $((SECONDS - t1)) s (build $((t1 - t0)) s)" >&2
