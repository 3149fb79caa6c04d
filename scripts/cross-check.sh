#!/usr/bin/env bash
# Build and check the helper for Windows and macOS on a Debian x86_64 machine, with
# Debian's packages only (rustup cannot fetch other targets here): rustc-web/cargo-web
# (Rust 1.96) with rust-web-src, so `-Zbuild-std` builds the standard library for the
# target (RUSTC_BOOTSTRAP=1 on that stable compiler), mingw-w64 to link, wine64 to run.
#
#   scripts/cross-check.sh [windows|macos|all]... [--short] [--zip DIR]   default: all
#
#   windows  x86_64-pc-windows-gnu release build (std built from source, panic=abort),
#            linked with mingw-w64, and under wine64: `version`, a not-found `get`
#            (exactly `credentials not found in native keychain`, exit 1), a real `get`
#            against the loopback fake of ACR and Entra with the default Windows cache
#            (%LOCALAPPDATA%\acr-entra), and the same `get` again with the fake stopped,
#            answered from that cache
#   macos    aarch64-apple-darwin type-check (`cargo check`): there is no macOS SDK here,
#            so nothing is linked or run; ring's C is compiled by clang against a handful
#            of stub headers written to a temp dir (TargetConditionals.h, string.h, ...)
#   --short  skip `cargo clippy -D warnings` for the two targets and the Windows unit
#            tests under wine (the library's tests but the one that reads this
#            platform's defaults as Linux's) (what test.sh runs)
#   --zip DIR  windows: also write DIR/docker-credential-acr-entra-VERSION-x86_64-pc-windows-gnu.zip
#            (the .exe, README.md, LICENSE, SHA256SUMS; fixed timestamps from
#            SOURCE_DATE_EPOCH, default the last commit's time) and rewrite
#            DIR/SHA256SUMS for every file there (`--zip dist` after scripts/package.sh)
#
# Installs what it needs with apt-get when missing (root). Builds go to
# $CARGO_TARGET_DIR/cross (default target/cross), apart from the rustup toolchain's.
# Under wine, two things stand in for what Windows has: bcryptprimitives.dll (wine 8 has
# none; Rust's std imports its ProcessPrng) is a 10-line shim over BCryptGenRandom,
# installed into the throwaway wine prefix only, never shipped; and the fake's server
# certificate names a CRL served on loopback, because wine's chain policy fails a
# certificate without one (CERT_E_REVOCATION_FAILURE) where Windows accepts it.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."
repo=$PWD

name=docker-credential-acr-entra
win=x86_64-pc-windows-gnu mac=aarch64-apple-darwin
modes=() short=0 zip_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    windows|macos) modes+=("$1") ;;
    all) modes+=(windows macos) ;;
    --short) short=1 ;;
    --zip) zip_dir=${2:?--zip needs a directory}; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "cross-check.sh: unknown argument $1 (windows, macos, all, --short, --zip DIR)" >&2; exit 2 ;;
  esac
  shift
done
[ "${#modes[@]}" -gt 0 ] || modes=(windows macos)
want() { local m; for m in "${modes[@]}"; do [ "$m" = "$1" ] && return 0; done; return 1; }

fail() { echo "cross-check.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }
step() { echo "== $*"; }
timed() { # WHAT COMMAND...: run it, say how long it took
  local what=$1 start=$SECONDS; shift
  "$@" || fail "$what"
  ok "$what ($((SECONDS - start)) s)"
}

# Debian's toolchain, named explicitly so the rustup toolchain stays untouched.
packages=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 python3 openssl)
[ "$short" = 1 ] || packages+=(rust-web-clippy)
want windows && packages+=(wine64 binutils-mingw-w64-x86-64)
want macos && packages+=(clang)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing Debian packages: ${missing[*]} (apt-get install them, or run as root)"
  step "apt-get install ${missing[*]}"
  timed "apt-get install" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cargo=(env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}/cross" nice -n 15 /usr/bin/cargo)
