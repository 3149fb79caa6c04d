#!/usr/bin/env bash
# Build the release artifacts into dist/, the way platform teams install credential
# helpers: a Debian package, a release archive with checksums, and a scratch image to copy
# the binary from. scripts/package-check.sh installs and runs what this builds.
#
#   scripts/package.sh [deb|archive|image|all]... [--once]      default: all
#
# Each for amd64 (x86_64-unknown-linux-gnu, the build machine) and arm64
# (aarch64-unknown-linux-gnu, cross-built with Debian's toolchain: scripts/lib/arm64.sh);
# ARM64=0 builds amd64 only.
#
#   deb      dist/docker-credential-acr-entra_VERSION-1_ARCH.deb (amd64, arm64) with
#            cargo-deb (metadata in Cargo.toml): the binary linked against the system's
#            glibc, as Debian packages are (amd64: as `cargo release-dynamic` links it),
#            at /usr/bin; README, copyright, man page (packaging/manpage.sh, from the
#            binary's --help and the README's variables), bash and zsh completions;
#            Depends from dpkg-shlibdeps; no maintainer scripts
#   archive  dist/docker-credential-acr-entra-VERSION-TARGET.tar.gz (both targets): the
#            statically linked binary, README.md, LICENSE and SHA256SUMS. Built twice, the
#            second time from a copy of the sources at another path into an empty target
#            directory, and the two archives compared byte for byte: the script fails
#            unless they are equal (1.5 to 3 minutes more per target on two cores)
#   image    dist/docker-credential-acr-entra-VERSION-image.oci.tar: an OCI image index
#            for linux/amd64 and linux/arm64, each FROM scratch with its static binary at
#            /docker-credential-acr-entra and a CA bundle, labelled, built with buildah
#            (packaging/Containerfile); the local images live in the script's own buildah
#            storage, which is deleted on exit: load the OCI archive with skopeo or podman
#   --once   archive: build once, skip the reproducibility build
#
# Always writes dist/SHA256SUMS for what dist/ holds (`all` empties dist/ first). Installs
# what it needs when missing: cargo-deb (cargo install --locked), buildah and dpkg-dev
# (apt-get), and the arm64 toolchain (scripts/lib/arm64.sh: Debian packages only). Builds are reproducible: SOURCE_DATE_EPOCH (default: the last commit's time)
# fixes every timestamp, --remap-path-prefix takes the build machine's paths out of the
# binary, tar entries are sorted with owner 0 and that mtime, gzip stores no name or time.
# Builds go to $CARGO_TARGET_DIR/package (default target/package), apart from `cargo
# build`'s, because the remapping flags would rebuild every crate there: amd64 in shared/,
# arm64 in arm64/ (another compiler, so nothing would be shared).
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
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $arg (deb, archive, image, all, --once)" >&2; exit 2 ;;
  esac
done
[ "${#modes[@]}" -gt 0 ] || modes=(archive image deb)
want() { local m; for m in "${modes[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target=$(rustc -vV | sed -n 's/^host: //p')
case "$target" in
  x86_64-unknown-linux-gnu) ;;
  *) echo "package.sh: the artifacts are built on x86_64-unknown-linux-gnu only, not $target" >&2; exit 1 ;;
esac
arches=(amd64)
if [ "${ARM64:-1}" != 0 ]; then
  arches+=(arm64)
  . scripts/lib/arm64.sh
  arm64_toolchain
