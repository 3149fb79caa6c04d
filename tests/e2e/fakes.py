#!/usr/bin/env python3
"""Loopback fakes of ACR and Microsoft Entra ID: the one implementation of their wire
formats, used by the end-to-end suite (tests/e2e/run.sh), the benchmark
(scripts/bench.sh) and the fleet simulation (scripts/fleet.sh).

`fakes.py --state-dir DIR ...` (the e2e suite) serves three fakes and a black hole, each on its own
127.0.0.1 port, and writes the ports to STATE_DIR/ports.json:

  entra   HTTPS, test CA. Microsoft Entra ID's token endpoint
          (client credentials with a secret or a client assertion).
  mi      HTTP. App Service style managed-identity endpoint: the system-assigned
          identity, or with client_id=USER_MI_CLIENT_ID a user-assigned one.
  acr     HTTP (nginx terminates TLS in front of it). ACR's token service:
          POST /oauth2/exchange, GET /oauth2/token (Basic), POST /oauth2/token.
  blackhole  a listening socket that never accepts: a black-holed registry.
  github  HTTPS, test CA. GitHub Actions' OIDC token service: `GET .../idtoken?api-version=2.0
          &audience=...` with the job's request token as bearer, answers `{"count":1,"value":JWT}`.
  devops  HTTPS, test CA. Azure DevOps' OIDC service: `POST .../oidctoken?api-version=7.1
          &serviceConnectionId=...` with the job's access token as bearer and
          `X-TFS-FedAuthRedirect: Suppress`, answers `{"oidcToken":JWT}`.

CI jobs and federated credentials are set at run time (on any fake's port):
`POST /_ci_job {"ci":"github"|"devops","job":NAME,"bearer":TOKEN,"subject":SUB[,"connection":ID]}`
registers a job whose bearer token the OIDC fake accepts (and whose tokens name SUB);
`POST /_federated {"client_id","issuer","subject","audience"}` gives an app a federated
credential. An app with federated credentials (CI_CLIENT_ID in the suite) is then
refused by Entra unless its client assertion is an unexpired JWT whose iss, aud and sub
match one of them, with Entra's codes: AADSTS700024 (expired), AADSTS700211 (issuer),
AADSTS700212 (audience), AADSTS700213 (subject). Counters: `oidc.<ci>.by_job`,
`entra.by_subject`, `acr.exchanges_by_subject`, `acr.tokens_by_subject` (registry tokens
granted for a refresh token minted from that subject's assertion) and
`acr.refresh_by_subject` (the refresh tokens' jti). `fakes.py oidc-jwt --iss I --sub S
--aud A [--ttl SECONDS]` prints such a token (GitLab's `id_tokens`, or an expired one).

`--only-identity SERVICE=CLIENT_ID` makes SERVICE a registry on which only that identity
has a role: its exchange refuses Entra tokens of any other app (`appid`) with 401.

`fakes.py single --server-cert C --server-key K --port-file F --service HOST ...`
(the benchmark and the fleet) serves one HTTPS port that plays the registry's
GET /v2/ challenge, ACR's token service and Entra's token endpoint at once, so a
helper reaches every name through ACR_ENTRA_CONNECT_TO. It writes the port to F.

Both modes take the fleet options, also settable at run time through POST /_config
({"rate": R, "token_lifetime": S}): `--rate R` admits at most R requests a second
(bursts of R) to each registry's exchange (ACR throttles per registry) and, separately,
to Entra's token endpoint, and answers
the rest 429 with a whole-second Retry-After, in ACR's and Entra's error shapes;
`--token-lifetime S` sets the ACR refresh token's exp - iat (default 11700, ACR's).

Every fake answers GET /_state with its counters (with per-second counts of exchanges,
exchange attempts, Entra calls and 429s, keyed by Unix second); the token service also takes
POST /_config (JSON) to change behaviour (e.g. reject the ACR audience).

Only test dummies are secrets here. Tokens are real JWTs: Entra tokens are
HS256 with a fixed dummy key; ACR refresh and registry tokens are RS256 with an
x5c header chaining to the test CA, which CNCF distribution verifies. Without a
signing key (single mode, where no registry verifies them) refresh tokens are HS256,
which spares a process start per exchange.
"""

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NULL_GUID = "00000000-0000-0000-0000-000000000000"
ACR_AUD = "https://containerregistry.azure.net"
ARM_AUD = "https://management.azure.com"
TENANT = "e2e00000-0000-4000-8000-000000000001"
CLIENT_ID = "e2e00000-0000-4000-8000-000000000002"
CLIENT_SECRET = "e2e-dummy-client-secret"
MI_HEADER = "e2e-dummy-identity-header"
MI_CLIENT_ID = "e2e00000-0000-4000-8000-000000000003"
USER_MI_CLIENT_ID = "e2e00000-0000-4000-8000-000000000004"
FEDERATED_TOKEN = None  # set from --federated-token-file
# The CI app: no secret, only federated credentials (POST /_federated) for CI jobs' tokens.
CI_CLIENT_ID = "e2e00000-0000-4000-8000-000000000005"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEVOPS_ORG_ID = "5f3c2a1e-0000-4000-8000-00000000d0e5"
DEVOPS_ISSUER = f"https://vstoken.dev.azure.com/{DEVOPS_ORG_ID}"
CI_OIDC_KEY = b"e2e-dummy-ci-oidc-key"  # the fake CI services' "signature" (nobody verifies it)
ENTRA_HMAC_KEY = b"e2e-dummy-entra-signing-key"
ACR_ISSUER = "Azure Container Registry"
# An ACR repository-scoped token or admin user: a plain username/password pair
# that the token service accepts with Basic auth, as ACR does.
SCOPED_USER = "e2e-scoped-token"
SCOPED_PASSWORD = "e2e-dummy-scoped-password"