out_dir="${CARGO_TARGET_DIR:-$repo/target}/cross"
/usr/bin/rustc --version | grep -q '^rustc 1\.9[6-9]\|^rustc 1\.[1-9][0-9][0-9]' \
  || fail "/usr/bin/rustc is $(/usr/bin/rustc --version); rustc-web 1.96 or later is needed"

work=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-cross.XXXXXX")
crl_pid=""
. scripts/lib/loopback.sh
cleanup() {
  loopback_fake_stop
  if [ -n "$crl_pid" ]; then kill "$crl_pid" 2>/dev/null || true; wait "$crl_pid" 2>/dev/null || true; fi
  if [ -d "$work/wine" ]; then WINEPREFIX="$work/wine" /usr/lib/wine/wineserver -k 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if want macos; then
  step "macOS ($mac): type-check"
  sdk=$work/macos-sdk/usr/include
  mkdir -p "$sdk"
  printf '#define TARGET_OS_MAC 1\n#define TARGET_OS_OSX 1\n#define TARGET_OS_IPHONE 0\n#define TARGET_OS_IOS 0\n#define TARGET_OS_WATCH 0\n#define TARGET_OS_TV 0\n#define TARGET_OS_SIMULATOR 0\n' > "$sdk/TargetConditionals.h"
  printf '#include <stddef.h>\nvoid *memcpy(void *, const void *, size_t);\nvoid *memmove(void *, const void *, size_t);\nvoid *memset(void *, int, size_t);\nint memcmp(const void *, const void *, size_t);\n' > "$sdk/string.h"
  echo 'void abort(void);' > "$sdk/stdlib.h"
  echo '#define assert(x) ((void)0)' > "$sdk/assert.h"
  macos=("${cargo[@]}")
  macos=(env CC_aarch64_apple_darwin=clang SDKROOT="$work/macos-sdk" "${macos[@]}")
  timed "cargo check --target $mac -Zbuild-std" "${macos[@]}" check --locked --quiet -Zbuild-std --target "$mac" --all-targets
  if [ "$short" = 0 ]; then
    timed "cargo clippy --target $mac -- -D warnings" "${macos[@]}" clippy --locked --quiet -Zbuild-std --target "$mac" --all-targets -- -D warnings
  fi
fi

# A CA in wine's machine Root store: the registry value is a serialized certificate
# element (property 32, CERT_CERT_PROP_ID: the DER certificate).
wine_trust() { # CA_PEM
  python3 - "$1" > "$work/ca.reg" <<'PY'
import hashlib, ssl, struct, sys
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())
blob = struct.pack("<III", 32, 1, len(der)) + der
print("REGEDIT4\n")
print("[HKEY_LOCAL_MACHINE\\Software\\Microsoft\\SystemCertificates\\Root\\Certificates\\"
      + hashlib.sha1(der).hexdigest().upper() + "]")
print('"Blob"=hex:' + ",".join(f"{b:02x}" for b in blob) + "\n")
PY
  wine regedit /S "$(wine_path "$work/ca.reg")"
}
wine_path() { echo "Z:${1//\//\\}"; }
wine() { WINEPREFIX="$work/wine" WINEDEBUG=-all /usr/lib/wine/wine64 "$@"; }

# The loopback fake's PKI as loopback_pki makes it, plus a CRL distribution point on a
# loopback port and an empty CRL served there (wine fails a certificate without one).
wine_pki() { # DIR NAME
  local pki=$1 registry=$2
  mkdir -p "$pki"
  crl_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=acr-entra cross-check CA" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/srv.key" -out "$pki/srv.csr" -subj "/CN=$registry" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:login.microsoftonline.com,IP:127.0.0.1\nbasicConstraints=CA:false\nextendedKeyUsage=serverAuth\ncrlDistributionPoints=URI:http://127.0.0.1:%s/ca.crl\n' \
    "$registry" "$crl_port" > "$pki/ext"
  openssl x509 -req -in "$pki/srv.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/srv.pem" -days 2 -extfile "$pki/ext" 2>/dev/null
  : > "$pki/index.txt"; echo 01 > "$pki/crlnumber"
  printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\ncrlnumber=%s/crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n' "$pki" "$pki" > "$pki/ca.cnf"
  openssl ca -config "$pki/ca.cnf" -gencrl -keyfile "$pki/ca.key" -cert "$pki/ca.pem" -out "$pki/crl.pem" 2>/dev/null
  mkdir -p "$pki/www" && openssl crl -in "$pki/crl.pem" -outform DER -out "$pki/www/ca.crl"
  python3 -m http.server "$crl_port" --bind 127.0.0.1 --directory "$pki/www" >"$pki/crl.log" 2>&1 &
  crl_pid=$!
}