fi
triple() { case "$1" in amd64) echo "$target" ;; arm64) echo "$ARM64_TARGET" ;; esac; }
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
# `version` names the commit the artifacts were built from (build.rs), dirty included.
export ACR_ENTRA_COMMIT=$revision
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
# arm64 builds with Debian's cargo and rustc (scripts/lib/arm64.sh) and puts the binary in
# TARGET_DIR/aarch64-unknown-linux-gnu/release.
build() { # SRC_DIR TARGET_DIR static|dynamic amd64|arm64
  local src=$1 dir=$2 link=$3 arch=$4 cargo=(cargo) tgt=()
  if [ "$arch" = arm64 ]; then cargo=("${ARM64_CARGO[@]}"); tgt=(--target "$ARM64_TARGET"); fi
  # CARGO_ENCODED_RUSTFLAGS (0x1f between flags), so a path with a space stays one flag.
  local flags
  flags=$(printf '%s\x1f' "--remap-path-prefix=$src=/build/$name" \
    "--remap-path-prefix=$cargo_home=/cargo" "--remap-path-prefix=$dir=/build/target")
  flags=${flags%$'\x1f'}
  local t0=$SECONDS
  if [ "$link" = static ]; then
    (cd "$src" && CARGO_TARGET_DIR=$dir CARGO_ENCODED_RUSTFLAGS=$flags \
      "${cargo[@]}" rustc "${tgt[@]}" --quiet --release --locked --bin "$name" -- -C target-feature=+crt-static)
  elif [ "$arch" = amd64 ]; then
    # The flags of `cargo release-dynamic` (.cargo/config.toml), so the package holds
    # the binary ./install.sh builds: the unwinder linked in, libc.so.6 the one library
    # (dpkg-shlibdeps then no longer lists libgcc-s1).
    (cd "$src" && CARGO_TARGET_DIR=$dir CARGO_ENCODED_RUSTFLAGS=$flags \
      "${cargo[@]}" rustc "${tgt[@]}" --quiet --release --locked --bin "$name" -- -l static=gcc_eh)
  else
    # arm64: plain `cargo build --release`, as install.sh builds on hosts other than
    # x86_64 (the release-dynamic flags are checked on x86_64 only).
    (cd "$src" && CARGO_TARGET_DIR=$dir CARGO_ENCODED_RUSTFLAGS=$flags \
      "${cargo[@]}" build "${tgt[@]}" --quiet --release --locked --bin "$name")
  fi
  echo "   built $arch $link in $((SECONDS - t0)) s" >&2
}

# The archive from a binary, in a staging directory: sorted entries, owner 0, fixed mtime
# and modes, no gzip name or time, so equal inputs give equal bytes.
pack() { # BINARY TRIPLE OUT.tar.gz
  local bin=$1 out=$3 stage top
  top=$name-$version-$2
  stage=$(mktemp -d "$work/stage.XXXXXX")
  mkdir "$stage/$top"
  install -m 0755 "$bin" "$stage/$top/$name"
  install -m 0644 README.md LICENSE "$stage/$top/"
  (cd "$stage/$top" && sha256sum "$name" LICENSE README.md > SHA256SUMS && chmod 0644 SHA256SUMS)
  tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --mode=go-w -C "$stage" -cf - "$top" | gzip -9 -n > "$out"
}

# Where each architecture's builds go, and where cargo leaves the release binary there.
build_dir() { case "$1" in amd64) echo "$pkg_target/shared" ;; arm64) echo "$pkg_target/arm64" ;; esac; }
release_dir() { # TARGET_DIR ARCH
  case "$2" in amd64) echo "$1/release" ;; arm64) echo "$1/$ARM64_TARGET/release" ;; esac
}

declare -A static_bins=()
static_binary() { # ARCH; builds once per run; copies the binary out of the shared target directory
  local arch=$1
  [ -n "${static_bins[$arch]:-}" ] && return 0
  echo "== $arch static binary (cargo rustc --release -C target-feature=+crt-static)" >&2
  build "$repo" "$(build_dir "$arch")" static "$arch"
  mkdir -p "$work/static-$arch"
  cp "$(release_dir "$(build_dir "$arch")" "$arch")/$name" "$work/static-$arch/$name"
  static_bins[$arch]=$work/static-$arch/$name
}

if want archive; then
  for arch in "${arches[@]}"; do
    static_binary "$arch"
    archive=$dist/$name-$version-$(triple "$arch").tar.gz
    pack "${static_bins[$arch]}" "$(triple "$arch")" "$archive"
    echo "== archive $(basename "$archive") ($(stat -c %s "$archive") bytes)" >&2
    if [ "$once" = 1 ]; then
      echo "   reproducibility build skipped (--once)" >&2
      continue
    fi
    # The second build: the same files at another path, an empty target directory.
    echo "== reproducibility: a second $arch build from a copy of the sources at another path" >&2
    second=$work/second-$arch
    copy=$second/src
    mkdir -p "$copy"
    git ls-files -z --cached --others --exclude-standard \
      | (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) \
      | tar --null -T - -cf - | tar -C "$copy" -xf -
    build "$copy" "$second/target" static "$arch"
    second_bin=$(release_dir "$second/target" "$arch")/$name
    (cd "$copy" && pack "$second_bin" "$(triple "$arch")" "$second/archive.tar.gz")
    one=$(sha256sum < "$archive" | cut -d' ' -f1)
    two=$(sha256sum < "$second/archive.tar.gz" | cut -d' ' -f1)
    if [ "$one" != "$two" ]; then
      echo "package.sh: NOT reproducible ($arch): the two archives differ ($one, $two)" >&2
      cmp "${static_bins[$arch]}" "$second_bin" >&2 || echo "   (the binaries differ)" >&2
      exit 1
    fi
    echo "   reproducible: both $arch builds give sha256 $one" >&2
    rm -rf "$second"
  done