LOCK = threading.Lock()
STATE = {
    "entra": {"calls": 0, "by_grant": {}, "by_scope": {}, "rejected": 0},
    "mi": {"calls": 0, "rejected": 0},
    "acr": {"challenges": 0, "exchanges": {}, "exchange_rejected": 0, "tokens": 0,
            "token_rejected": 0, "scopes": [], "auds": [], "tokens_by_user": {},
            "exchanges_by_app": {}},
}
STATE["acr"].update({"throttled": 0, "exchanges_by_second": {}, "attempts_by_second": {},
                     "throttled_by_second": {}})
STATE["entra"].update({"throttled": 0, "calls_by_second": {}, "throttled_by_second": {}})
STATE["entra"].update({"by_subject": {}, "federated_rejected": {}})
STATE["acr"].update({"exchanges_by_subject": {}, "tokens_by_subject": {}, "refresh_by_subject": {}})
STATE["oidc"] = {ci: {"requests": 0, "rejected": 0, "by_job": {}, "audiences": {}}
                 for ci in ("github", "devops")}
CI_JOBS = {}     # bearer token -> {"ci", "job", "subject", "connection"}
FEDERATED = []   # {"client_id", "issuer", "subject", "audience"}
# reject_acr_audience: services whose exchange refuses the ACR audience;
# rate: admitted requests per second per endpoint (0: no limit); token_lifetime: seconds.
# clock_skew: seconds the token service's clock is off (refresh tokens are issued and
# checked on it, as a registry with a wrong clock would); the registry access tokens that
# CNCF distribution verifies stay on the real clock, since distribution uses it too.
# only_identity: service -> the one app id (client id) whose tokens its exchange accepts.
CONFIG = {"reject_acr_audience": [], "rate": 0, "token_lifetime": 11700, "clock_skew": 0,
          "only_identity": {}}
ISSUED_REFRESH = set()
ARGS = None


class Admission:
    """A token bucket per endpoint: `CONFIG["rate"]` requests a second, bursts of as many."""

    def __init__(self):
        self.tokens, self.t, self.rate = 0.0, time.monotonic(), 0

    def admit(self):
        """None when admitted, else the whole seconds until a request would be."""
        with LOCK:
            rate, now = CONFIG["rate"], time.monotonic()
            if not rate:
                return None
            if rate != self.rate:  # a new limit starts with a full bucket
                self.tokens, self.rate = float(rate), rate
            self.tokens = min(rate, self.tokens + (now - self.t) * rate)
            self.t = now
            if self.tokens >= 1:
                self.tokens -= 1
                return None
            return max(1, math.ceil((1 - self.tokens) / rate))


LIMITS = {"entra": Admission()}


def exchange_admission(service):
    """The admission of one registry's exchange, made when first asked for."""
    with LOCK:
        return LIMITS.setdefault(f"exchange {service}", Admission())


def per_second(table):
    """Count one event in `table` under the current Unix second (call with LOCK held)."""
    key = str(int(time.time()))
    table[key] = table.get(key, 0) + 1


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token):
    try:
        return json.loads(b64u_decode(token.split(".")[1]))
    except Exception:  # noqa: BLE001 - anything unreadable is "not a JWT"
        return None


def hs256(claims):
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(ENTRA_HMAC_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(sig)}"


def hs256_valid(token):
    parts = token.split(".")
    if len(parts) != 3:
        return False
    sig = hmac.new(ENTRA_HMAC_KEY, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(b64u(sig), parts[2])


def ci_jwt(claims, ttl=300):
    """A CI's OIDC token: RS256-shaped (nobody here verifies it; Entra's fake checks its
    claims), `ttl` seconds of life from now; a negative ttl gives one that expired."""
    now = int(time.time())
    iat = now if ttl > 0 else now + ttl - 600
    claims = {**claims, "iat": iat, "nbf": iat, "exp": now + ttl, "jti": str(uuid.uuid4())}
    head = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "e2e-fake-ci-key"}).encode())
    body = b64u(json.dumps(claims).encode())
    mac = hmac.new(CI_OIDC_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(mac * 8)}"


