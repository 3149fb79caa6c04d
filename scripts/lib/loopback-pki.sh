# Shared by the scripts that start the loopback fake over HTTPS (bench.sh, fleet.sh):
# a throwaway CA, one server certificate for the registry names and Entra's, and a trust
# bundle of the system roots plus that CA, as a real machine would trust.
#
#   loopback_pki DIR LABEL NAME...   writes DIR/{ca.pem,srv.pem,srv.key,bundle.pem}

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