if want windows; then
  step "Windows ($win): build, link, run under wine"
  remap=$(printf '%s\x1f' "--remap-path-prefix=$repo=/build/$name" \
    "--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" "--remap-path-prefix=/usr/lib/rustlib/src/rust=/rustc")
  windows=(env CARGO_ENCODED_RUSTFLAGS="${remap%$'\x1f'}" "${cargo[@]}")
  timed "cargo build --release --target $win -Zbuild-std=std,panic_abort" \
    "${windows[@]}" build --locked --quiet --release -Zbuild-std=std,panic_abort --target "$win"
  exe=$out_dir/$win/release/$name.exe
  # Only system DLLs: no libgcc_s, libwinpthread or libstdc++ beside the .exe.
  dlls=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' | sort -fu | tr '\n' ' ')
  case "$dlls" in *lib*) fail "the .exe needs non-system DLLs: $dlls" ;; esac
  ok "$name.exe: $(stat -c %s "$exe") bytes, imports only $dlls"
  if [ "$short" = 0 ]; then
    timed "cargo clippy --target $win -- -D warnings" "${cargo[@]}" clippy --locked --quiet -Zbuild-std --target "$win" --all-targets -- -D warnings
  fi

  start=$SECONDS
  wine wineboot --init >"$work/wineboot.log" 2>&1 || { cat "$work/wineboot.log" >&2; fail "wineboot"; }
  cat > "$work/shim.c" <<'C'
