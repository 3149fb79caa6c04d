#!/usr/bin/env bash
# Benchmark docker-credential-acr-entra against the process-start floor and the ECR
# credential helper, side by side in one run, and print ratios (absolute times vary by
# machine; the ratios are what to compare across machines and commits).
#
#   scripts/bench.sh            full run (~1.5 minutes), writes bench/results.json
#                               and bench/results.md
#   scripts/bench.sh --quick    short run (~40 s) for a smoke check; prints the table,
#                               keeps the files only in $BENCH_OUT if set, never in bench/
#   options: --no-install (do not apt-get), --no-build (use target/release as is)
#
# Installs what it needs with apt-get when missing (amazon-ecr-credential-helper,
# valgrind, gcc, openssl, python3), builds the release binary, starts one loopback fake
# (tests/e2e/fakes.py single, the fake the e2e suite uses: the registry and Entra on one
# HTTPS port with a throwaway CA) and stops it on exit. Nothing here fails on a time:
# goals are printed beside the figures.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."
repo=$PWD

quick=0 install=1 build=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

need=()
command -v docker-credential-ecr-login >/dev/null || need+=(amazon-ecr-credential-helper)
command -v valgrind >/dev/null || need+=(valgrind)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
command -v file >/dev/null || need+=(file)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$install" = 1 ] && command -v apt-get >/dev/null; then
    echo "bench.sh: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  else
    echo "bench.sh: missing ${need[*]} (the ECR and callgrind rows are skipped without them)" >&2
  fi
fi

bin="$repo/target/release/docker-credential-acr-entra"
if [ "$build" = 1 ]; then
  # The binary `install.sh --static` installs: statically linked on Linux with glibc
  # (the default install is dynamically linked, ~0.3 ms slower per call).
  case "$(rustc -vV | sed -n 's/^host: //p')" in
    x86_64-*-linux-gnu)
      echo "bench.sh: cargo release-static (release build, statically linked)" >&2
      cargo --quiet release-static ;;
    *)
      echo "bench.sh: cargo build --release --locked" >&2
      cargo build --release --locked --quiet ;;
  esac
fi
[ -x "$bin" ] || { echo "bench.sh: no release binary at $bin" >&2; exit 1; }

. scripts/lib/loopback.sh
loopback_workdir bench

# Rust hellos beside the floor, built like the helper (opt-level s, panic abort,
# stripped), static and not;
# the spawner is C so it adds as little as possible to ~1 ms process lifetimes.
rustflags=(-C opt-level=s -C panic=abort -C strip=symbols)
rustc "${rustflags[@]}" -C target-feature=+crt-static -o "$work/hello-static" bench/hello.rs
rustc "${rustflags[@]}" -o "$work/hello-dynamic" bench/hello.rs
gcc -O2 -o "$work/runner" bench/runner.c
# The floor itself: a statically linked C hello, the real process-start limit.
gcc -O2 -static -o "$work/hello-c" bench/hello.c

# A throwaway CA, a certificate for the registry names and Entra's, and a trust bundle.
pki="$work/pki"
loopback_pki "$pki" bench myacr.azurecr.io
loopback_fake "$work" --service myacr.azurecr.io || exit 1

if [ "$quick" = 1 ]; then
  out="${BENCH_OUT:-$work/out}"; mkdir -p "$out"
else
  out="$repo/bench"
fi
mode=(); [ "$quick" = 1 ] && mode=(--quick)
python3 bench/bench.py "${mode[@]}" \
  --bin "$bin" --workdir "$work" --port-file "$work/port" --ca-bundle "$pki/bundle.pem" \
  --repo "$repo" --out "$out/results.json" --table "$out/results.md"
if [ "$quick" = 1 ] && [ -z "${BENCH_OUT:-}" ]; then
  echo "bench.sh: quick run, nothing kept (set BENCH_OUT=DIR to keep results.json and results.md)" >&2
else
  echo "bench.sh: wrote $out/results.json and $out/results.md" >&2
fi
