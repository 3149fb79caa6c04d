#!/usr/bin/env bash
# Check the artifacts scripts/package.sh built in dist/ the way their users meet them,
# and fail (non-zero, with the reason) on the first thing that is not as it should be.
#
#   scripts/package-check.sh [deb|archive|image|all]...      default: all
#
#   deb      control fields, no maintainer scripts, the exact file list, Depends against
#            the libraries and glibc symbol versions the binary needs; then
#            `apt-get install ./dist/….deb`, `version`, the bash completion and a real
#            `get` with the installed /usr/bin binary, and `apt-get purge` again (root;
#            refuses to run when the package is already installed, so it never removes
#            someone's install)
#   archive  dist/SHA256SUMS, the tar entries (names, owner 0, one mtime), the archive's
#            own SHA256SUMS after unpacking, a static binary, `version` and a real `get`
#   image    the OCI archive's labels, one layer, and the mounted root file system
#            (buildah, own storage) holding exactly the binary and the CA bundle; the
#            binary run chrooted into it (`version`, docker.io → not found, the image's
#            own CA bundle in use) and a real `get` with it
#
# A real `get` runs against the e2e suite's fake of Entra and ACR (tests/e2e/fakes.py
# single) on a free 127.0.0.1 port with a throwaway CA; the fake is stopped by its PID.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."
repo=$PWD

name=docker-credential-acr-entra
modes=()
for arg in "$@"; do
  case "$arg" in
    deb|archive|image) modes+=("$arg") ;;
    all) modes+=(archive image deb) ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "package-check.sh: unknown argument $arg (deb, archive, image, all)" >&2; exit 2 ;;
  esac