def entra_error(status, error, code, text):
    """Entra's error answer: AADSTS code first in the description, then its trace lines."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return status, {"error": error,
                    "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\n"
                                         f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
                    "error_codes": [code], "timestamp": stamp, "trace_id": trace,
                    "correlation_id": corr,
                    "error_uri": f"https://login.microsoftonline.com/error?code={code}"}


def federation_refusal(rules, assertion):
    """Entra's verdict on a client assertion for an app with federated credentials: None
    to accept, else (status, body). Expiry first (AADSTS700024), then issuer (700211),
    audience (700212) and subject (700213), as Entra reports them."""
    c = jwt_claims(assertion)
    if not isinstance(c, dict):
        return entra_error(400, "invalid_client", 7000274,
                           "Client assertion failed signature validation.")
    now = int(time.time())
    if not isinstance(c.get("exp"), (int, float)) or c["exp"] <= now:
        return entra_error(400, "invalid_client", 700024,
                           f"Client assertion is not within its valid time range. Current time: "
                           f"{now}, expiry time of assertion {c.get('exp')}.")
    iss, aud, sub = c.get("iss"), c.get("aud"), c.get("sub")
    if not any(r["issuer"] == iss for r in rules):
        return entra_error(400, "invalid_client", 700211,
                           f"No matching federated identity record found for presented "
                           f"assertion issuer '{iss}'. Please check your federated identity "
                           f"credential Subject, Audience and Issuer against the presented assertion.")
    if not any(r["issuer"] == iss and r["audience"] == aud for r in rules):
        return entra_error(400, "invalid_client", 700212,
                           f"No matching federated identity record found for presented "
                           f"assertion audience '{aud}'. Please check your federated identity "
                           f"credential Subject, Audience and Issuer against the presented assertion.")
    if not any(r["issuer"] == iss and r["audience"] == aud and r["subject"] == sub for r in rules):
        return entra_error(400, "invalid_client", 700213,
                           f"No matching federated identity record found for presented "
                           f"assertion subject '{sub}'. Please check your federated identity "
                           f"credential Subject, Audience and Issuer against the presented assertion.")
    return None


def pem_to_der_b64(path):
    lines = [l.strip() for l in open(path) if l.strip() and not l.startswith("-----")]
    return "".join(lines)


def rs256(claims):
    """Sign with the token-signing key via the openssl CLI (no Python crypto needed);
    HS256 with the dummy key when no signing key was given."""
    if not getattr(ARGS, "signing_key", None):
        return hs256(claims)
    head = {"typ": "JWT", "alg": "RS256",
            "x5c": [pem_to_der_b64(ARGS.signing_cert), pem_to_der_b64(ARGS.ca_cert)]}
    signing_input = f"{b64u(json.dumps(head).encode())}.{b64u(json.dumps(claims).encode())}"
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", ARGS.signing_key],
                         input=signing_input.encode(), capture_output=True, check=True).stdout
    return f"{signing_input}.{b64u(sig)}"


def rs256_valid(token, cert_path):
    """Check a client assertion's RS256 signature against the registered certificate."""
    parts = token.split(".")
    if len(parts) != 3 or not cert_path:
        return False
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", cert_path],
                         capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "pub.pem"), "wb") as fh:
            fh.write(pub)
        with open(os.path.join(d, "sig"), "wb") as fh:
            fh.write(b64u_decode(parts[2]))
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "pub.pem"),
                            "-signature", os.path.join(d, "sig")],
                           input=f"{parts[0]}.{parts[1]}".encode(), capture_output=True)
    return r.returncode == 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    role = "?"
    # Headers and body go out as separate writes; with Nagle on, the body would wait
    # for the client's delayed ACK (40 ms on Linux loopback) and the fake, not the
    # helper, would dominate every mint.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # one line per request to the fakes log
        if getattr(ARGS, "quiet", False):
            return
        sys.stderr.write(f"[{self.role}] {self.command} {self.path.split('?')[0]} -> {fmt % args}\n")

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def form(self):
        return urllib.parse.parse_qs(self.body().decode(), keep_blank_values=True)

    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)

    def send(self, code, obj=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_state":
            with LOCK:
                return self.send(200, STATE)
        if path == "/_config" and self.command == "POST":
            with LOCK:
                CONFIG.update(json.loads(self.body() or b"{}"))
            return self.send(200, CONFIG)
        if path == "/_ci_job" and self.command == "POST":
            job = json.loads(self.body() or b"{}")
            with LOCK:
                CI_JOBS[job["bearer"]] = job
                STATE["oidc"][job["ci"]]["by_job"].setdefault(job["job"], 0)
            return self.send(200, {"ok": True})
        if path == "/_federated" and self.command == "POST":
            fic = json.loads(self.body() or b"{}")
            with LOCK:
                FEDERATED.append({k: fic[k] for k in ("client_id", "issuer", "subject", "audience")})
            return self.send(200, {"ok": True})
        return getattr(self, "handle_" + self.role)(path)

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = lambda self: self.route()

    # ------------------------------------------- single: registry + ACR + Entra
    def handle_single(self, path):
        if path == "/v2/":
            return self.challenge()
        if path.startswith("/oauth2/"):
            return self.handle_acr(path)
        return self.handle_entra(path)

    def challenge(self):
        """The registry's anonymous GET /v2/ answer, naming this host's token service."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        with LOCK:
            STATE["acr"]["challenges"] += 1
        realm = f'Bearer realm="https://{host}/oauth2/token",service="{host}"'
        return self.send(401, {"errors": [{"code": "UNAUTHORIZED",
                                           "message": "authentication required"}]},
                         {"Www-Authenticate": realm})

    # -------------------------------------------------- CI OIDC token services
    def ci_request(self, ci):
        """Count the request (per job, by its bearer token); the job, or None."""
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:] if auth[:7].lower() == "bearer " else None
        with LOCK:
            st = STATE["oidc"][ci]
            st["requests"] += 1
            job = CI_JOBS.get(bearer) if bearer else None
            if job and job["ci"] != ci:
                job = None
            if job:
                st["by_job"][job["job"]] = st["by_job"].get(job["job"], 0) + 1
        return job

    def ci_refuse(self, ci, status, obj, headers=None):
        with LOCK:
            STATE["oidc"][ci]["rejected"] += 1
        return self.send(status, obj, headers)

    def handle_github(self, path):
        """GitHub Actions' token service, as `core.getIDToken()` calls it."""
        job = self.ci_request("github")
        q = self.query()
        one = lambda k: (q.get(k) or [""])[0]
        if self.command != "GET" or not path.endswith("/idtoken"):
            return self.ci_refuse("github", 404, {"message": "Not Found"})
        if job is None:
            return self.ci_refuse("github", 401, {"message": "Bad credentials"})
        if one("api-version") != "2.0":
            return self.ci_refuse("github", 400, {"message": "api-version 2.0 is required"})
        # Without `audience` GitHub names the repository owner's URL.
        audience = one("audience") or "https://github.com/octo-org"
        with LOCK:
            auds = STATE["oidc"]["github"]["audiences"]
            auds[audience] = auds.get(audience, 0) + 1
        sub = job["subject"]
        repository = sub[len("repo:"):].split(":")[0] if sub.startswith("repo:") else "octo-org/app"
        env = sub.split(":environment:", 1)[1] if ":environment:" in sub else None
        value = ci_jwt({"iss": GITHUB_ISSUER, "sub": sub, "aud": audience,
                        "repository": repository, "repository_owner": repository.split("/")[0],
                        "ref": "refs/heads/main", "ref_type": "branch", "run_id": job["job"],
                        "event_name": "push", "runner_environment": "self-hosted",
                        "job_workflow_ref": f"{repository}/.github/workflows/ci.yml@refs/heads/main",
                        **({"environment": env} if env else {})})
        return self.send(200, {"count": 1, "value": value})

    def handle_devops(self, path):
        """Azure DevOps' OIDC service, as AzurePipelinesCredential calls it."""
        job = self.ci_request("devops")
        q = self.query()
        one = lambda k: (q.get(k) or [""])[0]
        if self.command != "POST" or not path.endswith("/oidctoken"):
            return self.ci_refuse("devops", 404, {"message": "Not Found"})
        # Without this header Azure DevOps answers a sign-in redirect instead of a 401.
        if self.headers.get("X-TFS-FedAuthRedirect") != "Suppress":
            return self.ci_refuse("devops", 302, None,
                                  {"Location": "https://spsprodweus5.vssps.visualstudio.com/_signin"})
        self.body()
        if job is None:
            return self.ci_refuse("devops", 401, {
                "message": "TF400813: The user is not authorized to access this resource."})
        if one("api-version") != "7.1":
            return self.ci_refuse("devops", 400, {
                "message": "The requested REST API version is not supported.",
                "typeKey": "VssVersionNotSupportedException"})
        connection = one("serviceConnectionId")
        if not connection or connection != job.get("connection"):
            return self.ci_refuse("devops", 404, {
                "message": f"Service connection {connection} not found or the pipeline is not "
                           "authorized to use it."})
        value = ci_jwt({"iss": DEVOPS_ISSUER, "sub": job["subject"], "aud": EXCHANGE_AUDIENCE})
        return self.send(200, {"oidcToken": value})

    # ---------------------------------------------------------------- Entra ID
    def handle_entra(self, path):
        if path.endswith("/.well-known/openid-configuration"):
            tenant = path.strip("/").split("/")[0]
            base = f"https://127.0.0.1:{self.server.server_port}/{tenant}"
            return self.send(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                   "issuer": f"{base}/v2.0",
                                   "authorization_endpoint": f"{base}/oauth2/v2.0/authorize"})
        parts = path.strip("/").split("/")
        if self.command != "POST" or parts[1:] != ["oauth2", "v2.0", "token"]:
            return self.send(404, {"error": "not_found"})
        tenant, f = parts[0], self.form()
        one = lambda k: (f.get(k) or [""])[0]
        wait = LIMITS["entra"].admit()
        if wait:
            with LOCK:
                STATE["entra"]["throttled"] += 1
                per_second(STATE["entra"]["throttled_by_second"])
            # Entra's throttling answer: an OAuth error body and Retry-After.
            return self.send(429, {"error": "temporarily_unavailable",
                                   "error_description": "The request was throttled: too many "
                                   f"requests. Retry after {wait} seconds.",
                                   "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                                   "trace_id": str(uuid.uuid4()),
                                   "correlation_id": str(uuid.uuid4())},
                             {"Retry-After": str(wait)})
        with LOCK:
            STATE["entra"]["calls"] += 1
            per_second(STATE["entra"]["calls_by_second"])
        err = None
        extra = {}
        with LOCK:  # the app's federated credentials: only CI jobs' tokens sign it in
            federated = [r for r in FEDERATED if r["client_id"] == one("client_id")]
        if one("grant_type") != "client_credentials":
            err = "unsupported_grant_type"
        elif tenant != TENANT:
            err = "invalid_tenant"
        elif one("client_id") != CLIENT_ID and not federated:
            err = "unauthorized_client"
        elif one("client_secret"):
            kind = "secret"
            if federated or one("client_secret") != CLIENT_SECRET:
                err = "invalid_client: AADSTS7000215 invalid client secret"
        elif one("client_assertion"):
            assertion = one("client_assertion")
            if one("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                err = "invalid_request: client_assertion_type"
            elif federated:
                kind = "oidc"
                refusal = federation_refusal(federated, assertion)
                if refusal:
                    with LOCK:
                        STATE["entra"]["rejected"] += 1
                        code = str(refusal[1]["error_codes"][0])
                        rej = STATE["entra"]["federated_rejected"]
                        rej[code] = rej.get(code, 0) + 1
                    return self.send(*refusal)
                c = jwt_claims(assertion)
                extra = {"e2e_fic_iss": c["iss"], "e2e_fic_sub": c["sub"]}
            elif FEDERATED_TOKEN and assertion.strip() == FEDERATED_TOKEN:
                kind = "federated"
            else:
                c = jwt_claims(assertion) or {}
                kind = "certificate"
                endpoint = f"https://127.0.0.1:{self.server.server_port}{path}"
                if c.get("iss") != CLIENT_ID or c.get("sub") != CLIENT_ID:
                    err = "invalid_client: AADSTS700027 assertion is not from this client"
                elif c.get("aud") not in (endpoint, [endpoint]) or c.get("exp", 0) < time.time():
                    err = "invalid_client: AADSTS700024 assertion audience or expiry"
                elif not rs256_valid(assertion, getattr(ARGS, "client_cert", None)):
                    err = "invalid_client: AADSTS700027 assertion signature does not match the certificate"
        else:
            err = "invalid_client: no credential"
        scope = one("scope")
        if not err and scope not in (ACR_AUD + "/.default", ARM_AUD + "/.default"):
            err = f"invalid_scope: {scope}"
        if err:
            with LOCK:
                STATE["entra"]["rejected"] += 1
            return self.send(400 if "scope" in err or "grant" in err else 401,
                             {"error": err.split(":")[0], "error_description": err})
        with LOCK:
            STATE["entra"]["by_grant"][kind] = STATE["entra"]["by_grant"].get(kind, 0) + 1
            STATE["entra"]["by_scope"][scope] = STATE["entra"]["by_scope"].get(scope, 0) + 1
            if extra:
                by_sub = STATE["entra"]["by_subject"]
                by_sub[extra["e2e_fic_sub"]] = by_sub.get(extra["e2e_fic_sub"], 0) + 1
        return self.send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                               "access_token": entra_token(scope[: -len("/.default")], kind,
                                                           one("client_id"), extra)})

    # -------------------------------------------------------- managed identity
    def handle_mi(self, path):
        q = self.query()
        with LOCK:
            STATE["mi"]["calls"] += 1
        resource = (q.get("resource") or [""])[0].rstrip("/")
        # A user-assigned identity is asked for by its client id; anything else gets the
        # system-assigned one, as the endpoint of an app with no user-assigned identity of
        # that id would refuse and the helper's callers never rely on that refusal.
        user_assigned = (q.get("client_id") or [""])[0] == USER_MI_CLIENT_ID
        client_id = USER_MI_CLIENT_ID if user_assigned else MI_CLIENT_ID
        with LOCK:
            key = "user_assigned" if user_assigned else "system_assigned"
            STATE["mi"][key] = STATE["mi"].get(key, 0) + 1
        if (self.headers.get("x-identity-header") != MI_HEADER
                or (q.get("api-version") or [""])[0] != "2019-08-01"
                or resource not in (ACR_AUD, ARM_AUD)):
            with LOCK:
                STATE["mi"]["rejected"] += 1
            return self.send(400, {"statusCode": 400, "message": "bad managed identity request"})
        exp = int(time.time()) + 86399
        kind = "user-assigned-identity" if user_assigned else "managed-identity"
        return self.send(200, {"access_token": entra_token(resource, kind, client_id),
                               "expires_on": str(exp), "resource": resource,
                               "token_type": "Bearer", "client_id": client_id})

    # -------------------------------------------------------- ACR token service
    def handle_acr(self, path):
        if path == "/oauth2/exchange" and self.command == "POST":
            return self.exchange()
        if path == "/oauth2/token" and self.command in ("GET", "POST"):
            return self.token()
        return self.send(404, {"errors": [{"code": "NOT_FOUND"}]})

    def exchange(self):
        f = self.form()
        one = lambda k: (f.get(k) or [""])[0]
        wait = exchange_admission(one("service")).admit()
        with LOCK:
            per_second(STATE["acr"]["attempts_by_second"])
            if wait:
                STATE["acr"]["throttled"] += 1
                per_second(STATE["acr"]["throttled_by_second"])
        if wait:
            # ACR's throttling answer: the registry error shape and Retry-After.
            return self.send(429, {"errors": [{"code": "TOOMANYREQUESTS",
                                               "message": "too many requests",
                                               "detail": f"retry after {wait} seconds"}]},
                             {"Retry-After": str(wait)})
        service, tok = one("service"), one("access_token")
        claims = jwt_claims(tok) or {}
        aud = claims.get("aud", "")
        err = None
        if one("grant_type") != "access_token":
            err = "unsupported grant_type"
        elif service not in ARGS.services:
            err = f"unknown service {service}"
        elif not hs256_valid(tok) or claims.get("exp", 0) < time.time():
            err = "invalid or expired Entra token"
        elif aud not in (ACR_AUD, ARM_AUD):
            err = f"wrong audience {aud}"
        elif aud == ACR_AUD and service in CONFIG["reject_acr_audience"]:
            err = "ACR audience token disabled for this registry"
        elif one("tenant") and one("tenant") != claims.get("tid"):
            err = "tenant mismatch"
        elif CONFIG["only_identity"].get(service, claims.get("appid")) != claims.get("appid"):
            err = f"identity {claims.get('appid')} has no role on registry {service}"
        with LOCK:
            STATE["acr"]["auds"].append(aud)
            if err:
                STATE["acr"]["exchange_rejected"] += 1
            else:
                STATE["acr"]["exchanges"][service] = STATE["acr"]["exchanges"].get(service, 0) + 1
                by_app = STATE["acr"]["exchanges_by_app"].setdefault(service, {})
                by_app[claims.get("appid")] = by_app.get(claims.get("appid"), 0) + 1
                per_second(STATE["acr"]["exchanges_by_second"])
                if claims.get("e2e_fic_sub"):
                    by_sub = STATE["acr"]["exchanges_by_subject"]
                    by_sub[claims["e2e_fic_sub"]] = by_sub.get(claims["e2e_fic_sub"], 0) + 1
        if err:
            return self.send(401, {"errors": [{"code": "UNAUTHORIZED", "message": err}]})
        now = int(time.time() + CONFIG["clock_skew"])
        # ACR's refresh-token claim shape (observed): about 3 h 15 min of life by default.
        jti = str(uuid.uuid4())
        # Which CI job's assertion this refresh token comes from (a test-only claim), so the
        # token service can tell whose refresh token a later pull or push used.
        fic = {"e2e_fic_sub": claims["e2e_fic_sub"]} if claims.get("e2e_fic_sub") else {}
        refresh = rs256({"jti": jti, "sub": claims.get("oid"), "nbf": now - 5,
                         "exp": now + int(CONFIG["token_lifetime"]), "iat": now, "iss": ACR_ISSUER, "aud": service,
                         "version": "1.0", "rid": "e2e0000000000000000000000000000a",
                         "grant_type": "refresh_token", "appid": claims.get("appid"),
                         "tenant": claims.get("tid"),
                         "permissions": {"actions": ["read", "write", "delete"], "notActions": None},
                         "roles": [], **fic})
        with LOCK:
            ISSUED_REFRESH.add(refresh)
            if fic:
                STATE["acr"]["refresh_by_subject"].setdefault(fic["e2e_fic_sub"], []).append(jti)
        return self.send(200, {"refresh_token": refresh})

    def token(self):
        q = self.query()
        f = self.form() if self.command == "POST" else {}
        params = {k: q.get(k, []) + f.get(k, []) for k in set(q) | set(f)}
        one = lambda k: (params.get(k) or [""])[0]
        service = one("service")
        scopes = [s for v in params.get("scope", []) for s in v.split(" ") if s]
        user = password = None
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        elif self.command == "POST" and one("grant_type") == "refresh_token":
            user, password = NULL_GUID, one("refresh_token")
        elif self.command == "POST" and one("grant_type") == "password":
            user, password = one("username"), one("password")
        ok, c = False, {}
        if user == NULL_GUID:
            with LOCK:
                known = password in ISSUED_REFRESH
            c = jwt_claims(password or "") or {}
            ok = known and c.get("aud") == service and c.get("exp", 0) > time.time() + CONFIG["clock_skew"]
        elif user == SCOPED_USER:
            ok = password == SCOPED_PASSWORD
        with LOCK:
            STATE["acr"]["scopes"].append(scopes)
            if not ok:
                STATE["acr"]["token_rejected"] += 1
            else:
                STATE["acr"]["tokens"] += 1
                by_user = STATE["acr"]["tokens_by_user"]
                by_user[user] = by_user.get(user, 0) + 1
                if user == NULL_GUID and c.get("e2e_fic_sub"):
                    by_sub = STATE["acr"]["tokens_by_subject"]
                    by_sub[c["e2e_fic_sub"]] = by_sub.get(c["e2e_fic_sub"], 0) + 1
        if not ok or service not in ARGS.services:
            return self.send(401, {"errors": [{"code": "UNAUTHORIZED",
                                               "message": "authentication required"}]},
                             {"WWW-Authenticate": f'Basic realm="{service}"'})
        access = []
        for s in scopes:
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": typ, "name": name,
                           "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        tok = rs256({"jti": str(uuid.uuid4()), "sub": user, "nbf": now - 5, "exp": now + 4500,
                     "iat": now, "iss": ACR_ISSUER, "aud": service, "version": "3.0",
                     "grant_type": "refresh_token", "access": access})
        answer = {"access_token": tok}
        if self.command == "POST" and one("grant_type") == "refresh_token":
            answer["refresh_token"] = password
        return self.send(200, answer)


