#!/usr/bin/env python3
"""The fleet simulation behind scripts/fleet.sh (run that, not this): many machines,
each its own HOME and cache directory, call `get` for a few registries at once against
the shared loopback fake (tests/e2e/fakes.py single) under an admission rate limit.

  cold runs    N machines x M registries start `get` together on empty caches, once
               with the default ACR_ENTRA_TIMEOUT and once with it sized to the
               fleet (N / rate + a margin): failed gets (stderr first lines,
               counted, and whether each is one line naming the throttling party and
               when to come back), Entra requests (goal N: one per machine, shared by
               its registries), exchanges (goal N x M), p50/p99/max time to an
               answer, 429s received.
  refresh run  every machine holds short-lived tokens minted together (no limit while
               minting); from just before the earliest refresh point each machine calls
               `get` once a second, and the fake's per-second counts give the peak of
               exchange attempts and of admitted exchanges, and the peak of re-mints
               (admitted exchanges) per second over their mean across the window the
               default jitter spreads them over (10 % of the lifetime). Token lifetime and ACR_ENTRA_MIN_TTL default to 180 s
               and 30 s, the proportion of ACR's 3-hour token and the 30-minute
               default (one simulated second per real minute). Once with the helper's
               refresh jitter as it is, once with ACR_ENTRA_REFRESH_JITTER=0; whether
               that variable took effect is read from the cache files' refresh_jitter.

Exits non-zero when something is badly wrong (a get failed although the fake sent no
429, a successful get printed invalid JSON); never on a time.
"""

