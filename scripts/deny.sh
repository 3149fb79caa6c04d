#!/usr/bin/env bash
# Supply-chain checks with cargo-deny and deny.toml: licenses, bans (one TLS
# stack: rustls+ring, no OpenSSL/native-tls/aws-lc, no second HTTP client or tokio) and
# sources (crates.io only) always; advisories (the RustSec database, the `cargo audit`
# equivalent) when the database can be fetched. Installs cargo-deny from crates.io when
# it is missing.
#
# The advisory database is a git repository on GitHub, which this project's build
# machines cannot reach (they reach crates.io only): the advisories check runs only with
# DENY_ADVISORIES=1 and is otherwise reported as SKIPPED; the other checks must pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "== installing cargo-deny"
  cargo install --locked cargo-deny
fi

echo "== cargo deny: licenses, bans, sources"
# cargo-deny reads every platform's dependencies (windows-sys, wasm crates…), which a
# build on this platform never downloads: fetch them all first, then check offline.
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources

echo "== cargo deny: advisories"
# The database lives on GitHub, which this project's build machines must not be sent to;
# fetch it only when asked (DENY_ADVISORIES=1, on a machine that can reach it).
if [ "${DENY_ADVISORIES:-0}" = 1 ]; then
  cargo deny fetch db
  cargo deny check advisories
else
  echo "advisories SKIPPED: the RustSec database is fetched from GitHub, which these build"
  echo "  machines cannot reach; run DENY_ADVISORIES=1 scripts/deny.sh where it is reachable"
fi
