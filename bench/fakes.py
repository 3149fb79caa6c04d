#!/usr/bin/env python3
"""Loopback fakes for scripts/bench.sh: one HTTPS server on 127.0.0.1 that plays
both the ACR registry (GET /v2/ challenge, POST /oauth2/exchange) and Microsoft Entra
ID's token endpoint (POST /{tenant}/oauth2/v2.0/token, client credentials).

The helper reaches it as myacr.azurecr.io and as login.microsoftonline.com (the
default Entra authority) through ACR_ENTRA_CONNECT_TO; the certificate (made by
bench.sh with a throwaway CA) names both. GET /_state answers the counters, so the
benchmark can tell how many exchanges a burst of concurrent gets caused.

Usage: fakes.py CERT KEY PORTFILE   (writes the port to PORTFILE once listening)
Only dummies here: the tokens are unsigned JWT-shaped strings with the claims the
helper reads (tid, exp).
"""

import base64
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "myacr.azurecr.io"
TENANT = "bench000-0000-4000-8000-000000000001"
LOCK = threading.Lock()
STATE = {"challenges": 0, "entra": 0, "exchanges": 0}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    head = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{b64u(json.dumps(claims).encode())}.c2ln"


def count(name):
    with LOCK:
        STATE[name] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the body would wait
    # for the client's delayed ACK (40 ms on Linux loopback) and the fake, not the
    # helper, would dominate every mint.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def send(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/v2/":
            count("challenges")
            realm = f'Bearer realm="https://{HOST}/oauth2/token",service="{HOST}"'
            self.send(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                      [("Www-Authenticate", realm)])
        elif self.path == "/_state":
            with LOCK:
                self.send(200, dict(STATE))
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        self.drain()
        now = int(time.time())
        if self.path == "/oauth2/exchange":
            count("exchanges")
            token = jwt({"iss": "Azure Container Registry", "aud": HOST, "tenant": TENANT,
                         "exp": now + 3 * 3600, "iat": now, "grant_type": "refresh_token"})
            self.send(200, {"refresh_token": token})
        elif self.path.endswith("/oauth2/v2.0/token"):
            count("entra")
            token = jwt({"aud": "https://containerregistry.azure.net", "tid": TENANT,
                         "exp": now + 3600, "iat": now})
            self.send(200, {"token_type": "Bearer", "expires_in": 3599,
                            "ext_expires_in": 3599, "access_token": token})
        else:
            self.send(404, {"error": "not found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of 64 helpers connects at once


def main():
    cert, key, portfile = sys.argv[1:4]
    srv = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
