#!/usr/bin/env bash
# Check the artifacts scripts/package.sh built in dist/ the way their users meet them,
# and fail (non-zero, with the reason) on the first thing that is not as it should be.
#
#   scripts/package-check.sh [deb|archive|image|all]...      default: all
#
# Each for amd64 and arm64 (ARM64=0: amd64 only). The arm64 binaries run under
# qemu-aarch64-static (scripts/lib/arm64.sh installs it when missing): the same checks, and
# the same real `get`, as the amd64 ones.
#
#   deb      control fields, no maintainer scripts, the exact file list, Depends against
#            the libraries and glibc symbol versions the binary needs; then
#            `apt-get install ./dist/….deb`, `version`, the bash completion, a not-found
#            and a real `get` with the installed /usr/bin binary, and `apt-get purge`
#            again (root; refuses to run when the package is already installed, so it
#            never removes someone's install)
#   archive  dist/SHA256SUMS, the tar entries (names, owner 0, one mtime), the archive's
#            own SHA256SUMS after unpacking, a static binary for the right machine,
#            `version`, a not-found and a real `get`
#   image    an image index naming linux/amd64 and linux/arm64; each platform's labels,
#            one layer, and its mounted root file system (buildah, own storage) holding
#            exactly the binary and the CA bundle; the binary run chrooted into it
#            (`version`, docker.io → not found, the image's own CA bundle in use) and a
#            real `get` with it
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
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
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
arches=(amd64)
if [ "${ARM64:-1}" != 0 ]; then
  arches+=(arm64)
  . scripts/lib/arm64.sh
  arm64_toolchain
fi
dist=$repo/dist
registry=contoso.azurecr.io
null_guid=00000000-0000-0000-0000-000000000000

work=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-package-check.XXXXXX")
installed="" container=""
. scripts/lib/loopback.sh
ba=(buildah --storage-driver vfs --root "$work/buildah/root" --runroot "$work/buildah/run")
cleanup() {
  if [ -n "$container" ]; then "${ba[@]}" rm "$container" >/dev/null 2>&1 || true; fi
  if [ -n "$installed" ]; then apt-get purge -y -qq "$installed" >/dev/null 2>&1 || true; fi
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
    ACR_ENTRA_CACHE_DIR="$home/cache" \
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

# How each architecture's binaries run here: amd64 natively, arm64 under qemu (its
# children would have to be native; the helper spawns only `az`/`azd`, not used here).
runner() { # ARCH; prints nothing or the qemu command
  [ "$1" = arm64 ] && echo qemu-aarch64-static
  return 0
}
triple() { case "$1" in amd64) echo "$target" ;; arm64) echo "$ARM64_TARGET" ;; esac; }

# `get docker.io` is not an ACR: exactly the not-found line, exit 1, no network.
not_found_get() { # BINARY... ; prints the check's line
  local out rc=0
  out=$(printf docker.io | env -i HOME=/ "$@" get) || rc=$?
  same "get docker.io with $* (exit $rc)" "$out:$rc" "credentials not found in native keychain:1"
  local shown="$*"
  ok "get docker.io with ${shown//$work\//}: credentials not found in native keychain, exit 1"
}

check_archive() { # ARCH
  local arch=$1 run; run=$(runner "$1")
  echo "== archive ($arch)"
  local archive top bin
  archive=$dist/$name-$version-$(triple "$arch").tar.gz
  [ -f "$archive" ] || fail "no $archive (scripts/package.sh archive)"
  [ -f "$dist/SHA256SUMS" ] || fail "no dist/SHA256SUMS"
  (cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "dist/SHA256SUMS does not match dist/"
  grep -q " $(basename "$archive")\$" "$dist/SHA256SUMS" || fail "dist/SHA256SUMS does not list the archive"
  ok "dist/SHA256SUMS matches ($(wc -l < "$dist/SHA256SUMS") files)"
  top=$name-$version-$(triple "$arch")
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
  same "machine" "$(elf_machine "$bin")" "$(elf_machine_for "$arch")"
  ok "the binary is statically linked, for $(elf_machine "$bin") ($(stat -c %s "$bin") bytes)"
  # shellcheck disable=SC2086 # $run is one word or none
  same "version" "$(env -i $run "$bin" version | cut -d ' ' -f 1-2)" "$name $version"
  ok "version${run:+ (under $run)}: $name $version"
  # shellcheck disable=SC2086
  not_found_get $run "$bin"
  # shellcheck disable=SC2086
  real_get $run "$bin"
}

elf_machine() { readelf -hW "$1" | sed -n 's/^ *Machine: *//p'; }
elf_machine_for() { case "$1" in amd64) echo "Advanced Micro Devices X86-64" ;; arm64) echo AArch64 ;; esac; }