fi

if want image; then
  need_apt buildah buildah
  image=$dist/$name-$version-image.oci.tar
  echo "== image $(basename "$image") (buildah, FROM scratch, linux/${arches[*]})" >&2
  # Its own storage, so it never meets other buildah or podman users of this machine.
  ba=(buildah --storage-driver vfs --root "$work/buildah/root" --runroot "$work/buildah/run")
  labels=()
  [ -n "$source_url" ] && labels+=(--label "org.opencontainers.image.source=$source_url")
  # One image per platform (FROM scratch has no RUN step, so nothing runs under emulation),
  # then an image index naming both, in the order built.
  "${ba[@]}" manifest create "localhost/$name:$version" >/dev/null
  for arch in "${arches[@]}"; do
    static_binary "$arch"
    ctx=$work/image-context-$arch
    mkdir -p "$ctx"
    install -m 0755 "${static_bins[$arch]}" "$ctx/$name"
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    "${ba[@]}" build --quiet --timestamp "$SOURCE_DATE_EPOCH" --identity-label=false \
      --platform "linux/$arch" \
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "${labels[@]}" \
      -f packaging/Containerfile -t "localhost/$name:$version-$arch" "$ctx" >/dev/null
    "${ba[@]}" manifest add "localhost/$name:$version" "containers-storage:localhost/$name:$version-$arch" >/dev/null
  done
  # An OCI layout directory, then tarred like the release archive: buildah's own
  # oci-archive writes the build time into the tar, this gives the same bytes each build.
  "${ba[@]}" manifest push --quiet --all "localhost/$name:$version" "oci:$work/oci-layout:$name:$version"
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
  for arch in "${arches[@]}"; do
    echo "== $arch deb (release build, dynamically linked; cargo deb)" >&2
    # Same flags and target directory as the static build, so the dependencies are built once.
    dir=$(build_dir "$arch")
    build "$repo" "$dir" dynamic "$arch"
    rel=$(release_dir "$dir" "$arch")
    # The man page and nothing else go where Cargo.toml's deb assets expect them; the
    # arm64 binary writes its own --help under qemu.
    run_bin=$rel/$name
    if [ "$arch" = arm64 ]; then
      run_bin=$work/$name-arm64
      printf '#!/bin/sh\nexec qemu-aarch64-static %q "$@"\n' "$rel/$name" > "$run_bin"
      chmod 0755 "$run_bin"
    fi
    mkdir -p "$rel/man"
    packaging/manpage.sh "$run_bin" | gzip -9 -n > "$rel/man/$name.1.gz"
    rm -f "$dist/${name}_"*"_$arch.deb"
    deb_target=()
    [ "$arch" = arm64 ] && deb_target=(--target "$ARM64_TARGET")
    # Depends: dpkg-shlibdeps reads the arm64 binary's NEEDED libraries against libc6:arm64.
    CARGO_TARGET_DIR=$dir cargo deb --no-build --locked --quiet "${deb_target[@]}" --output "$dist" >/dev/null
    deb=$(ls "$dist/${name}_"*"_$arch.deb")
    echo "   $(basename "$deb") ($(stat -c %s "$deb") bytes): Depends: $(dpkg-deb -f "$deb" Depends)" >&2
  done
fi

# Checksums of every artifact in dist/, for the release page.
(cd "$dist" && rm -f SHA256SUMS && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' \
  | LC_ALL=C sort | xargs -r sha256sum > SHA256SUMS)
echo "== dist/" >&2
(cd "$dist" && ls -l --time-style=+ | sed 1d | awk '{print "   " $5 "\t" $NF}') >&2