import argparse
import glob
import json
import math
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
            results.append({"ms": ms, "ok": code == 0 and ok_json, "stderr": err,
                            "lines": len([l for l in text.splitlines() if l.strip()])})
        return results

    @staticmethod
    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0

    @staticmethod
    def explained(line):
        """Whether a failure line names the throttling party and when to come back."""
        party = "Entra ID" in line or "exchange" in line or "registry" in line
        when = "come back" in line or "try again" in line
        return party and when and "answered 429" in line

    def summary(self, results, before, after):
        failed = [r for r in results if not r["ok"]]
        lines = {}
        for r in failed:
            lines[r["stderr"]] = lines.get(r["stderr"], 0) + 1
        unexplained = [r for r in failed if not self.explained(r["stderr"]) or r["lines"] != 1]
        ms = [r["ms"] for r in results]
        ex = lambda s: sum(s["acr"]["exchanges"].values())
        return {"gets": len(results), "failed": len(failed), "failed_stderr": lines,
                "failed_unexplained": len(unexplained),
                "failed_max_ms": round(max([r["ms"] for r in failed] or [0]), 1),
                "exchanges": ex(after) - ex(before),
                "exchange_429s": after["acr"]["throttled"] - before["acr"]["throttled"],
                "entra_429s": after["entra"]["throttled"] - before["entra"]["throttled"],
                "entra_calls": after["entra"]["calls"] - before["entra"]["calls"],
                "p50_ms": round(self.pct(ms, 50), 1), "p99_ms": round(self.pct(ms, 99), 1),
                "max_ms": round(max(ms), 1) if ms else 0}

    def cold(self, name, extra):
        self.call("/_config", {"rate": self.a.rate, "token_lifetime": 11700})
        homes = self.machines(name)
        before = self.call("/_state")
        res = self.gets(homes, extra, name)
        s = self.summary(res, before, self.call("/_state"))
        s["goal_exchanges"] = self.a.machines * len(self.a.registries)
        s["goal_entra_calls"] = self.a.machines
        s["timeout"] = extra.get("ACR_ENTRA_TIMEOUT", "10 (default)")
        if s["failed"] and s["exchange_429s"] == 0 and s["entra_429s"] == 0:
            self.problems.append(f"{name}: {s['failed']} gets failed with no 429 sent: {list(s['failed_stderr'])[:3]}")
        if s["failed_unexplained"]:
            self.problems.append(f"{name}: {s['failed_unexplained']} failures are not one line naming "
                                 f"the throttling party and when to come back: {list(s['failed_stderr'])[:3]}")
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
        def remint_peak_over_mean():
            # The mean over the window the default jitter spreads re-mints across (10 % of
            # the lifetime), the same for both runs, so a spike shows as a high ratio.
            b, a = before["acr"]["exchanges_by_second"], after["acr"]["exchanges_by_second"]
            counts = [a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0) > 0]
            window = max(1.0, self.a.token_lifetime * 0.10)
            return round(max(counts) / (sum(counts) / window), 2) if counts else 0
        s.update(ticks=ticks, peak_exchange_attempts_per_s=peak("attempts_by_second"),
                 remint_peak_over_mean=remint_peak_over_mean(),
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
    ap.add_argument("--token-lifetime", type=int, default=180)
    ap.add_argument("--min-ttl", default="30s")
    ap.add_argument("--tail", type=float, default=15, help="seconds polled after the last refresh point")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-refresh", action="store_true", help="the cold runs only")
    ap.add_argument("--margin", type=int, default=20,
                    help="seconds added to machines / rate for the sized ACR_ENTRA_TIMEOUT")
    a = ap.parse_args()
    fl = Fleet(a)
    n, m = a.machines, len(a.registries)
    sized = math.ceil(n / a.rate) + a.margin if a.rate else a.margin
    res = {"machines": n, "registries": a.registries, "rate": a.rate, "smoke": a.smoke,
           "token_lifetime": a.token_lifetime, "min_ttl": a.min_ttl, "sized_timeout": sized}
    print(f"fleet: cold run, {n} machines x {m} registries, --rate {a.rate:g} ...", file=sys.stderr)
    res["cold"] = fl.cold("cold", {})
    print(f"fleet: cold run, ACR_ENTRA_TIMEOUT={sized} ...", file=sys.stderr)
    res["cold_sized"] = fl.cold("cold-sized", {"ACR_ENTRA_TIMEOUT": str(sized)})
    runs = [("cold", res["cold"]), (f"cold, ACR_ENTRA_TIMEOUT={sized}", res["cold_sized"])]
    if not a.no_refresh:
        print("fleet: refresh run, jitter as built ...", file=sys.stderr)
        res["refresh_jitter"] = fl.refresh("refresh-jitter", {})
        print("fleet: refresh run, ACR_ENTRA_REFRESH_JITTER=0 ...", file=sys.stderr)
        res["refresh_nojitter"] = fl.refresh("refresh-nojitter", {"ACR_ENTRA_REFRESH_JITTER": "0"})
        j, nj = res["refresh_jitter"], res["refresh_nojitter"]
        res["jitter_switch_effect"] = (nj["refresh_jitter_s"]["max"] == 0 and j["refresh_jitter_s"]["max"] > 0)
        runs += [("refresh, jitter", j), ("refresh, no jitter", nj)]
    res["date"] = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    res["problems"] = fl.problems
    rows = ["| run | gets | failed (not one explained line) | Entra requests | exchanges | 429s (exchange / Entra) | p50 ms | p99 ms | max ms | slowest failure ms |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for label, key in (("cold, default ACR_ENTRA_TIMEOUT", "cold"), (f"cold, ACR_ENTRA_TIMEOUT={sized}", "cold_sized")):
        c = res[key]
        rows.append(f"| {label}, {n}×{m} at once | {c['gets']} | {c['failed']} ({c['failed_unexplained']}) | {c['entra_calls']} (goal {c['goal_entra_calls']}) | {c['exchanges']} (goal {c['goal_exchanges']}) | {c['exchange_429s']} / {c['entra_429s']} | {c['p50_ms']} | {c['p99_ms']} | {c['max_ms']} | {c['failed_max_ms']} |")
    if not a.no_refresh:
        rows += ["", "| refresh run | ticks | refresh points over s | gets | failed | exchanges | 429s (exchange / Entra) | peak exchange attempts/s | peak admitted exchanges/s | re-mint peak / mean |",
                 "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
        for label, r in (("jitter as built", j), ("ACR_ENTRA_REFRESH_JITTER=0", nj)):
            rows.append(f"| {label} | {r['ticks']} | {r['refresh_points_spread_s']} | {r['gets']} | {r['failed']} | {r['exchanges']} | {r['exchange_429s']} / {r['entra_429s']} | {r['peak_exchange_attempts_per_s']} | {r['peak_exchanges_per_s']} | {r['remint_peak_over_mean']} |")
    rows.append("")
    note = (f"{'smoke' if a.smoke else 'full'} run, --rate {a.rate:g} per registry's exchange and for Entra, "
            f"{os.cpu_count()} cores, {res['date']}.")
    if not a.no_refresh:
        note += (f" Refresh tokens of {a.token_lifetime} s with ACR_ENTRA_MIN_TTL={a.min_ttl}; "
                 f"ACR_ENTRA_REFRESH_JITTER=0 {'took effect' if res['jitter_switch_effect'] else 'had no effect (refresh_jitter in the cache files: ' + str(nj['refresh_jitter_s']) + ')'}.")
    rows.append(note)
    for label, r in runs:
        for line, count in sorted(r["failed_stderr"].items(), key=lambda x: -x[1])[:5]:
            rows.append(f"- {label}: {count}× `{line[:200]}`")
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