done
[ "${#modes[@]}" -gt 0 ] || modes=(archive image deb)
want() { local m; for m in "${modes[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }

for tool in readelf:binutils ldd:libc-bin python3:python3 openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || { echo "package-check.sh: missing ${tool%%:*} (apt-get install ${tool#*:})" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
dist=$repo/dist
registry=contoso.azurecr.io
null_guid=00000000-0000-0000-0000-000000000000

work=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-package-check.XXXXXX")
installed=0 container=""
. scripts/lib/loopback.sh
ba=(buildah --storage-driver vfs --root "$work/buildah/root" --runroot "$work/buildah/run")
cleanup() {
  if [ -n "$container" ]; then "${ba[@]}" rm "$container" >/dev/null 2>&1 || true; fi
  if [ "$installed" = 1 ]; then apt-get purge -y -qq "$name" >/dev/null 2>&1 || true; fi
  loopback_fake_stop
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "package-check.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }
same() { # WHAT ACTUAL EXPECTED
  [ "$2" = "$3" ] || fail "$1: expected
$3
got
$2"
}

# The loopback fake: the registry's challenge, ACR's token service and Entra on one port.
start_fake() {
  [ -n "${FAKE_PID:-}" ] && return 0
  loopback_pki "$work/pki" package-check "$registry"
  loopback_fake "$work" --service "$registry" || fail "the loopback fake did not start"
  port=$FAKE_PORT
  # The fake's dummy identity, from the fake itself.
  read -r client_id client_secret tenant < <(cd tests/e2e && python3 -c \
    'import fakes; print(fakes.CLIENT_ID, fakes.CLIENT_SECRET, fakes.TENANT)')
}

# `get` for the fake registry with BINARY (after any wrapper words, e.g. chroot DIR):
# a fresh HOME and cache, a client secret, every name mapped to the fake.
real_get() { # BINARY... ; prints the check's line
  start_fake
  local home; home=$(mktemp -d "$work/home.XXXXXX")
  local out rc=0
  out=$(printf '%s' "$registry" | env -i HOME="$home" PATH=/usr/bin:/bin \
    ACR_ENTRA_CACHE_DIR="$home/cache" ACR_ENTRA_CONFIG="$home/no-config.json" \
    ACR_ENTRA_CONNECT_TO="$registry:443:127.0.0.1:$port,login.microsoftonline.com:443:127.0.0.1:$port" \
    SSL_CERT_FILE="$work/pki/bundle.pem" \
    AZURE_CLIENT_ID="$client_id" AZURE_CLIENT_SECRET="$client_secret" AZURE_TENANT_ID="$tenant" \
    "$@" get) || rc=$?
  [ "$rc" = 0 ] || fail "get with $*: exit $rc: $out"
  python3 - "$out" "$registry" "$null_guid" <<'PY' || fail "get with $*: unexpected answer: $out"
import json, sys
answer, registry, guid = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
assert set(answer) == {"ServerURL", "Username", "Secret"}, answer.keys()
assert answer["ServerURL"] == registry and answer["Username"] == guid
assert answer["Secret"].count(".") == 2, "the secret is not a JWT"
PY
  local shown="$*"
  ok "get $registry with ${shown//$work\//} answered the null GUID and a refresh token from the fake"
}

is_static() { ! readelf -lW "$1" | grep -q 'Requesting program interpreter'; }

if want archive; then
  echo "== archive"
  archive=$dist/$name-$version-$target.tar.gz
  [ -f "$archive" ] || fail "no $archive (scripts/package.sh archive)"
  [ -f "$dist/SHA256SUMS" ] || fail "no dist/SHA256SUMS"
  (cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "dist/SHA256SUMS does not match dist/"
  grep -q " $(basename "$archive")\$" "$dist/SHA256SUMS" || fail "dist/SHA256SUMS does not list the archive"
  ok "dist/SHA256SUMS matches ($(wc -l < "$dist/SHA256SUMS") files)"
  top=$name-$version-$target
  python3 - "$archive" "$top" "$name" <<'PY' || fail "the archive's entries are not as they should be"
import sys, tarfile
path, top, name = sys.argv[1:]
with tarfile.open(path) as t:
    members = t.getmembers()
names = [m.name for m in members]
want = [top, f"{top}/LICENSE", f"{top}/README.md", f"{top}/SHA256SUMS", f"{top}/{name}"]
assert names == want, f"entries {names}, expected {want} in this order"
assert all(m.uid == 0 and m.gid == 0 for m in members), "owner is not 0:0"
assert len({m.mtime for m in members}) == 1, "entries have different mtimes"
modes = {m.name: oct(m.mode) for m in members}
assert modes[f"{top}/{name}"] == "0o755" and modes[f"{top}/README.md"] == "0o644", modes
PY
  ok "entries sorted, owner 0:0, one mtime: $(tar -tzf "$archive" | tr '\n' ' ')"
  tar -C "$work" -xzf "$archive"
  (cd "$work/$top" && sha256sum -c SHA256SUMS) | sed 's/^/   /'
  (cd "$work/$top" && sha256sum --quiet -c SHA256SUMS) || fail "the archive's SHA256SUMS does not match"
  bin=$work/$top/$name
  is_static "$bin" || fail "the archive's binary is dynamically linked"
  ok "the binary is statically linked ($(stat -c %s "$bin") bytes)"
  same "version" "$(env -i "$bin" version)" "$name $version"
  ok "version: $name $version"
  real_get "$bin"
fi

if want image; then
  echo "== image"
  image=$dist/$name-$version-image.oci.tar
  [ -f "$image" ] || fail "no $image (scripts/package.sh image)"
  command -v buildah >/dev/null || fail "buildah is missing (apt-get install buildah)"
  mkdir "$work/oci"
  tar -C "$work/oci" -xf "$image"
  python3 - "$work/oci" "$version" <<'PY' || fail "the image's manifest or labels are not as they should be"
import json, os, sys
root, version = sys.argv[1:]
blob = lambda d: os.path.join(root, "blobs", *d.split(":"))
index = json.load(open(os.path.join(root, "index.json")))
assert len(index["manifests"]) == 1, "more than one manifest"
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
labels = config["config"]["Labels"]
assert labels["org.opencontainers.image.version"] == version, labels
assert labels["org.opencontainers.image.licenses"] == "MIT", labels
assert labels["org.opencontainers.image.revision"], labels
assert config["config"]["Entrypoint"] == ["/docker-credential-acr-entra"], config["config"]
assert len(manifest["layers"]) == 1, f"{len(manifest['layers'])} layers"
for key in sorted(labels):
    print(f"   label {key}={labels[key]}")
PY
  ok "one manifest, one layer, labels version $version, licence MIT, revision"
  container=$("${ba[@]}" from --quiet "oci-archive:$image")
  rootfs=$("${ba[@]}" mount "$container")
  listing=$(cd "$rootfs" && find . -mindepth 1 -printf '%M %s %p\n' | LC_ALL=C sort -k3)
  echo "$listing" | sed 's/^/   /'
  same "the image's files" "$(echo "$listing" | awk '{print $1, $3}')" \
"-rwxr-xr-x ./$name
drwxr-xr-x ./etc
drwxr-xr-x ./etc/ssl
drwxr-xr-x ./etc/ssl/certs
-rw-r--r-- ./etc/ssl/certs/ca-certificates.crt"
  ok "the root file system holds exactly the binary and the CA bundle"
  is_static "$rootfs/$name" || fail "the image's binary is dynamically linked"
  chroot=$(command -v chroot)
  # Chrooted into the image's file system: nothing but what the image holds is there.
  same "version in the image" "$(env -i "$chroot" "$rootfs" "/$name" version)" "$name $version"
  ok "chroot: version: $name $version"
  rc=0; out=$(printf docker.io | env -i HOME=/ "$chroot" "$rootfs" "/$name" get) || rc=$?
  same "get docker.io in the image (exit $rc)" "$out:$rc" "credentials not found in native keychain:1"
  ok "chroot: get docker.io: credentials not found in native keychain, exit 1"
  # The image's own bundle is what the helper trusts there: the fake's throwaway CA is not
  # in it, so TLS fails on the issuer. Without the bundle it would fail differently ("No CA
  # certificates were loaded from the system").
  start_fake
  rc=0; out=$(printf '%s' "$registry" | env -i HOME=/ ACR_ENTRA_NO_CACHE=1 \
    ACR_ENTRA_CONNECT_TO="$registry:443:127.0.0.1:$port,login.microsoftonline.com:443:127.0.0.1:$port" \
    AZURE_CLIENT_ID="$client_id" AZURE_CLIENT_SECRET="$client_secret" AZURE_TENANT_ID="$tenant" \
    "$chroot" "$rootfs" "/$name" get) || rc=$?
  case "$rc:$out" in
    1:*UnknownIssuer*|1:*"unknown issuer"*) ok "chroot: TLS uses the image's CA bundle (the fake's test CA is refused: $out)" ;;
    *) fail "chroot get through the fake without SSL_CERT_FILE: expected an unknown-issuer failure, got exit $rc: $out" ;;
  esac
  real_get "$rootfs/$name"
  "${ba[@]}" umount "$container" >/dev/null
fi

if want deb; then
  echo "== deb"
  arch=$(dpkg --print-architecture)
  deb=$dist/${name}_$version-1_$arch.deb
  [ -f "$deb" ] || fail "no $deb (scripts/package.sh deb)"
  [ "$(id -u)" = 0 ] || fail "the deb check installs the package: run as root"
  field() { dpkg-deb -f "$deb" "$1"; }
  same "Package" "$(field Package)" "$name"
  same "Version" "$(field Version)" "$version-1"
  same "Architecture" "$(field Architecture)" "$arch"
  ok "Package $name, Version $version-1, Architecture $arch"
  # Nothing but the control file (and md5sums, which cargo-deb may add): no preinst,
  # postinst, prerm, postrm, config or triggers that could touch anyone's docker config.
  members=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t | sed 's|^\./||; /^$/d' | LC_ALL=C sort | xargs)
  case "$members" in
    control|"control md5sums") ok "no maintainer scripts (control members: $members)" ;;
    *) fail "control members are $members; expected control (and md5sums) only" ;;
  esac
  doc=usr/share/doc/$name
  same "the package's files" "$(dpkg-deb -c "$deb" | awk '{print $1, $6}' | LC_ALL=C sort -k2)" \
