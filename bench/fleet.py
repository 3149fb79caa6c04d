#!/usr/bin/env python3
"""The fleet simulation behind scripts/fleet.sh (run that, not this): many machines,
each its own HOME and cache directory, call `get` for a few registries at once against
the shared loopback fake (tests/e2e/fakes.py single) under an admission rate limit.

  cold run     N machines x M registries start `get` together on empty caches:
               failed gets (stderr first lines, counted), exchanges (goal N x M),
               p50/p99/max time to an answer, 429s received.
  refresh run  every machine holds short-lived tokens minted together (no limit while
               minting); from just before the earliest refresh point each machine calls
               `get` once a second, and the fake's per-second counts give the peak of
               exchange attempts and of admitted exchanges. Once with the helper's
               refresh jitter as it is, once with ACR_ENTRA_REFRESH_JITTER=0; whether
               that variable took effect is read from the cache files' refresh_jitter.

Exits non-zero when something is badly wrong (a get failed although the fake sent no
429, a successful get printed invalid JSON); never on a time.
"""

import argparse
import glob
import json
import os
import ssl
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import fakes  # noqa: E402

ENTRA = "login.microsoftonline.com"


class Fleet:
    def __init__(self, a):
        self.a = a
        self.port = int(open(a.port_file).read())
        self.ctx = ssl.create_default_context(cafile=a.ca_bundle)
        self.problems = []

    def call(self, path, body=None):
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, context=self.ctx) as r:
            return json.load(r)

    def env(self, home, extra):
        rules = ",".join(f"{h}:443:127.0.0.1:{self.port}" for h in self.a.registries + [ENTRA])
        return {"HOME": home, "PATH": "/usr/bin:/bin", "ACR_ENTRA_CACHE_DIR": os.path.join(home, "cache"),
                "ACR_ENTRA_CONFIG": os.path.join(home, "no-config.json"),
                "ACR_ENTRA_CONNECT_TO": rules, "SSL_CERT_FILE": self.a.ca_bundle,
                "AZURE_CLIENT_ID": fakes.CLIENT_ID, "AZURE_CLIENT_SECRET": fakes.CLIENT_SECRET,
                "AZURE_TENANT_ID": fakes.TENANT, **extra}

    def machines(self, name):
        homes = []
        for i in range(self.a.machines):
            home = os.path.join(self.a.workdir, name, f"m{i}")
            os.makedirs(os.path.join(home, "cache"), exist_ok=True)
            homes.append(home)
        for r in self.a.registries:
            with open(os.path.join(self.a.workdir, f"{r}.txt"), "w") as f:
                f.write(r + "\n")
        return homes

    def gets(self, homes, extra, tag):
        """Start one `get` per machine and registry at once; reap them all."""
        env_list = [[f"{k}={v}" for k, v in self.env(h, extra).items()] for h in homes]
        started, jobs = {}, {}
        for mi, home in enumerate(homes):
            env = dict(e.split("=", 1) for e in env_list[mi])
            for r in self.a.registries:
                out = os.path.join(home, f"{tag}-{r}")
                acts = [(os.POSIX_SPAWN_OPEN, 0, os.path.join(self.a.workdir, f"{r}.txt"), os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_OPEN, 1, out + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                        (os.POSIX_SPAWN_OPEN, 2, out + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
                pid = os.posix_spawn(self.a.bin, [self.a.bin, "get"], env, file_actions=acts)
                started[pid] = time.monotonic()
                jobs[pid] = out
        results = []
        while jobs:
            pid, status, _ = os.wait4(-1, 0)
            if pid not in jobs:
                continue
            ms = (time.monotonic() - started[pid]) * 1000
            out = jobs.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            text = open(out + ".out").read()
            # The first non-empty stderr line, else stdout's (where the protocol puts errors).
            lines = [l for l in (open(out + ".err").read() + "\n" + text).splitlines() if l.strip()]
            err = lines[0] if lines else ""
            ok_json = False
            try:
                ans = json.loads(text)
                ok_json = bool(ans.get("Username")) and bool(ans.get("Secret"))
            except ValueError:
                pass
            if code == 0 and not ok_json:
                self.problems.append(f"{tag}: exit 0 with invalid JSON: {text[:80]!r}")
            results.append({"ms": ms, "ok": code == 0 and ok_json, "stderr": err})
        return results

    @staticmethod
    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0

    def summary(self, results, before, after):
        failed = [r for r in results if not r["ok"]]
        lines = {}
        for r in failed:
            lines[r["stderr"]] = lines.get(r["stderr"], 0) + 1
        ms = [r["ms"] for r in results]
        ex = lambda s: sum(s["acr"]["exchanges"].values())
        return {"gets": len(results), "failed": len(failed), "failed_stderr": lines,
                "exchanges": ex(after) - ex(before),
                "exchange_429s": after["acr"]["throttled"] - before["acr"]["throttled"],
                "entra_429s": after["entra"]["throttled"] - before["entra"]["throttled"],
                "entra_calls": after["entra"]["calls"] - before["entra"]["calls"],
                "p50_ms": round(self.pct(ms, 50), 1), "p99_ms": round(self.pct(ms, 99), 1),
                "max_ms": round(max(ms), 1) if ms else 0}

    def cold(self):
        self.call("/_config", {"rate": self.a.rate, "token_lifetime": 11700})
        homes = self.machines("cold")
        before = self.call("/_state")
        res = self.gets(homes, {}, "cold")
        s = self.summary(res, before, self.call("/_state"))
        s["goal_exchanges"] = self.a.machines * len(self.a.registries)
        if s["failed"] and s["exchange_429s"] == 0 and s["entra_429s"] == 0:
            self.problems.append(f"cold: {s['failed']} gets failed with no 429 sent: {s['failed_stderr']}")
        return s

    def refresh(self, name, extra):
        extra = {"ACR_ENTRA_MIN_TTL": self.a.min_ttl, **extra}
        self.call("/_config", {"rate": 0, "token_lifetime": self.a.token_lifetime})
        homes = self.machines(name)
        minted = self.gets(homes, extra, "mint")
        if any(not r["ok"] for r in minted):
            self.problems.append(f"{name}: minting without a limit failed: "
                                 f"{[r['stderr'] for r in minted if not r['ok']][:3]}")
        points, jitters = [], []
        min_ttl = float(self.a.min_ttl.rstrip("s"))
        for f in glob.glob(os.path.join(self.a.workdir, name, "m*", "cache", "token-*.json")):
            e = json.load(open(f))
            jitters.append(e.get("refresh_jitter") or 0)
            points.append(e["expires_on"] - min_ttl - (e.get("refresh_jitter") or 0))
        self.call("/_config", {"rate": self.a.rate})
        start, end = min(points) - 2, max(points) + self.a.tail
        while time.time() < start:
            time.sleep(0.2)
        before = self.call("/_state")
        results, ticks = [], 0
        while time.time() < end:
            t = time.time()
            results += self.gets(homes, extra, f"tick{ticks}")
            ticks += 1
            time.sleep(max(0, 1 - (time.time() - t)))
        after = self.call("/_state")
        s = self.summary(results, before, after)

        def peak(key, where="acr"):
            b, a = before[where][key], after[where][key]
            return max([a[k] - b.get(k, 0) for k in a] or [0])
        s.update(ticks=ticks, peak_exchange_attempts_per_s=peak("attempts_by_second"),
                 peak_exchanges_per_s=peak("exchanges_by_second"),
                 peak_entra_calls_per_s=peak("calls_by_second", "entra"),
                 refresh_points_spread_s=round(max(points) - min(points), 1),
                 refresh_jitter_s={"min": min(jitters), "max": max(jitters),
                                   "median": statistics.median(jitters)})
        return s


def main():
    ap = argparse.ArgumentParser()
    for k in ("--bin", "--workdir", "--port-file", "--ca-bundle", "--out", "--table"):
        ap.add_argument(k, required=True)
    ap.add_argument("--registry", dest="registries", action="append", required=True)
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--token-lifetime", type=int, default=120)
    ap.add_argument("--min-ttl", default="30s")
    ap.add_argument("--tail", type=float, default=15, help="seconds polled after the last refresh point")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    fl = Fleet(a)
    n, m = a.machines, len(a.registries)
    print(f"fleet: cold run, {n} machines x {m} registries, --rate {a.rate:g} ...", file=sys.stderr)
    res = {"machines": n, "registries": a.registries, "rate": a.rate, "smoke": a.smoke,
           "token_lifetime": a.token_lifetime, "min_ttl": a.min_ttl, "cold": fl.cold()}
    print("fleet: refresh run, jitter as built ...", file=sys.stderr)
    res["refresh_jitter"] = fl.refresh("refresh-jitter", {})
    print("fleet: refresh run, ACR_ENTRA_REFRESH_JITTER=0 ...", file=sys.stderr)
    res["refresh_nojitter"] = fl.refresh("refresh-nojitter", {"ACR_ENTRA_REFRESH_JITTER": "0"})
    j, nj = res["refresh_jitter"], res["refresh_nojitter"]
    res["jitter_switch_effect"] = (nj["refresh_jitter_s"]["max"] == 0 and j["refresh_jitter_s"]["max"] > 0)
    res["date"] = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    res["problems"] = fl.problems
    c = res["cold"]
    rows = ["| run | gets | failed | exchanges | 429s (exchange / Entra) | p50 ms | p99 ms | max ms | peak exchange attempts/s | peak admitted exchanges/s |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
            f"| cold, {n}×{m} at once | {c['gets']} | {c['failed']} | {c['exchanges']} (goal {c['goal_exchanges']}) | {c['exchange_429s']} / {c['entra_429s']} | {c['p50_ms']} | {c['p99_ms']} | {c['max_ms']} | | |"]
    for label, r in (("refresh, jitter as built", j), ("refresh, ACR_ENTRA_REFRESH_JITTER=0", nj)):
        rows.append(f"| {label} ({r['ticks']} ticks, refresh points over {r['refresh_points_spread_s']} s) | {r['gets']} | {r['failed']} | {r['exchanges']} | {r['exchange_429s']} / {r['entra_429s']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['peak_exchange_attempts_per_s']} | {r['peak_exchanges_per_s']} |")
    rows.append("")
    rows.append(f"{'smoke' if a.smoke else 'full'} run, --rate {a.rate:g} per endpoint, refresh tokens of "
                f"{a.token_lifetime} s with ACR_ENTRA_MIN_TTL={a.min_ttl}, {os.cpu_count()} cores, {res['date']}. "
                f"ACR_ENTRA_REFRESH_JITTER=0 {'took effect' if res['jitter_switch_effect'] else 'had no effect (refresh_jitter in the cache files: ' + str(nj['refresh_jitter_s']) + ')'}.")
    for label, r in (("cold", c), ("refresh, jitter", j), ("refresh, no jitter", nj)):
        for line, count in sorted(r["failed_stderr"].items(), key=lambda x: -x[1])[:5]:
            rows.append(f"- {label}: {count}× `{line[:160]}`")
    table = "\n".join(rows)
    print(table)
    open(a.table, "w").write(table + "\n")
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    for p in fl.problems:
        print(f"fleet: PROBLEM: {p}", file=sys.stderr)
    sys.exit(1 if fl.problems else 0)


if __name__ == "__main__":
    main()
