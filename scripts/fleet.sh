#!/usr/bin/env bash
# Fleet simulation: many machines (own HOME and cache each) × a few registries call
# `get` at once against the shared loopback fake of ACR and Entra (tests/e2e/fakes.py
# single) under an admission rate limit, with the default ACR_ENTRA_TIMEOUT and with one
# sized to the fleet, then again when short-lived tokens all enter the refresh window
# together, with and without refresh jitter (bench/fleet.py).
#
#   scripts/fleet.sh                  200 machines × 3 registries, --rate 20; writes
#                                     bench/fleet-results.json and bench/fleet-results.md
#   scripts/fleet.sh --machines 1000  a larger fleet; writes bench/fleet-results-1000.*
#   scripts/fleet.sh --smoke          10 machines × 2 registries, short tokens, under a
#                                     minute, for CI (also FLEET_SMOKE=1); keeps the
#                                     files only in $FLEET_OUT if set
#   options: --rate R, --no-refresh (the cold runs only), --no-build (use
#            target/release as is)
#
# Exits non-zero when something is badly wrong (a get failed while the fake sent no
# 429, a successful get printed invalid JSON); never on a time. Everything listens on
# 127.0.0.1 only; the fake is stopped by its PID on exit.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."
repo=$PWD

smoke=${FLEET_SMOKE:-0} build=1 machines="" rate=20 refresh=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-build) build=0 ;;
    --machines) machines=$2; shift ;;
    --rate) rate=$2; shift ;;
    --no-refresh) refresh=(--no-refresh) ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "fleet.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

bin="$repo/target/release/docker-credential-acr-entra"
if [ "$build" = 1 ]; then cargo build --release --locked --quiet; fi
[ -x "$bin" ] || { echo "fleet.sh: no release binary at $bin" >&2; exit 1; }

if [ "$smoke" = 1 ]; then
  registries=(fleetone.azurecr.io fleettwo.azurecr.io)
  mode=(--smoke --machines "${machines:-10}" --token-lifetime 20 --min-ttl 5s --tail 3)
else
  registries=(fleetone.azurecr.io fleettwo.azurecr.io fleetthree.azurecr.io)
  # 180 s and 30 s: ACR's 3-hour token and the 30-minute ACR_ENTRA_MIN_TTL, a minute to
  # the second.
  mode=(--machines "${machines:-200}" --token-lifetime 180 --min-ttl 30s --tail 15)
fi

. scripts/lib/loopback.sh
loopback_workdir fleet

# A throwaway CA, a certificate for the registry names and Entra's, and a trust bundle.
pki="$work/pki"
loopback_pki "$pki" fleet "${registries[@]}"

svc=(); for r in "${registries[@]}"; do svc+=(--service "$r"); done
loopback_fake "$work" "${svc[@]}" --rate "$rate" || exit 1

if [ "$smoke" = 1 ]; then out="${FLEET_OUT:-$work/out}"; else out="$repo/bench"; fi
mkdir -p "$out"
name=fleet-results
[ "$smoke" = 1 ] || [ "${machines:-200}" = 200 ] || name="fleet-results-$machines"
regs=(); for r in "${registries[@]}"; do regs+=(--registry "$r"); done
rc=0
python3 bench/fleet.py "${mode[@]}" "${refresh[@]}" "${regs[@]}" --rate "$rate" --bin "$bin" \
  --workdir "$work" --port-file "$work/port" --ca-bundle "$pki/bundle.pem" \
  --out "$out/$name.json" --table "$out/$name.md" || rc=$?
echo "fleet.sh: wrote $out/$name.json and $out/$name.md" >&2
exit "$rc"