#include <windows.h>
#include <bcrypt.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
C
  printf 'LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n' > "$work/shim.def"
  x86_64-w64-mingw32-gcc -O2 -shared -o "$work/wine/drive_c/windows/system32/bcryptprimitives.dll" \
    "$work/shim.c" "$work/shim.def" -lbcrypt
  ok "wine prefix with the ProcessPrng shim ($((SECONDS - start)) s)"

  # Scripts compare the first two words; the build's details follow in parentheses.
  rc=0; out=$(wine "$exe" version | tr -d '\r') || rc=$?
  out=${out%% (*}
  [ "$rc" = 0 ] && [ "$out" = "$name $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" ] \
    || fail "version under wine: exit $rc: $out"
  ok "wine: version: $out"
  rc=0; out=$(printf docker.io | wine "$exe" get) || rc=$?
  [ "$out:$rc" = "credentials not found in native keychain:1" ] || fail "get docker.io under wine: exit $rc: $out"
  ok "wine: get docker.io: credentials not found in native keychain, exit 1"

  registry=contoso.azurecr.io
  wine_pki "$work/pki" "$registry"
  loopback_fake "$work" --service "$registry" || fail "the loopback fake did not start"
  wine_trust "$work/pki/ca.pem"
  read -r client_id client_secret tenant < <(cd tests/e2e && python3 -c \
    'import fakes; print(fakes.CLIENT_ID, fakes.CLIENT_SECRET, fakes.TENANT)')
  real_get() { # EXPECTATION: the default cache (%LOCALAPPDATA%\acr-entra), a client secret
    printf '%s' "$registry" | env -i HOME="$work" PATH=/usr/bin:/bin WINEPREFIX="$work/wine" WINEDEBUG=-all \
      ACR_ENTRA_CONNECT_TO="$registry:443:127.0.0.1:$FAKE_PORT,login.microsoftonline.com:443:127.0.0.1:$FAKE_PORT" \
      AZURE_CLIENT_ID="$client_id" AZURE_CLIENT_SECRET="$client_secret" AZURE_TENANT_ID="$tenant" \
      /usr/lib/wine/wine64 "$exe" get
  }
  check_answer() {
    python3 - "$1" "$registry" <<'PY'
import json, sys
answer = json.loads(sys.argv[1])
assert set(answer) == {"ServerURL", "Username", "Secret"}, answer.keys()
assert answer["ServerURL"] == sys.argv[2]
assert answer["Username"] == "00000000-0000-0000-0000-000000000000"
assert answer["Secret"].count(".") == 2, "the secret is not a JWT"
PY
  }
  rc=0; first=$(real_get) || rc=$?
  [ "$rc" = 0 ] && check_answer "$first" || fail "real get under wine: exit $rc: $first"
  cache=$(find "$work/wine/drive_c/users" -path '*/AppData/Local/acr-entra' -type d)
  [ -n "$cache" ] && ls "$cache" | grep -q '^token-.*\.json$' || fail "no token file in %LOCALAPPDATA%\\acr-entra"
  ok "wine: get $registry: the null GUID and a refresh token from the fake, cached in ${cache#"$work/wine/drive_c/"}"
  loopback_fake_stop
  rc=0; second=$(real_get) || rc=$?
  [ "$rc" = 0 ] && [ "$second" = "$first" ] || fail "get from the cache under wine: exit $rc: $second"
  ok "wine: the same get with the fake stopped: the same answer, from the cache"

  if [ "$short" = 0 ]; then
    tests=$("${cargo[@]}" test --locked --quiet --no-run -Zbuild-std --target "$win" --lib --message-format=json 2>/dev/null \
      | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])') \
      || fail "building the unit tests for $win"
    start=$SECONDS
    wine "$tests" --quiet --skip config::tests::cache_and_config_locations > "$work/unit.log" 2>&1 \
      || { cat "$work/unit.log" >&2; fail "unit tests under wine"; }
    ok "wine: unit tests: $(grep '^test result' "$work/unit.log") ($((SECONDS - start)) s)"
  fi

  if [ -n "$zip_dir" ]; then
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
    epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
    mkdir -p "$zip_dir"
    zip=$(cd "$zip_dir" && pwd)/$name-$version-$win.zip
    top=$name-$version-$win
    python3 - "$zip" "$top" "$epoch" "$exe" README.md LICENSE <<'PY'
# Fixed order, times and attributes: equal inputs give equal bytes.
import hashlib, os, sys, time, zipfile
out, top, epoch, exe, *docs = sys.argv[1:]
when = time.gmtime(max(int(epoch), 315532800))[:6]
files = [(os.path.basename(exe), open(exe, "rb").read())] + [(d, open(d, "rb").read()) for d in docs]
sums = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in files).encode()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for n, b in files + [("SHA256SUMS", sums)]:
        info = zipfile.ZipInfo(f"{top}/{n}", when)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o100755 if n.endswith(".exe") else 0o100644) << 16
        info.create_system = 3
        z.writestr(info, b)
PY
    ok "$(basename "$zip"): $(stat -c %s "$zip") bytes"
    # One SHA256SUMS for everything the directory holds, as scripts/package.sh writes it
    # for the Linux artifacts, so a download of the zip is checked like theirs.
    (cd "$zip_dir" && rm -f SHA256SUMS && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' \
      | LC_ALL=C sort | xargs -r sha256sum > SHA256SUMS && sha256sum --quiet -c SHA256SUMS) \
      || fail "SHA256SUMS in $zip_dir"
    (cd "$work" && rm -rf unzipped && mkdir unzipped && cd unzipped && python3 -m zipfile -e "$zip" . \
      && cd "$top" && sha256sum --quiet -c SHA256SUMS) || fail "the zip's own SHA256SUMS"
    ok "$zip_dir/SHA256SUMS lists $(wc -l < "$zip_dir/SHA256SUMS") files, the zip among them"
  fi
fi
echo "cross-check.sh: all checks passed"
