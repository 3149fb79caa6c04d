#!/usr/bin/env bash
# Build docker-credential-acr-entra with the local Rust toolchain and install it into
# ~/.local/bin (or $PREFIX/bin). Idempotent: running it again rebuilds and replaces the
# binary. Options:
#   --configure-docker   also add credHelpers entries for *.azurecr.io hosts given after it
#                        (uses the helper's own `configure docker` subcommand)
#   --static             link glibc statically (x86_64 Linux): ~0.25 ms faster per call, for
#                        containers and CI images; refuses to resolve names where
#                        /etc/nsswitch.conf lists NSS modules other than files and dns
set -euo pipefail
cd "$(dirname "$0")"

prefix="${PREFIX:-$HOME/.local}"
bindir="$prefix/bin"
configure=0
static=0
hosts=()
for arg in "$@"; do
  case "$arg" in
    --configure-docker) configure=1 ;;
    --static) static=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    *) hosts+=("$arg") ;;
  esac
done

# What the build needs, checked before it starts, each with its one-line fix.
if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
# MAJOR.MINOR of the first version in $1 as one number (1.89 → 1089), empty if none.
version_number() { [[ "$1" =~ ([0-9]+)\.([0-9]+) ]] && echo $((BASH_REMATCH[1] * 1000 + BASH_REMATCH[2])); }
need_rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
have_rust=$(rustc --version 2>/dev/null || true)
have=$(version_number "$have_rust" || true)
if [ -z "$have" ]; then
  echo "install.sh: cannot tell the Rust version (rustc --version printed '${have_rust}'); install the toolchain with rustup (https://rustup.rs)" >&2
  exit 1
elif [ "$have" -lt "$(version_number "$need_rust")" ]; then
  echo "install.sh: ${have_rust%% (*} is older than the $need_rust this project needs (distribution packages often are): install a current toolchain with rustup (https://rustup.rs), or use a package (README, Install)" >&2
  exit 1
fi
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
  echo "install.sh: no C compiler (cc, gcc or clang) found; the TLS library's crypto (ring) compiles C: install one (Debian/Ubuntu: sudo apt-get install gcc)" >&2
  exit 1
fi

# The default build links glibc dynamically: it works with whatever NSS modules the
# machine's /etc/nsswitch.conf names (systemd, mdns, sssd…). A statically linked glibc
# would load those modules at run time and crash, so the static build (`--static`, the
# `cargo release-static` alias in .cargo/config.toml) is opt-in: it never asks NSS for a
# home directory and refuses, in one line, to resolve names through modules other than
# glibc's own files and dns (README "Install").
host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
if [ "$static" = 1 ]; then
  case "$host" in
    x86_64-*-linux-gnu) ;;
    *) echo "install.sh: --static is for x86_64 Linux with glibc" >&2; exit 2 ;;
  esac
  echo "building the release binary, statically linked (cargo release-static)..."
  cargo --quiet release-static
else
  # On x86_64 Linux with glibc, `cargo release-dynamic` (.cargo/config.toml) links the
  # unwinder in, so the loader has one shared library less to open on every call.
  case "$host" in
    x86_64-*-linux-gnu)
      echo "building the release binary (cargo release-dynamic)..."
      cargo --quiet release-dynamic ;;
    *)
      echo "building the release binary (cargo build --release --locked)..."
      cargo build --release --locked --quiet ;;
  esac
fi
mkdir -p "$bindir"
install -m 0755 target/release/docker-credential-acr-entra "$bindir/docker-credential-acr-entra"
echo "installed $bindir/docker-credential-acr-entra: $("$bindir/docker-credential-acr-entra" version)"

case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "note: $bindir is not on PATH; add it (e.g. export PATH=\"$bindir:\$PATH\") so clients find the helper" ;;
esac

if [ "$configure" = 1 ]; then
  if "$bindir/docker-credential-acr-entra" configure --help >/dev/null 2>&1; then
    "$bindir/docker-credential-acr-entra" configure docker "${hosts[@]}"
  else
    echo "install.sh: this build has no 'configure' subcommand yet; add to ~/.docker/config.json:" >&2
    echo '  {"credHelpers": {"myregistry.azurecr.io": "acr-entra"}}' >&2
    exit 1
  fi
fi

echo "try it: echo myregistry.azurecr.io | docker-credential-acr-entra get"