check_image() {
  echo "== image (${arches[*]})"
  local image=$dist/$name-$version-image.oci.tar
  [ -f "$image" ] || fail "no $image (scripts/package.sh image)"
  command -v buildah >/dev/null || fail "buildah is missing (apt-get install buildah)"
  mkdir "$work/oci"
  tar -C "$work/oci" -xf "$image"
  # index.json names one image index, which names one manifest per platform, in order.
  python3 - "$work/oci" "$version" "${arches[@]}" <<'PY' || fail "the image's index, manifests or labels are not as they should be"
import json, os, sys
root, version, arches = sys.argv[1], sys.argv[2], sys.argv[3:]
blob = lambda d: os.path.join(root, "blobs", *d.split(":"))
top = json.load(open(os.path.join(root, "index.json")))
assert len(top["manifests"]) == 1, "index.json names more than one thing"
assert top["manifests"][0]["mediaType"] == "application/vnd.oci.image.index.v1+json", top["manifests"][0]
index = json.load(open(blob(top["manifests"][0]["digest"])))
platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
assert platforms == [("linux", a) for a in arches], f"platforms {platforms}, expected linux/{arches}"
print(f"   index {top['manifests'][0]['digest']}: " + ", ".join(f"{o}/{a}" for o, a in platforms))
for m in index["manifests"]:
    arch = m["platform"]["architecture"]
    manifest = json.load(open(blob(m["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    assert (config["os"], config["architecture"]) == ("linux", arch), (config["os"], config["architecture"])
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == version, labels
    assert labels["org.opencontainers.image.licenses"] == "MIT", labels
    assert labels["org.opencontainers.image.revision"], labels
    assert config["config"]["Entrypoint"] == ["/docker-credential-acr-entra"], config["config"]
    assert len(manifest["layers"]) == 1, f"{arch}: {len(manifest['layers'])} layers"
    print(f"   linux/{arch}: manifest {m['digest']}, one layer, config linux/{arch}")
    for key in sorted(labels):
        print(f"   linux/{arch}: label {key}={labels[key]}")
PY
  ok "an image index for ${arches[*]/#/linux/}; each: one layer, labels version $version, licence MIT, revision"
  local arch
  for arch in "${arches[@]}"; do
    check_image_platform "$image" "$arch"
  done
}

check_image_platform() { # IMAGE ARCH
  local image=$1 arch=$2 run rootfs listing chroot rc out
  run=$(runner "$arch")
  echo "== image linux/$arch"
  container=$("${ba[@]}" from --quiet --platform "linux/$arch" "oci-archive:$image")
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
  same "machine" "$(elf_machine "$rootfs/$name")" "$(elf_machine_for "$arch")"
  ok "the binary is statically linked, for $(elf_machine "$rootfs/$name")"
  chroot=$(command -v chroot)
  # Chrooted into the image's file system: nothing but what the image holds is there. The
  # arm64 binary runs there through a binfmt_misc entry of a private namespace whose qemu
  # was opened outside (scripts/lib/arm64.sh), so the image gains no qemu file.
  in_image() { if [ "$arch" = arm64 ]; then arm64_world env -i "$@"; else env -i "$@"; fi; }
  same "version in the image" "$(in_image "$chroot" "$rootfs" "/$name" version | cut -d ' ' -f 1-2)" "$name $version"
  ok "chroot: version: $name $version"
  rc=0; out=$(printf docker.io | in_image HOME=/ "$chroot" "$rootfs" "/$name" get) || rc=$?
  same "get docker.io in the image (exit $rc)" "$out:$rc" "credentials not found in native keychain:1"
  ok "chroot: get docker.io: credentials not found in native keychain, exit 1"
  # The image's own bundle is what the helper trusts there: the fake's throwaway CA is not
  # in it, so TLS fails on the issuer. Without the bundle it would fail differently ("No CA
  # certificates were loaded from the system").
  start_fake
  rc=0; out=$(printf '%s' "$registry" | in_image HOME=/ ACR_ENTRA_NO_CACHE=1 \
    ACR_ENTRA_CONNECT_TO="$registry:443:127.0.0.1:$port,login.microsoftonline.com:443:127.0.0.1:$port" \
    AZURE_CLIENT_ID="$client_id" AZURE_CLIENT_SECRET="$client_secret" AZURE_TENANT_ID="$tenant" \
    "$chroot" "$rootfs" "/$name" get) || rc=$?
  case "$rc:$out" in
    1:*UnknownIssuer*|1:*"unknown issuer"*) ok "chroot: TLS uses the image's CA bundle (the fake's test CA is refused: $out)" ;;
    *) fail "chroot get through the fake without SSL_CERT_FILE: expected an unknown-issuer failure, got exit $rc: $out" ;;
  esac
  # shellcheck disable=SC2086
  real_get $run "$rootfs/$name"
  "${ba[@]}" umount "$container" >/dev/null
  "${ba[@]}" rm "$container" >/dev/null
  container=""
}

check_deb() { # ARCH
  local arch=$1 run deb doc members depends named implied needed_pkgs lib path owner p newest floor man section verb
  run=$(runner "$arch")
  echo "== deb ($arch)"
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
  mkdir "$work/deb-$arch"
  dpkg-deb -x "$deb" "$work/deb-$arch"
  local bin=$work/deb-$arch/usr/bin/$name
  is_static "$bin" && fail "the package's binary is statically linked; Debian packages link glibc dynamically"
  same "machine" "$(elf_machine "$bin")" "$(elf_machine_for "$arch")"
  # The files the loader would use: the host's ldd for amd64, the arm64 loader's --list
  # under qemu for arm64 (the host's ldd cannot read it). A same-named library of another
  # architecture (libc6-i386's, libc6:amd64's) is so never taken for it.
  local ldd=(ldd)
  [ "$arch" = arm64 ] && ldd=(qemu-aarch64-static /lib/ld-linux-aarch64.so.1 --list)
  depends=$(field Depends)
  named=$(echo "$depends" | tr ',' '\n' | sed 's/(.*//; s/ //g' | sed '/^$/d' | LC_ALL=C sort -u)
  implied=$(for p in $named; do dpkg-query -W -f='${Depends},${Pre-Depends}\n' "$p:$arch" 2>/dev/null; done \
    | tr ',|' '\n\n' | sed 's/(.*//; s/:any//; s/ //g' | sed '/^$/d')
  needed_pkgs=()
  for lib in $(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    # The loader itself (NEEDED on arm64) is listed by its path, without "=>".
    path=$("${ldd[@]}" "$bin" | awk -v lib="$lib" '$1 == lib && $2 == "=>" { print $3; exit }
      $1 ~ ("/" lib "$") { print $1; exit }')
    [ -n "$path" ] || fail "the loader finds no $lib, which the binary needs"
    owner=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -n "$owner" ] || fail "no package provides $path, which the binary needs"
    echo "$named $implied" | tr ' ' '\n' | grep -qx "$owner" || fail "$lib ($owner) is needed but not in Depends: $depends"
    needed_pkgs+=("$owner:${path}")
  done
  for p in $named; do
    printf '%s\n' "${needed_pkgs[@]%%:*}" | grep -qx "$p" || fail "Depends names $p, which the binary does not need"
  done
  newest=$(readelf -VW "$bin" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -V | tail -n 1)
  floor=$(echo "$depends" | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
  [ -n "$floor" ] || fail "Depends has no versioned libc6: $depends"
  [ "$(printf '%s\n%s\n' "$newest" "$floor" | sort -V | tail -n 1)" = "$floor" ] \
    || fail "the binary uses GLIBC_$newest but Depends asks only libc6 (>= $floor)"
  # Read from the package, not the installed file: images often tell dpkg to skip man pages.
  man=$(zcat "$work/deb-$arch/usr/share/man/man1/$name.1.gz")
  for section in NAME SYNOPSIS COMMANDS ENVIRONMENT SUBCOMMANDS EXAMPLES; do
    echo "$man" | grep -qx "\.SH $section" || fail "the man page has no $section section"
  done
  for verb in token configure doctor kubelet; do
    echo "$man" | grep -q "^$verb " || fail "the man page has no entry for $verb"
  done
  ok "man page: NAME, SYNOPSIS, COMMANDS, ENVIRONMENT, SUBCOMMANDS, EXAMPLES, an entry per subcommand"
  ok "Depends: $depends (libraries needed: ${needed_pkgs[*]}; newest glibc symbol GLIBC_$newest)"

  if dpkg-query -W -f='${Status}\n' "$name" 2>/dev/null | grep -q 'ok installed'; then
    fail "$name is already installed; remove it first (this check installs and removes it)"
  fi
  export DEBIAN_FRONTEND=noninteractive
  installed=$name:$arch
  apt-get install -y -qq "$deb" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err" >&2; fail "apt-get install $deb"; }
  ok "apt-get install ./dist/$(basename "$deb")"
  same "installed architecture" "$(dpkg-query -W -f='${Architecture}' "$name:$arch")" "$arch"
  same "installed path" "$(command -v "$name")" "/usr/bin/$name"
  # shellcheck disable=SC2086
  same "installed version" "$(env -i $run "/usr/bin/$name" version | cut -d ' ' -f 1-2)" "$name $version"
  ok "/usr/bin/$name version${run:+ (under $run)}: $name $version"
  same "bash completion" "$(bash --norc -c ". /usr/share/bash-completion/completions/$name
    COMP_WORDS=($name con); COMP_CWORD=1; _docker_credential_acr_entra; echo \"\${COMPREPLY[*]}\"")" configure
  ok "bash completion: con → configure"
  # shellcheck disable=SC2086
  not_found_get $run "/usr/bin/$name"
  # shellcheck disable=SC2086
  real_get $run "/usr/bin/$name"
  apt-get purge -y -qq "$name:$arch" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err" >&2; fail "apt-get purge $name:$arch"; }
  installed=""
  [ ! -e "/usr/bin/$name" ] || fail "/usr/bin/$name is still there after purge"
  ok "apt-get purge $name:$arch: /usr/bin/$name gone"
}

if want archive; then
  for a in "${arches[@]}"; do check_archive "$a"; done
fi
if want image; then
  check_image
fi
if want deb; then
  for a in "${arches[@]}"; do check_deb "$a"; done
fi

echo "package-check.sh: all checks passed (${modes[*]}; ${arches[*]})"
