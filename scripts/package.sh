#!/usr/bin/env bash
# Build the release artifacts into dist/, the way platform teams install credential
# helpers: a Debian package, a release archive with checksums, and a scratch image to copy
# the binary from. scripts/package-check.sh installs and runs what this builds.
#
#   scripts/package.sh [deb|archive|image|all]... [--once]      default: all
#
#   deb      dist/docker-credential-acr-entra_VERSION-1_ARCH.deb with cargo-deb (metadata in
#            Cargo.toml): the binary linked against the system's glibc, as Debian packages
#            are, at /usr/bin; README, copyright, man page (packaging/manpage.sh, from the
#            binary's --help), bash and zsh completions; Depends from dpkg-shlibdeps; no
#            maintainer scripts
#   archive  dist/docker-credential-acr-entra-VERSION-TARGET.tar.gz: the statically linked
#            binary, README.md, LICENSE and SHA256SUMS. Built twice, the second time from a
#            copy of the sources at another path into an empty target directory, and the
#            two archives compared byte for byte: the script fails unless they are equal
#            (1.5 to 2 minutes more on two cores)
#   image    dist/docker-credential-acr-entra-VERSION-image.oci.tar: FROM scratch with the
#            static binary at /docker-credential-acr-entra and a CA bundle, labelled,
#            built with buildah (packaging/Containerfile); also a local image
#            docker-credential-acr-entra:VERSION in the script's own buildah storage, which
#            is deleted on exit: load the OCI archive with skopeo or podman
#   --once   archive: build once, skip the reproducibility build
#
# Always writes dist/SHA256SUMS for what dist/ holds (`all` empties dist/ first). Installs
# what it needs when missing: cargo-deb (cargo install --locked), buildah and dpkg-dev
# (apt-get). Builds are reproducible: SOURCE_DATE_EPOCH (default: the last commit's time)
# fixes every timestamp, --remap-path-prefix takes the build machine's paths out of the
# binary, tar entries are sorted with owner 0 and that mtime, gzip stores no name or time.
# Builds go to $CARGO_TARGET_DIR/package (default target/package), apart from `cargo
# build`'s, because the remapping flags would rebuild every crate there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

name=docker-credential-acr-entra
cargo_deb_version=3.8.0
modes=() once=0
for arg in "$@"; do
  case "$arg" in
    deb|archive|image) modes+=("$arg") ;;
    all) modes+=(archive image deb) ;;
    --once) once=1 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $arg (deb, archive, image, all, --once)" >&2; exit 2 ;;
  esac
done
[ "${#modes[@]}" -gt 0 ] || modes=(archive image deb)
want() { local m; for m in "${modes[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) \
    || { echo "package.sh: not a git checkout: set SOURCE_DATE_EPOCH" >&2; exit 1; }
fi
export SOURCE_DATE_EPOCH
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "package.sh: note: the work tree has uncommitted changes; the artifacts are of the work tree, not of $revision" >&2
  revision="$revision-dirty"
fi
# Where the image says its source lives: PACKAGE_SOURCE_URL, else Cargo.toml's repository.
source_url=${PACKAGE_SOURCE_URL:-$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)}

dist=$repo/dist
pkg_target=${CARGO_TARGET_DIR:-$repo/target}/package
# All three start from an empty dist/, so SHA256SUMS lists nothing left from older builds.
if want archive && want image && want deb; then rm -rf "$dist"; fi
mkdir -p "$dist" "$pkg_target"
work=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-package.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

need_apt() {
  local pkgs=()
  local tool pkg
  while [ $# -gt 0 ]; do tool=$1 pkg=$2; shift 2; command -v "$tool" >/dev/null || pkgs+=("$pkg"); done
  [ "${#pkgs[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || { echo "package.sh: missing ${pkgs[*]}" >&2; exit 1; }
  echo "== installing ${pkgs[*]}" >&2
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
}

# The build, with the flags that make it independent of where it runs. Paths embedded in
# the binary (panic locations of dependencies) then read /cargo/registry/src/… and
# /build/…; the workspace's own files are relative already.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
build() { # SRC_DIR TARGET_DIR static|dynamic
  local src=$1 dir=$2 link=$3
  # CARGO_ENCODED_RUSTFLAGS (0x1f between flags), so a path with a space stays one flag.
  local flags
  flags=$(printf '%s\x1f' "--remap-path-prefix=$src=/build/$name" \
    "--remap-path-prefix=$cargo_home=/cargo" "--remap-path-prefix=$dir=/build/target")
  flags=${flags%$'\x1f'}
  local t0=$SECONDS
  if [ "$link" = static ]; then
    (cd "$src" && CARGO_TARGET_DIR=$dir CARGO_ENCODED_RUSTFLAGS=$flags \
      cargo rustc --quiet --release --locked --bin "$name" -- -C target-feature=+crt-static)
  else
    (cd "$src" && CARGO_TARGET_DIR=$dir CARGO_ENCODED_RUSTFLAGS=$flags \
      cargo build --quiet --release --locked --bin "$name")
  fi
  echo "   built $link in $((SECONDS - t0)) s" >&2
}

# The archive from a binary, in a staging directory: sorted entries, owner 0, fixed mtime
# and modes, no gzip name or time, so equal inputs give equal bytes.
pack() { # BINARY OUT.tar.gz
  local bin=$1 out=$2 stage top
  top=$name-$version-$target
  stage=$(mktemp -d "$work/stage.XXXXXX")
  mkdir "$stage/$top"
  install -m 0755 "$bin" "$stage/$top/$name"
  install -m 0644 README.md LICENSE "$stage/$top/"
  (cd "$stage/$top" && sha256sum "$name" LICENSE README.md > SHA256SUMS && chmod 0644 SHA256SUMS)
  tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --mode=go-w -C "$stage" -cf - "$top" | gzip -9 -n > "$out"
}

static_bin=""
static_binary() { # builds once per run; copies the binary out of the shared target directory
  [ -n "$static_bin" ] && return 0
  case "$target" in
    x86_64-unknown-linux-gnu) ;;
    *) echo "package.sh: the static build is made and checked for x86_64-unknown-linux-gnu only, not $target" >&2; exit 1 ;;
  esac
  echo "== static binary (cargo rustc --release -C target-feature=+crt-static)" >&2
  build "$repo" "$pkg_target/shared" static
  static_bin=$work/static/$name
  mkdir -p "$work/static"
  cp "$pkg_target/shared/release/$name" "$static_bin"
}

