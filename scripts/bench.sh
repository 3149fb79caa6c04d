#!/usr/bin/env bash
# Benchmark docker-credential-acr-entra against the process-start floor and the ECR
# credential helper, side by side in one run, and print ratios (absolute times vary by
# machine; the ratios are what to compare across machines and commits).
#
#   scripts/bench.sh            full run (~2 minutes after the builds), writes
#                               bench/results.json and bench/results.md
#   scripts/bench.sh --quick    short run (~40 s) for a smoke check; prints the table,
#                               keeps the files only in $BENCH_OUT if set, never in bench/
#   scripts/bench.sh --link-options
#                               one build per link option of the default (dynamic)
#                               binary, measured side by side; writes
#                               bench/link-options.json and bench/link-options.md
#   options: --no-install (do not apt-get), --no-build (measure the binaries the last
#   run built, kept in target/bench/)
#
# Three builds are measured in one interleaved run: the default binary as install.sh
# builds it (`cargo release-dynamic`), the static one (`cargo release-static`) and plain
# `cargo build --release` (the default binary before its link options).
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

quick=0 install=1 build=1 link=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --link-options) link=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
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

# The binaries measured, copied out of target/release (each build replaces the one
# there) and kept for --no-build.
release="${CARGO_TARGET_DIR:-$repo/target}/release/docker-credential-acr-entra"
bins="${CARGO_TARGET_DIR:-$repo/target}/bench"
mkdir -p "$bins"
build_as() { # NAME CARGO-ARGS...: build, keep the binary as $bins/NAME
  local name=$1; shift
  echo "bench.sh: $name: cargo $*" >&2
  cargo --quiet "$@"
  cp "$release" "$bins/$name"
}
linux_gnu=0
case "$(rustc -vV | sed -n 's/^host: //p')" in x86_64-*-linux-gnu) linux_gnu=1 ;; esac

# Link variants of the default binary, one build each: NAME and the flags for the final
# crate (`cargo rustc ... -- FLAGS`, as the aliases pass them). "plain" is
# `cargo build --release`: PIE, -z now (full RELRO), libgcc_s for the unwinder.
# Kept: no-libgcc_s (the release-dynamic alias). The others are measured to show what
# they would give; docs/performance.md says why each is left out.
variants=(
  "plain="
  "relr=-C link-arg=-Wl,-z,pack-relative-relocs"
  "O1=-C link-arg=-Wl,-O1"
  "lazy=-C link-arg=-Wl,-z,lazy"
  "norelro=-C link-arg=-Wl,-z,norelro"
  "no-rosegment=-C link-arg=-Wl,--no-rosegment"
  "no-pie=-C relocation-model=static"
  "no-libgcc_s=-l static=gcc_eh"
  "no-libgcc_s+relr=-l static=gcc_eh -C link-arg=-Wl,-z,pack-relative-relocs"
  "no-libgcc_s+no-pie=-l static=gcc_eh -C relocation-model=static"
)

if [ "$link" = 1 ]; then
  [ "$linux_gnu" = 1 ] || { echo "bench.sh: --link-options is for x86_64 Linux with glibc" >&2; exit 2; }
  variant_args=()
  for v in "${variants[@]}"; do
    name=${v%%=*} flags=${v#*=}
    if [ "$build" = 1 ]; then
      # shellcheck disable=SC2086 # the flags are words
      build_as "variant-$name" rustc --release --locked --bin docker-credential-acr-entra -- $flags
    fi
    variant_args+=(--variant "$name=$bins/variant-$name")
  done
  bin="$bins/variant-plain"
elif [ "$linux_gnu" = 1 ]; then
  if [ "$build" = 1 ]; then
    build_as before build --release --locked
    build_as static release-static
    # Last, so target/release holds what install.sh installs.
    build_as dynamic release-dynamic
  fi
  bin="$bins/dynamic"
  variant_args=(--bin-static "$bins/static" --bin-before "$bins/before")
else
  # Other hosts: install.sh builds with plain `cargo build --release` there.
  [ "$build" = 1 ] && build_as dynamic build --release --locked
  bin="$bins/dynamic"
  variant_args=()
fi
for b in "$bin" "${variant_args[@]}"; do
  case "$b" in --*) continue ;; esac
  b=${b#*=}
  [ -x "$b" ] || { echo "bench.sh: no binary at $b (run without --no-build)" >&2; exit 1; }
done

. scripts/lib/loopback.sh
loopback_workdir bench

# Rust hellos beside the floor, built like the helper (opt-level s, panic abort,
# stripped), static and dynamic;
# the spawner is C so it adds as little as possible to ~1 ms process lifetimes.
rustflags=(-C opt-level=s -C panic=abort -C strip=symbols)
rustc "${rustflags[@]}" -C target-feature=+crt-static -o "$work/hello-static" bench/hello.rs
rustc "${rustflags[@]}" -o "$work/hello-dynamic" bench/hello.rs
# And linked as release-dynamic links the helper: libc.so.6 the one shared library.
rustc "${rustflags[@]}" -l static=gcc_eh -o "$work/hello-dynamic-libc" bench/hello.rs
gcc -O2 -o "$work/runner" bench/runner.c
# The floor itself: a statically linked C hello, the real process-start limit.
gcc -O2 -static -o "$work/hello-c" bench/hello.c

# A throwaway CA, a certificate for the registry names and Entra's, and a trust bundle.
pki="$work/pki"
loopback_pki "$pki" bench myacr.azurecr.io
loopback_fake "$work" --service myacr.azurecr.io || exit 1

name=results; [ "$link" = 1 ] && name=link-options
if [ "$quick" = 1 ]; then
  out="${BENCH_OUT:-$work/out}"; mkdir -p "$out"
else
  out="$repo/bench"
fi
mode=(); [ "$quick" = 1 ] && mode=(--quick)
python3 bench/bench.py "${mode[@]}" "${variant_args[@]}" \
  --bin "$bin" --workdir "$work" --port-file "$work/port" --ca-bundle "$pki/bundle.pem" \
  --repo "$repo" --out "$out/$name.json" --table "$out/$name.md"
if [ "$quick" = 1 ] && [ -z "${BENCH_OUT:-}" ]; then
  echo "bench.sh: quick run, nothing kept (set BENCH_OUT=DIR to keep $name.json and $name.md)" >&2
else
  echo "bench.sh: wrote $out/$name.json and $out/$name.md" >&2
fi
