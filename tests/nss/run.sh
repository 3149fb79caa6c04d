#!/usr/bin/env bash
# The binary install.sh installs never crashes on the machine's NSS configuration. Runs
# the installed binary (default build, then `install.sh --static`) as a uid without a
# passwd entry, with HOME unset, under an /etc/nsswitch.conf bind-mounted in a private
# mount namespace: `passwd: files systemd` (Debian and Ubuntu once systemd is installed),
# then a `hosts:` line with a module that is not part of glibc. Expects the exact
# not-found line, and one-line errors (never a signal) where a name must be resolved.
# Only loopback names are resolved (`localhost`, from /etc/hosts), so nothing leaves the
# machine. Needs root (mount namespace, another uid); prints a skip otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "nss: skipped (needs root and mount namespaces)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
uid=42423
passed=0
failed=0

printf 'passwd: files systemd\ngroup: files systemd\nhosts: files dns\n' >"$work/nss-systemd"
printf 'passwd: files systemd\ngroup: files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] dns\n' >"$work/nss-mdns"
printf '{"registries":{"localhost:1":{"credential":"client-secret"}}}\n' >"$work/config.json"
chmod 644 "$work"/nss-* "$work/config.json"

# run BIN NSSWITCH STDIN [VAR=VALUE...]: the helper's `get` as $uid, no HOME, under that
# nsswitch.conf; prints "exit=N stdout=..." on one line.
run() {
  local bin=$1 nss=$2 input=$3
  shift 3
  local out code=0
  out=$(printf '%s' "$input" | unshare -m --propagation private sh -c \
    'mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"' sh "$nss" \
    setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i PATH=/usr/bin:/bin "$@" "$bin" get) || code=$?
  printf 'exit=%s stdout=%s' "$code" "$out"
}

expect() {
  local name=$1 got=$2 pattern=$3
  if [[ "$got" == $pattern ]]; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name: got [$got], expected [$pattern]"
  fi
}

for build in default static; do
  prefix="$work/$build"
  if [ "$build" = static ]; then
    case "$(rustc -vV | sed -n 's/^host: //p')" in
      x86_64-*-linux-gnu) ;;
      *) echo "nss: no static build on this host"; continue ;;
    esac
    PREFIX="$prefix" ./install.sh --static >/dev/null
  else
    PREFIX="$prefix" ./install.sh >/dev/null
  fi
  bin="$prefix/bin/docker-credential-acr-entra"
  chmod -R a+rX "$prefix"

  expect "$build: get ghcr.io, passwd: files systemd, no HOME" \
    "$(run "$bin" "$work/nss-systemd" ghcr.io)" \
    "exit=1 stdout=credentials not found in native keychain"
  expect "$build: get of an ACR host without a credential is one line" \
    "$(run "$bin" "$work/nss-systemd" myacr.azurecr.io)" \
    "exit=1 stdout=no Entra credential found*"
  # A listed registry on localhost:1 (nothing listens): the name is resolved from
  # /etc/hosts, then the connection is refused.
  secret=(ACR_ENTRA_CONFIG="$work/config.json" AZURE_CLIENT_ID=c AZURE_CLIENT_SECRET=s
          AZURE_TENANT_ID=t AZURE_AUTHORITY_HOST=https://localhost:1 ACR_ENTRA_TIMEOUT=2)
  expect "$build: resolving under hosts: files dns" \
    "$(run "$bin" "$work/nss-systemd" localhost:1 "${secret[@]}")" \
    "exit=1 stdout=registry \`localhost:1\` did not answer*"
  if [ "$build" = static ]; then
    expect "$build: hosts: mdns4_minimal is refused in one line, not a crash" \
      "$(run "$bin" "$work/nss-mdns" localhost:1 "${secret[@]}")" \
      "exit=1 stdout=*NSS module \`mdns4_minimal\`*"
  else
    expect "$build: hosts: mdns4_minimal works as glibc decides" \
      "$(run "$bin" "$work/nss-mdns" localhost:1 "${secret[@]}")" \
      "exit=1 stdout=registry \`localhost:1\` did not answer*"
  fi
done

echo "nss: $passed passed, $failed failed"
[ "$failed" = 0 ]