"drwxr-xr-x ./usr/
drwxr-xr-x ./usr/bin/
-rwxr-xr-x ./usr/bin/$name
drwxr-xr-x ./usr/share/
drwxr-xr-x ./usr/share/bash-completion/
drwxr-xr-x ./usr/share/bash-completion/completions/
-rw-r--r-- ./usr/share/bash-completion/completions/$name
drwxr-xr-x ./usr/share/doc/
drwxr-xr-x ./$doc/
-rw-r--r-- ./$doc/README.md
-rw-r--r-- ./$doc/copyright
drwxr-xr-x ./usr/share/man/
drwxr-xr-x ./usr/share/man/man1/
-rw-r--r-- ./usr/share/man/man1/$name.1.gz
drwxr-xr-x ./usr/share/zsh/
drwxr-xr-x ./usr/share/zsh/vendor-completions/
-rw-r--r-- ./usr/share/zsh/vendor-completions/_$name"
  ok "files: the binary, README, copyright, man page, bash and zsh completions"

  # Depends against the binary itself: each library it needs belongs to a package named in
  # Depends or required by one (libgcc-s1 comes with libc6, and cargo-deb leaves it out),
  # nothing else is named, and libc6's version is at least the newest GLIBC_ symbol
  # version the binary uses.
  mkdir "$work/deb"
  dpkg-deb -x "$deb" "$work/deb"
  bin=$work/deb/usr/bin/$name
  is_static "$bin" && fail "the package's binary is statically linked; Debian packages link glibc dynamically"
  depends=$(field Depends)
  named=$(echo "$depends" | tr ',' '\n' | sed 's/(.*//; s/ //g' | sed '/^$/d' | LC_ALL=C sort -u)
  implied=$(for p in $named; do dpkg-query -W -f='${Depends},${Pre-Depends}\n' "$p" 2>/dev/null; done \
    | tr ',|' '\n\n' | sed 's/(.*//; s/:any//; s/ //g' | sed '/^$/d')
  needed_pkgs=()
  for lib in $(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    # The file the loader would use (ldd), so a same-named library of another
    # architecture (libc6-i386's) is never taken for it.
    path=$(ldd "$bin" | awk -v lib="$lib" '$1 == lib && $2 == "=>" { print $3 }')
    [ -n "$path" ] || fail "the loader finds no $lib, which the binary needs"
    owner=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -n "$owner" ] || fail "no package provides $path, which the binary needs"
    echo "$named $implied" | tr ' ' '\n' | grep -qx "$owner" || fail "$lib ($owner) is needed but not in Depends: $depends"
    needed_pkgs+=("$owner")
  done
  for p in $named; do
    printf '%s\n' "${needed_pkgs[@]}" | grep -qx "$p" || fail "Depends names $p, which the binary does not need"
  done
  newest=$(readelf -VW "$bin" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -V | tail -n 1)
  floor=$(echo "$depends" | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
  [ -n "$floor" ] || fail "Depends has no versioned libc6: $depends"
  [ "$(printf '%s\n%s\n' "$newest" "$floor" | sort -V | tail -n 1)" = "$floor" ] \
    || fail "the binary uses GLIBC_$newest but Depends asks only libc6 (>= $floor)"
  # Read from the package, not the installed file: images often tell dpkg to skip man pages.
  man=$(zcat "$work/deb/usr/share/man/man1/$name.1.gz")
  for section in NAME SYNOPSIS COMMANDS ENVIRONMENT SUBCOMMANDS; do
    echo "$man" | grep -qx "\.SH $section" || fail "the man page has no $section section"
  done
  for verb in token configure doctor kubelet; do
    echo "$man" | grep -q "^$verb " || fail "the man page has no entry for $verb"
  done
  ok "man page: NAME, SYNOPSIS, COMMANDS, ENVIRONMENT, SUBCOMMANDS, an entry per subcommand"
  ok "Depends: $depends (libraries needed: ${needed_pkgs[*]}; newest glibc symbol GLIBC_$newest)"

  if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'ok installed'; then
    fail "$name is already installed; remove it first (this check installs and removes it)"
  fi
  export DEBIAN_FRONTEND=noninteractive
  installed=1
  apt-get install -y -qq "$deb" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err" >&2; fail "apt-get install $deb"; }
  ok "apt-get install ./dist/$(basename "$deb")"
  same "installed path" "$(command -v "$name")" "/usr/bin/$name"
  same "installed version" "$(env -i "/usr/bin/$name" version)" "$name $version"
  ok "/usr/bin/$name version: $name $version"
  same "bash completion" "$(bash --norc -c ". /usr/share/bash-completion/completions/$name
    COMP_WORDS=($name con); COMP_CWORD=1; _docker_credential_acr_entra; echo \"\${COMPREPLY[*]}\"")" configure
  ok "bash completion: con → configure"
  real_get "/usr/bin/$name"
  apt-get purge -y -qq "$name" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err" >&2; fail "apt-get purge $name"; }
  installed=0
  [ ! -e "/usr/bin/$name" ] || fail "/usr/bin/$name is still there after purge"
  ok "apt-get purge $name: /usr/bin/$name gone"
fi

echo "package-check.sh: all checks passed (${modes[*]})"