def entra_token(aud, kind, appid=CLIENT_ID, extra=None):
    now = int(time.time())
    return hs256({**(extra or {}), "aud": aud, "iss": f"https://sts.windows.net/{TENANT}/", "iat": now,
                  "nbf": now - 5, "exp": now + 3599, "tid": TENANT, "appid": appid,
                  "oid": "e2e00000-0000-4000-8000-0000000000" + {"secret": "0a", "certificate": "0b",
                         "federated": "0c", "managed-identity": "0d", "oidc": "10",
                         "user-assigned-identity": "0f"}.get(kind, "0e"),
                  "idtyp": "app", "ver": "1.0", "e2e_kind": kind})


def https_context():
    return ssl.create_default_context(cafile=ARGS.ca_cert)


def prove(host, repo, tag, op, auth):
    """Use the credentials a client built the way an engine would; return the digest."""
    ctx = https_context()
    base = f"https://{host}"
    user = auth.get("username") or auth.get("Username") or ""
    password = auth.get("password") or auth.get("Password") or ""
    ident = auth.get("identitytoken") or auth.get("IdentityToken") or ""
    headers = {}
    try:
        urllib.request.urlopen(urllib.request.Request(base + "/v2/"), context=ctx, timeout=10)
        challenge = ""
    except urllib.error.HTTPError as e:
        if e.code != 401:
            raise RuntimeError(f"/v2/ answered {e.code}")
        challenge = e.headers.get("Www-Authenticate", "")
    actions = "pull" if op == "pull" else "pull,push"
    if challenge.lower().startswith("bearer"):
        params = dict(kv.split("=", 1) for kv in challenge[7:].replace('"', "").split(","))
        scope = f"repository:{repo}:{actions}" if repo else ""
        if ident:
            body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": ident,
                                           "service": params["service"], "scope": scope,
                                           "client_id": "e2e-engine"}).encode()
            req = urllib.request.Request(params["realm"], data=body)
        else:
            q = urllib.parse.urlencode({"service": params["service"], **({"scope": scope} if scope else {})})
            req = urllib.request.Request(params["realm"] + "?" + q)
            if user or password:
                req.add_header("Authorization", "Basic " + base64.b64encode(
                    f"{user}:{password}".encode()).decode())
        try:
            ans = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"token service refused the credentials: {e.code}") from None
        tok = ans.get("token") or ans.get("access_token")
        granted = [a for acc in (jwt_claims(tok) or {}).get("access", []) for a in acc["actions"]]
        if op == "push" and "push" not in granted:
            raise RuntimeError("token does not grant push")
        headers["Authorization"] = "Bearer " + tok
    elif challenge.lower().startswith("basic"):
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if op == "login":
        req = urllib.request.Request(f"{base}/v2/", headers=headers)
        try:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"/v2/ with the credentials answered {e.code}") from None
        return "logged-in"
    accept = ",".join(["application/vnd.docker.distribution.manifest.v2+json",
                       "application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.list.v2+json",
                       "application/vnd.oci.image.index.v1+json"])
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={**headers, "Accept": accept})
    try:
        r = urllib.request.urlopen(req, context=ctx, timeout=10)
    except urllib.error.HTTPError as e:
        if not (op == "push" and e.code == 404):
            raise RuntimeError(f"manifest {repo}:{tag} answered {e.code}") from None
        r = None
    if op == "push":
        # A push needs an upload session: open one and cancel it.
        req = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", data=b"",
                                     method="POST", headers=headers)
        try:
            up = urllib.request.urlopen(req, context=ctx, timeout=10)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"blob upload answered {e.code}") from None
        loc = urllib.parse.urljoin(base + "/", up.headers["Location"])
        try:
            urllib.request.urlopen(urllib.request.Request(loc, method="DELETE", headers=headers),
                                   context=ctx, timeout=10)
        except urllib.error.HTTPError:
            pass
        return "upload-session-opened"
    return r.headers.get("Docker-Content-Digest", "")