if want archive; then
  static_binary
  archive=$dist/$name-$version-$target.tar.gz
  pack "$static_bin" "$archive"
  echo "== archive $(basename "$archive") ($(stat -c %s "$archive") bytes)" >&2
  if [ "$once" = 1 ]; then
    echo "   reproducibility build skipped (--once)" >&2
  else
    # The second build: the same files at another path, an empty target directory.
    echo "== reproducibility: a second build from a copy of the sources at another path" >&2
    copy=$work/second/src
    mkdir -p "$copy"
    git ls-files -z --cached --others --exclude-standard \
      | (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) \
      | tar --null -T - -cf - | tar -C "$copy" -xf -
    build "$copy" "$work/second/target" static
    (cd "$copy" && pack "$work/second/target/release/$name" "$work/second/archive.tar.gz")
    one=$(sha256sum < "$archive" | cut -d' ' -f1)
    two=$(sha256sum < "$work/second/archive.tar.gz" | cut -d' ' -f1)
    if [ "$one" != "$two" ]; then
      echo "package.sh: NOT reproducible: the two archives differ ($one, $two)" >&2
      cmp "$static_bin" "$work/second/target/release/$name" >&2 || echo "   (the binaries differ)" >&2
      exit 1
    fi
    echo "   reproducible: both builds give sha256 $one" >&2
  fi
fi

if want image; then
  need_apt buildah buildah
  static_binary
  image=$dist/$name-$version-image.oci.tar
  echo "== image $(basename "$image") (buildah, FROM scratch)" >&2
  # Its own storage, so it never meets other buildah or podman users of this machine.
  ba=(buildah --storage-driver vfs --root "$work/buildah/root" --runroot "$work/buildah/run")
  ctx=$work/image-context
  mkdir -p "$ctx"
  install -m 0755 "$static_bin" "$ctx/$name"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  labels=()
  [ -n "$source_url" ] && labels+=(--label "org.opencontainers.image.source=$source_url")
  "${ba[@]}" build --quiet --timestamp "$SOURCE_DATE_EPOCH" --identity-label=false \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "${labels[@]}" \
    -f packaging/Containerfile -t "localhost/$name:$version" "$ctx" >/dev/null
  # An OCI layout directory, then tarred like the release archive: buildah's own
  # oci-archive writes the build time into the tar, this gives the same bytes each build.
  "${ba[@]}" push --quiet "localhost/$name:$version" "oci:$work/oci-layout:$name:$version"
  tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --mode=go-w -C "$work/oci-layout" -cf "$image" oci-layout index.json blobs
  [ -n "$source_url" ] || echo "   note: no org.opencontainers.image.source label: set repository in Cargo.toml or PACKAGE_SOURCE_URL" >&2
  echo "   $(stat -c %s "$image") bytes" >&2
fi

if want deb; then
  need_apt dpkg-shlibdeps dpkg-dev
  # One known cargo-deb: a newer release may want a newer rustc or lay the package out
  # differently, and CI should change only when this line does.
  if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb_version"; then
    echo "== installing cargo-deb $cargo_deb_version" >&2
    cargo install --locked --quiet cargo-deb --version "$cargo_deb_version"
  fi
  echo "== deb (cargo build --release, dynamically linked; cargo deb)" >&2
  # Same flags and target directory as the static build, so the dependencies are built once.
  build "$repo" "$pkg_target/shared" dynamic
  # The man page and nothing else go where Cargo.toml's deb assets expect them.
  mkdir -p "$pkg_target/shared/release/man"
  packaging/manpage.sh "$pkg_target/shared/release/$name" | gzip -9 -n > "$pkg_target/shared/release/man/$name.1.gz"
  rm -f "$dist/${name}_"*.deb
  CARGO_TARGET_DIR=$pkg_target/shared cargo deb --no-build --locked --quiet --output "$dist" >/dev/null
  deb=$(ls "$dist/${name}_"*.deb)
  echo "   $(basename "$deb") ($(stat -c %s "$deb") bytes)" >&2
fi

# Checksums of every artifact in dist/, for the release page.
(cd "$dist" && rm -f SHA256SUMS && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' \
  | LC_ALL=C sort | xargs -r sha256sum > SHA256SUMS)
echo "== dist/" >&2
(cd "$dist" && ls -l --time-style=+ | sed 1d | awk '{print "   " $5 "\t" $NF}') >&2
