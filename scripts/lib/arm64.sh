# Building for and running on arm64 Linux (aarch64-unknown-linux-gnu) from an amd64 Debian
# machine, with Debian packages only, for package.sh, package-check.sh and test-arm64.sh.
# rustup cannot fetch other targets' standard libraries on these machines; Debian's
# security archive has a newer rustc whose arm64 standard library installs through
# multiarch, so the cross build uses Debian's own cargo and rustc (/usr/bin), never the
# rustup proxies earlier in PATH:
#
#   dpkg --add-architecture arm64
#   apt-get install rustc-web cargo-web libstd-rust-web-dev:arm64   # rustc, cargo, arm64 std
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross     # linker, C for ring, libc.a
#   apt-get install qemu-user-static                                # runs the result
#
#   arm64_toolchain              installs the above when missing (idempotent; apt-get update
#                                only when a package is not found); sets ARM64_TARGET
#   arm64_cargo ARGS...          Debian's cargo with Debian's rustc, the cross linker and
#                                qemu as the runner; the environment is set for this call only
#   arm64_qemu BINARY ARGS...    runs one arm64 binary under qemu-aarch64-static (its own
#                                children must be native: qemu does not follow execve)
#   arm64_world COMMAND ARGS...  runs COMMAND in a private user and mount namespace whose own
#                                binfmt_misc sends every arm64 ELF to qemu-aarch64-static, so
#                                arm64 programs that spawn arm64 programs (the integration
#                                tests spawning the helper) work; the machine's binfmt_misc
#                                is not touched. Every uid and gid maps to itself, so root
#                                stays root and setpriv to other users works as outside.
#                                Needs root and Linux >= 6.7 (binfmt_misc per user namespace)
#
# The arm64 binary needs only libc6:arm64, which the arm64 standard library package pulls in,
# so a dynamically linked one finds /lib/ld-linux-aarch64.so.1 without `qemu -L`.

ARM64_TARGET=aarch64-unknown-linux-gnu
ARM64_PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
  libc6-dev-arm64-cross qemu-user-static)

arm64_toolchain() {
  local missing=() p sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  dpkg --print-foreign-architectures | grep -qx arm64 || {
    echo "== dpkg --add-architecture arm64" >&2
    $sudo dpkg --add-architecture arm64
  }
  for p in "${ARM64_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing the arm64 toolchain: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A new architecture has no package lists yet: update when the install cannot find them.
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
  /usr/bin/rustc --print target-libdir --target "$ARM64_TARGET" >/dev/null \
    || { echo "arm64.sh: /usr/bin/rustc has no $ARM64_TARGET standard library" >&2; return 1; }
}

# As an array too, for commands that take a program and its arguments (arm64_world).
ARM64_CARGO=(env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  /usr/bin/cargo)
arm64_cargo() {
  "${ARM64_CARGO[@]}" "$@"
}

arm64_qemu() {
  qemu-aarch64-static "$@"
}

arm64_world() {
  [ "$(id -u)" = 0 ] || { echo "arm64.sh: running arm64 programs that spawn others needs root" >&2; return 1; }
  local dir; dir=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-arm64.XXXXXX")
  mkfifo "$dir/go"
  # The child waits until its uid and gid maps are written, then mounts a binfmt_misc of
  # its own and registers qemu with the F flag (the interpreter opened now, so it works in
  # any mount namespace or chroot below); it stays mounted, as unmounting drops the entries,
  # and no one outside the namespace sees it. The magic and mask are Debian's
  # /usr/lib/binfmt.d/qemu-aarch64.conf: an ELF64 little-endian executable for EM_AARCH64.
  # `0<&0`: a background command would otherwise read /dev/null, not the caller's stdin.
  # shellcheck disable=SC2016
  unshare --user --mount --propagation private bash -c '
    read -r _ < "$0/go"
    mkdir "$0/binfmt" && mount -t binfmt_misc binfmt_misc "$0/binfmt" || {
      echo "arm64.sh: cannot mount binfmt_misc in a user namespace (Linux >= 6.7 needed)" >&2; exit 1; }
    printf "%s" ":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:$(command -v qemu-aarch64-static):F" \
      > "$0/binfmt/register"
    exec "$@"' "$dir" "$@" 0<&0 &
  local pid=$! rc=0 _
  # The maps can be written once unshare(2) has made the namespace.
  for _ in $(seq 200); do
    [ "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
    sleep 0.01
  done
  { echo "0 0 4294967295" > "/proc/$pid/uid_map" && echo "0 0 4294967295" > "/proc/$pid/gid_map"; } \
    || { kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"; echo "arm64.sh: cannot map uids into the namespace" >&2; return 1; }
  echo go > "$dir/go"
  wait "$pid" || rc=$?
  rm -rf "$dir"
  return "$rc"
}