class Server(ThreadingHTTPServer):
    """One thread per connection; with TLS, the handshake runs in that thread too, so a
    burst of clients is not served one handshake at a time by the accepting thread."""
    daemon_threads = True
    request_queue_size = 4096  # a fleet of helpers connects at once
    tls = None

    def finish_request(self, request, client_address):
        if not self.tls:
            return super().finish_request(request, client_address)
        # The TLS socket takes over the descriptor, so it is the one to close.
        conn = self.tls.wrap_socket(request, server_side=True)
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


def serve(role, tls=False, block=False):
    cls = type(role + "Handler", (Handler,), {"role": role})
    srv = Server(("127.0.0.1", 0), cls)
    if tls:
        srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.tls.load_cert_chain(ARGS.server_cert, ARGS.server_key)
    if block:
        return srv
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_port


def mint(argv):
    """Fake `az account get-access-token` / `azd auth token`: print a token as they do."""
    tool = argv[argv.index("--tool") + 1]
    aud = ACR_AUD
    for flag in ("--resource", "--scope", "--scopes"):
        if flag in argv:
            aud = argv[argv.index(flag) + 1]
    aud = aud[: -len("/.default")] if aud.endswith("/.default") else aud.rstrip("/")
    tok = entra_token(aud, tool)
    exp = int(time.time()) + 3599
    if tool == "az":
        print(json.dumps({"accessToken": tok, "expiresOn": time.strftime(
            "%Y-%m-%d %H:%M:%S.000000", time.localtime(exp)), "expires_on": exp,
            "subscription": "e2e00000-0000-4000-8000-0000000000aa", "tenant": TENANT,
            "tokenType": "Bearer"}, indent=2))
    else:
        print(json.dumps({"token": tok, "expiresOn": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))}))


