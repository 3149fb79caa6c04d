#!/usr/bin/env python3
"""docker-py check for the e2e suite: resolve credentials through the helper, then prove them.

usage: dockerpy_check.py store|helpers SERVER

Writes a docker config with `credsStore` (store) or `credHelpers` (helpers),
lets docker-py's own `docker.auth` resolve SERVER through the helper, and uses
the answer against the registry the way an engine would (fakes.prove).
"""

import json
import os
import sys

import docker.auth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakes  # noqa: E402

NULL_GUID = "00000000-0000-0000-0000-000000000000"


def main():
    mode, server = sys.argv[1], sys.argv[2]
    host = server.split("://")[-1].rstrip("/")
    cfg = {"store": {"credsStore": "acr-entra"},
           "helpers": {"credHelpers": {host: "acr-entra"}}}[mode]
    path = os.path.join(os.environ["E2E_TMP"], f"dockerpy-{mode}.json")
    with open(path, "w") as fh:
        json.dump(cfg, fh)
    auth = docker.auth.resolve_authconfig(docker.auth.load_config(path), server)
    if not auth:
        sys.exit(f"docker-py resolved no credentials for {server}")
    print("resolved user:", auth.get("Username"), "server:", auth.get("ServerAddress"))
    if auth.get("Username") != NULL_GUID:
        sys.exit(f"expected the null GUID user, got {auth.get('Username')!r}")
    fakes.ARGS = type("Args", (), {"ca_cert": os.environ["E2E_CA"]})
    print("proof:", fakes.prove(host, "e2e/hello", "v1", "pull",
                                {"username": auth["Username"], "password": auth["Password"]}))


if __name__ == "__main__":
    main()
