# The loopback fake of ACR and Entra over HTTPS (tests/e2e/fakes.py single), for the
# scripts that point a helper at it (bench.sh, fleet.sh, package-check.sh): a throwaway
# CA, one server certificate for the registry names and Entra's, a trust bundle of the
# system roots plus that CA (as a real machine would trust), and the fake's process.
#
#   loopback_pki DIR LABEL NAME...   writes DIR/{ca.pem,srv.pem,srv.key,bundle.pem}
#   loopback_fake DIR ARGS...        starts the fake with DIR/pki's certificate and
#                                    fakes.py's ARGS (--service NAME, --rate R, ...),
#                                    waits until it listens; sets FAKE_PID, FAKE_PORT
#   loopback_fake_stop               stops it by its PID (for the caller's EXIT trap)
#   loopback_workdir LABEL           a fresh temp dir in $work, removed with the fake
#                                    stopped on exit (for scripts with nothing else to
#                                    clean up)

loopback_pki() {
  local pki=$1 label=$2; shift 2
  mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=acr-entra $label CA" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/srv.key" -out "$pki/srv.csr" -subj "/CN=$1" 2>/dev/null
  local sans; sans=$(printf 'DNS:%s,' "$@")
  printf 'subjectAltName=%sDNS:login.microsoftonline.com,IP:127.0.0.1\nbasicConstraints=CA:false\nextendedKeyUsage=serverAuth\n' "$sans" > "$pki/ext"
  openssl x509 -req -in "$pki/srv.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/srv.pem" -days 2 -extfile "$pki/ext" 2>/dev/null
  local system_bundle=/etc/ssl/certs/ca-certificates.crt
  { [ -f "$system_bundle" ] && cat "$system_bundle"; cat "$pki/ca.pem"; } > "$pki/bundle.pem"
}

loopback_fake() {
  local dir=$1; shift
  python3 tests/e2e/fakes.py single --server-cert "$dir/pki/srv.pem" --server-key "$dir/pki/srv.key" \
    --port-file "$dir/port" --quiet "$@" 2>"$dir/fake.log" &
  FAKE_PID=$!
  local _
  for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
  [ -s "$dir/port" ] || { echo "the loopback fake did not start:" >&2; cat "$dir/fake.log" >&2; return 1; }
  FAKE_PORT=$(cat "$dir/port")
}

loopback_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/acr-entra-$1.XXXXXX")
  trap 'loopback_fake_stop; rm -rf "$work"' EXIT
}

loopback_fake_stop() {
  if [ -n "${FAKE_PID:-}" ]; then kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; fi
  FAKE_PID=""
}