def oidc_jwt(argv):
    """Print a CI job's OIDC token (e.g. GitLab's `id_tokens`), as the CI would mint it."""
    ap = argparse.ArgumentParser(prog="fakes.py oidc-jwt")
    ap.add_argument("--iss", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--aud", required=True)
    ap.add_argument("--ttl", type=int, default=300, help="seconds of life; negative: expired")
    ap.add_argument("--claim", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    print(ci_jwt({"iss": a.iss, "sub": a.sub, "aud": a.aud,
                  **dict(kv.split("=", 1) for kv in a.claim)}, a.ttl))


def fleet_options(ap):
    ap.add_argument("--rate", type=float, default=0,
                    help="admitted requests per second, per endpoint (default: no limit)")
    ap.add_argument("--token-lifetime", type=int, default=11700,
                    help="ACR refresh token exp - iat, seconds")


def single(argv):
    """One HTTPS port for the registry challenge, ACR's token service and Entra."""
    global ARGS
    ap = argparse.ArgumentParser(prog="fakes.py single")
    ap.add_argument("--server-cert", required=True)
    ap.add_argument("--server-key", required=True)
    ap.add_argument("--port-file", required=True, help="written once listening")
    ap.add_argument("--service", dest="services", action="append", required=True,
                    help="a registry name this fake answers for (repeatable)")
    ap.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    fleet_options(ap)
    ARGS = ap.parse_args(argv)
    CONFIG.update(rate=ARGS.rate, token_lifetime=ARGS.token_lifetime)
    srv = serve("single", tls=True, block=True)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(str(srv.server_address[1]))
    os.replace(tmp, ARGS.port_file)
    srv.serve_forever()


def main():
    global ARGS, FEDERATED_TOKEN
    if sys.argv[1:2] == ["mint"]:
        return mint(sys.argv[2:])
    if sys.argv[1:2] == ["single"]:
        return single(sys.argv[2:])
    if sys.argv[1:2] == ["oidc-jwt"]:
        return oidc_jwt(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--ca-cert", required=True)
    ap.add_argument("--server-cert", required=True)
    ap.add_argument("--server-key", required=True)
    ap.add_argument("--signing-cert", required=True)
    ap.add_argument("--signing-key", required=True)
    ap.add_argument("--federated-token-file")
    ap.add_argument("--client-cert", help="certificate registered for client assertions")
    ap.add_argument("--service", dest="services", action="append", default=[])
    ap.add_argument("--only-identity", action="append", default=[], metavar="SERVICE=CLIENT_ID",
                    help="a registry on which only this identity has a role (repeatable)")
    fleet_options(ap)
    ARGS = ap.parse_args()
    CONFIG.update(rate=ARGS.rate, token_lifetime=ARGS.token_lifetime,
                  only_identity=dict(o.split("=", 1) for o in ARGS.only_identity))
    if ARGS.federated_token_file:
        FEDERATED_TOKEN = open(ARGS.federated_token_file).read().strip()
    # A black hole: the kernel completes TCP handshakes, nobody ever answers.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    ports = {"entra": serve("entra", tls=True), "mi": serve("mi"),
             "acr": serve("acr"),
             "github": serve("github", tls=True), "devops": serve("devops", tls=True),
             "blackhole": hole.getsockname()[1]}
    tmp = os.path.join(ARGS.state_dir, "ports.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(ports, fh)
    os.rename(tmp, os.path.join(ARGS.state_dir, "ports.json"))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
