#!/usr/bin/env python3
"""The benchmark driver behind scripts/bench.sh (run that, not this).

It measures, each as median and p95 over many runs after warm-up, with commands
interleaved run by run (bench/runner.c) so that machine noise hits every figure alike
and the ratios stay comparable across machines:

  spawn group (inside an empty network namespace when `unshare -n` works):
    floor         static C hello that reads stdin and prints a line (the process-start limit)
    rust_static   the same in Rust, statically linked as the helper's static build is
    floor_dynamic the Rust hello dynamically linked (what the loader alone costs)
    floor_dynamic_libc  the same linked as release-dynamic (libc.so.6 its one library)
    get_notfound  our `get` for ghcr.io (not ACR, nothing stored), default build
    get_hit       our `get` for myacr.azurecr.io answered from the cache, default build
    static_*      the same two with the static build (`install.sh --static`)
    before_*      the same two with plain `cargo build --release` (no link options)
    list, version our other cheap verbs
    ecr_hit       docker-credential-ecr-login `get` answered from its cache, offline
    ecr_notfound  docker-credential-ecr-login `get` for ghcr.io
  mint group (loopback fakes, tests/e2e/fakes.py in its `single` mode):
    floor, mint_cold (challenge + Entra + exchange over TLS),
    mint_challenge_cached (Entra + exchange; the host's challenge is in the cache)
  burst: 64 concurrent cold `get`s for one registry: wall time and exchanges made
  size of the release binary, peak RSS and minor page faults of a cache-hit `get`, and
  (with valgrind) instruction counts, which do not move with machine load.

"Default build" is what `./install.sh` installs (`cargo release-dynamic`). With
--variant NAME=BINARY (repeated) it measures only link variants instead: the floors and
each variant's not-found and cache-hit `get`, with the binary's ELF facts (NEEDED
libraries, relocations, highest glibc version needed).

Writes the table to stdout and the same figures as JSON to --out.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import urllib.request

# The shared fake's identities: its Entra accepts only its own tenant, client and secret.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import fakes  # noqa: E402

HOST = "myacr.azurecr.io"
ENTRA = "login.microsoftonline.com"
TENANT = fakes.TENANT
# The ECR helper's static fake credentials (AWS's documented example key, not a secret).
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ECR_ACCOUNT = "123456789012"
ECR_REGION = "us-east-1"
ECR_HOST = f"{ECR_ACCOUNT}.dkr.ecr.{ECR_REGION}.amazonaws.com"

GOALS = {
    "get_hit_vs_floor": 1.6,
    "get_notfound_vs_floor": 1.4,
    "static_get_hit_vs_floor": 1.3,
    "static_get_notfound_vs_floor": 1.2,
    "get_hit_vs_ecr_hit": 0.2,
    "burst_exchanges": 1,
    "binary_mb": 5.0,
}


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def load_average():
    """The 1-minute load average, or "" where there is none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return ""


def spec_block(name, argv, env, stdin, expect=0, clean=None):
    lines = [f"name {name}"] + [f"arg {a}" for a in argv] + [f"env {k}={v}" for k, v in env.items()]
    lines.append(f"stdin {stdin}")
    lines.append(f"expect {expect}")
    if clean:
        lines.append(f"clean {clean[0]} {clean[1]}")
    return "\n".join(lines)


class Bench:
    def __init__(self, a):
        self.a = a
        self.w = a.workdir
        self.port = int(open(a.port_file).read())
        self.results = {}
        self.load_before = load_average()

    # --- helpers -------------------------------------------------------------
    def path(self, *p):
        return os.path.join(self.w, *p)

    def our_env(self, cache_dir):
        return {
            "HOME": self.path("home"),
            "PATH": "/usr/bin:/bin",
            "ACR_ENTRA_CACHE_DIR": cache_dir,
            # Both the registry and Entra's default authority lead to the loopback fake,
            # so a mint takes the same path as in production (one agent, one TLS setup).
            "ACR_ENTRA_CONNECT_TO": f"{HOST}:443:127.0.0.1:{self.port},"
                                    f"{ENTRA}:443:127.0.0.1:{self.port}",
            "SSL_CERT_FILE": self.a.ca_bundle,
            "AZURE_CLIENT_ID": fakes.CLIENT_ID,
            "AZURE_CLIENT_SECRET": fakes.CLIENT_SECRET,
            "AZURE_TENANT_ID": TENANT,
        }

    def ecr_env(self):
        return {
            "HOME": self.path("ecr-home"),
            "PATH": "/usr/bin:/bin",
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ECR_CACHE_DIR": self.path("ecr-cache"),
        }

    def state(self):
        """The fake's counters this benchmark reads: challenges, Entra calls, exchanges."""
        ctx = ssl.create_default_context(cafile=self.a.ca_bundle)
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/_state", context=ctx) as r:
            s = json.load(r)
        return {"challenges": s["acr"]["challenges"], "entra": s["entra"]["calls"],
                "exchanges": sum(s["acr"]["exchanges"].values())}

    def runner_times(self, name, blocks, runs, warmup, netns=False):
        spec = write(self.path(f"{name}.spec"), "\n\n".join(blocks) + "\n")
        out = self.path(f"{name}.json")
        cmd = [self.path("runner"), "times", spec, str(runs), str(warmup), out]
        if netns:
            cmd = ["unshare", "-n"] + cmd
        subprocess.run(cmd, check=True)
        return json.load(open(out))

    # --- setup ---------------------------------------------------------------
    def prepare(self):
        for d in ("home", "hit-cache", "callgrind-cache", "ecr-home", "ecr-cache"):
            os.makedirs(self.path(d), exist_ok=True)
        write(self.path("acr.txt"), HOST + "\n")
        write(self.path("ghcr.txt"), "ghcr.io\n")
        write(self.path("ecr.txt"), ECR_HOST + "\n")
        write(self.path("unused.txt"), "unused\n")
        # One real mint fills the cache the cache-hit figures read. It must reach the
        # fake for all three requests: ACR_ENTRA_CONNECT_TO keeps every request on
        # 127.0.0.1, and a mint that went anywhere else stops the benchmark here.
        before = self.state()
        p = subprocess.run([self.a.bin, "get"], input=HOST + "\n", text=True,
                           capture_output=True, env=self.our_env(self.path("hit-cache")))
        if p.returncode != 0:
            sys.exit(f"bench: priming mint failed: {p.stdout.strip()} {p.stderr.strip()}")
        after = self.state()
        if any(after[k] - before[k] != 1 for k in ("challenges", "entra", "exchanges")):
            sys.exit(f"bench: the priming mint did not go to the loopback fake: {before} -> {after}")
        self.hit_answer = p.stdout
        self.write_ecr_cache()
        self.netns = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
        if not self.netns:
            print("bench: `unshare -n` is not permitted here; running peers without "
                  "a network namespace (their cache hits still make no requests)", file=sys.stderr)

    def write_ecr_cache(self):
        # amazon-ecr-credential-helper 0.6: cache.json in AWS_ECR_CACHE_DIR, keyed by
        # "<region>-<base64(access key id bytes followed by md5 of empty input)>-<registry id>"
        # (its md5Checksum appends the digest of nothing to the text). Entries are valid
        # until half their lifetime has passed. Checked by behaviour below: offline, a
        # hit answers, a wrong key does not.
        prefix = base64.b64encode(AWS_KEY_ID.encode() + hashlib.md5(b"").digest()).decode()
        now = datetime.datetime.now(datetime.timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        entry = {
            "AuthorizationToken": base64.b64encode(b"AWS:bench-dummy-ecr-password").decode(),
            "RequestedAt": now.strftime(fmt),
            "ExpiresAt": (now + datetime.timedelta(hours=12)).strftime(fmt),
            "ProxyEndpoint": f"https://{ECR_HOST}",
            "Service": "ecr",
        }
        cache = {"Registries": {f"{ECR_REGION}-{prefix}-{ECR_ACCOUNT}": entry}, "Version": "1.0"}
        write(self.path("ecr-cache", "cache.json"), json.dumps(cache))

    def check_ecr(self):
        if not shutil.which("docker-credential-ecr-login"):
            return False
        cmd = ["docker-credential-ecr-login", "get"]
        if self.netns:
            cmd = ["unshare", "-n"] + cmd
        p = subprocess.run(cmd, input=ECR_HOST + "\n", text=True, capture_output=True,
                           env=self.ecr_env(), timeout=60)
        ok = p.returncode == 0 and "bench-dummy-ecr-password" in p.stdout
        if not ok:
            print(f"bench: the ECR helper did not answer from its cache: {p.stdout.strip()}",
                  file=sys.stderr)
        return ok

    # --- groups --------------------------------------------------------------
    def floors(self):
        w = self.path
        return [
            spec_block("floor", [w("hello-c")], {}, w("acr.txt")),
            spec_block("rust_static", [w("hello-static")], {}, w("acr.txt")),
            spec_block("floor_dynamic", [w("hello-dynamic")], {}, w("acr.txt")),
            spec_block("floor_dynamic_libc", [w("hello-dynamic-libc")], {}, w("acr.txt")),
        ]

    def gets(self, prefix, binary):
        """Not-found and cache-hit `get` of one binary, named PREFIX_get_notfound/_hit."""
        w = self.path
        env = self.our_env(w("hit-cache"))
        return [
            spec_block(f"{prefix}get_notfound", [binary, "get"], env, w("ghcr.txt"), expect=1),
            spec_block(f"{prefix}get_hit", [binary, "get"], env, w("acr.txt")),
        ]

    def spawn_group(self, runs, warmup):
        b, w = self.a.bin, self.path
        hit_env = self.our_env(w("hit-cache"))
        blocks = self.floors() + self.gets("", b)
        if self.a.bin_static:
            blocks += self.gets("static_", self.a.bin_static)
        if self.a.bin_before:
            blocks += self.gets("before_", self.a.bin_before)
        blocks += [
            spec_block("list", [b, "list"], hit_env, w("unused.txt")),
            spec_block("version", [b, "version"], hit_env, "/dev/null"),
        ]
        self.ecr = self.check_ecr()
        if self.ecr:
            ecr = shutil.which("docker-credential-ecr-login")
            blocks.append(spec_block("ecr_hit", [ecr, "get"], self.ecr_env(), w("ecr.txt")))
            blocks.append(spec_block("ecr_notfound", [ecr, "get"], self.ecr_env(),
                                     w("ghcr.txt"), expect=1))
        self.results["spawn"] = self.runner_times("spawn", blocks, runs, warmup, netns=self.netns)

    def link_group(self, runs, warmup):
        blocks = self.floors()
        for name, binary in self.a.variant:
            blocks += self.gets(f"{name}:", binary)
        self.results["link"] = self.runner_times("link", blocks, runs, warmup, netns=self.netns)

    def mint_group(self, runs, warmup):
        b, w = self.a.bin, self.path
        cold, warm = w("cold-cache"), w("challenge-cache")
        os.makedirs(cold, exist_ok=True)
        os.makedirs(warm, exist_ok=True)
        before = self.state()
        blocks = [
            spec_block("floor", [w("hello-c")], {}, w("acr.txt")),
            # Cold: the whole cache directory is emptied before each run.
            spec_block("mint_cold", [b, "get"], self.our_env(cold), w("acr.txt"), clean=(cold, "")),
            # Only the token goes: the host record with the challenge stays.
            spec_block("mint_challenge_cached", [b, "get"], self.our_env(warm), w("acr.txt"),
                       clean=(warm, "token-")),
        ]
        self.results["mint"] = self.runner_times("mint", blocks, runs, warmup)
        after = self.state()
        self.results["mint_requests"] = {k: after[k] - before[k] for k in after}
        self.results["mint_requests"]["mints"] = (runs + warmup) * 2

    def burst(self, n, repeats):
        w = self.path
        walls, exchanges, failed, distinct = [], [], 0, []
        for i in range(repeats):
            cache = w(f"burst-cache-{i}")
            outdir = w(f"burst-out-{i}")
            os.makedirs(cache)
            os.makedirs(outdir)
            spec = write(w("burst.spec"),
                         spec_block("burst", [self.a.bin, "get"], self.our_env(cache), w("acr.txt")) + "\n")
            before = self.state()["exchanges"]
            out = json.loads(sh(w("runner"), "burst", spec, str(n), outdir))
            exchanges.append(self.state()["exchanges"] - before)
            walls.append(out["wall_ms"])
            failed += out["failed"]
            # Every get of one burst must answer the same (the one minted) token.
            secrets = set()
            for f in os.listdir(outdir):
                with open(os.path.join(outdir, f)) as out_file:
                    secrets.add(json.loads(out_file.read() or "{}").get("Secret"))
            distinct.append(len(secrets))
        self.results["burst"] = {
            "concurrent": n, "repeats": repeats,
            "wall_ms_median": statistics.median(walls), "wall_ms_max": max(walls),
            "exchanges_per_burst_max": max(exchanges), "exchanges_per_burst": exchanges,
            "failed": failed, "distinct_tokens_per_burst_max": max(distinct),
        }

    def callgrind(self, variants=None):
        if not shutil.which("valgrind"):
            return
        w = self.path
        hit_env = self.our_env(w("hit-cache"))
        runs = [
            ("floor", [w("hello-c")], {}, w("acr.txt")),
            ("rust_static", [w("hello-static")], {}, w("acr.txt")),
            ("floor_dynamic", [w("hello-dynamic")], {}, w("acr.txt")),
            ("floor_dynamic_libc", [w("hello-dynamic-libc")], {}, w("acr.txt")),
        ]
        bins = variants if variants is not None else [("", self.a.bin)] + [
            (p, b) for p, b in (("static_", self.a.bin_static), ("before_", self.a.bin_before)) if b]
        for prefix, binary in bins:
            runs.append((f"{prefix}get_notfound", [binary, "get"], hit_env, w("ghcr.txt")))
            runs.append((f"{prefix}get_hit", [binary, "get"], hit_env, w("acr.txt")))
        if variants is None:
            # A verb that does nothing: the binary's own start-up, without the helper's work.
            runs.append(("version", [self.a.bin, "version"], hit_env, "/dev/null"))
            runs.append(("mint_cold", [self.a.bin, "get"], self.our_env(w("callgrind-cache")),
                         w("acr.txt")))
        counts = {}
        for name, argv, env, stdin in runs:
            out = w(f"callgrind.{name.replace(':', '-')}")
            with open(stdin) as f:
                subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
                               stdin=f, env={**env, "PATH": "/usr/bin:/bin"},
                               capture_output=True, check=False)
            total = None
            for line in open(out):
                if line.startswith("totals:") or line.startswith("summary:"):
                    total = int(line.split()[1])
            counts[name] = total
        self.results["instructions"] = counts

    @staticmethod
    def elf_facts(binary):
        """What the loader has to do for BINARY, from its ELF headers."""
        size = os.path.getsize(binary)
        facts = {"bytes": size}
        if not shutil.which("readelf"):
            return facts
        dyn = sh("readelf", "-dW", binary)
        facts["needed"] = [line.split("[", 1)[1].rstrip("]") for line in dyn.splitlines()
                           if "(NEEDED)" in line]
        flags = [line.split(":", 1)[1].split() for line in dyn.splitlines() if "(FLAGS_1)" in line]
        facts["pie"] = bool(flags) and "PIE" in flags[0]
        facts["bind_now"] = "BIND_NOW" in dyn or (bool(flags) and "NOW" in flags[0])
        rel = sh("readelf", "-rW", binary)
        types = [w for line in rel.splitlines() for w in line.split()[2:3]
                 if w.startswith(("R_X86_64_", "R_AARCH64_"))]
        relr = [line.split()[0] for line in rel.splitlines() if line.strip().endswith(" offsets")]
        facts["relr"] = bool(relr)
        facts["relative_relocs"] = (sum(t.endswith("_RELATIVE") for t in types)
                                    + sum(int(n) for n in relr))
        facts["other_relocs"] = sum(not t.endswith("_RELATIVE") for t in types)
        versions = sh("readelf", "-VW", binary)
        glibc = []
        for line in versions.splitlines():
            if "Name: GLIBC_" in line:
                v = line.split("Name: GLIBC_", 1)[1].split()[0]
                glibc.append(v)
        numeric = [v for v in glibc if v[0].isdigit()]
        facts["glibc_max"] = max(numeric, key=lambda v: tuple(int(x) for x in v.split("."))) if numeric else ""
        facts["glibc_abi"] = [v for v in glibc if not v[0].isdigit()]
        return facts

    def static_facts(self):
        size = os.path.getsize(self.a.bin)
        desc = sh("file", "-b", self.a.bin) if shutil.which("file") else ""
        self.results["binary"] = {
            "bytes": size, "mb": round(size / 1e6, 3),
            "static": "static" in desc and "dynamically" not in desc,
            "stripped": "not stripped" not in desc,
        }
        self.results["elf"] = {"default": self.elf_facts(self.a.bin)}
        for name, binary in (("static", self.a.bin_static), ("before", self.a.bin_before)):
            if binary:
                self.results["elf"][name] = self.elf_facts(binary)

    def machine(self):
        cpu = ""
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, cwd=self.a.repo).stdout.strip()
        return {
            "cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", "") if hasattr(platform, "freedesktop_os_release") else "",
            "rustc": sh("rustc", "--version").strip(), "commit": git,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
            # Other work on the machine moves absolute times (ratios much less): recorded
            # so a reader can tell a loaded run.
            "load": self.load_before, "load_after": load_average(),
        }

    # --- report --------------------------------------------------------------
    def run_note(self, mode, runs):
        mach = self.results["machine"]
        return (f"{mode} run, {runs} interleaved rounds; {mach['cores']} cores ({mach['cpu']}), "
                f"load average {mach['load']} before, {mach['load_after']} after; "
                f"Linux {mach['kernel']}, {mach['os']}, {mach['rustc']}, commit {mach['commit']}, "
                f"{mach['date']}" + ("" if self.netns else "; no network namespace"))

    def report(self, mode, runs):
        s, m = self.results["spawn"], self.results["mint"]
        rows = []

        # "× floor" is the runner's paired ratio: each run over the floor's run in the
        # same round, median over rounds (steadier than a ratio of medians under load).
        def row(label, r, goal=None):
            rows.append({"what": label, "median_ms": round(r["median_ms"], 3),
                         "p95_ms": round(r["p95_ms"], 3),
                         "x_floor": round(r["paired_ratio_to_first"], 2),
                         "faults": r.get("minor_faults"), "goal": goal or ""})

        def goal_text(key, value):
            g = GOALS[key]
            return f"≤ {g}× {'met' if value <= g else 'MISSED'}"

        ratios = {}

        def get_rows(prefix, label):
            for case, what in (("get_notfound", "get, not ACR (ghcr.io)"), ("get_hit", "get, cache hit")):
                r = s.get(prefix + case)
                if r is None:
                    continue
                key = f"{prefix}{case.replace('get_notfound', 'get_notfound')}_vs_floor"
                ratios[key] = r["paired_ratio_to_first"]
                row(f"{what}: {label}", r, goal_text(key, ratios[key]) if key in GOALS else None)

        row("floor: static C hello (stdin → 1 line)", s["floor"])
        row("static Rust hello", s["rust_static"])
        row("dynamic Rust hello (loader cost)", s["floor_dynamic"])
        row("dynamic Rust hello, libc.so.6 alone (as release-dynamic)", s["floor_dynamic_libc"])
        get_rows("", "default build (install.sh)")
        get_rows("static_", "static build (install.sh --static)")
        get_rows("before_", "plain cargo build --release")
        row("list (default build)", s["list"])
        row("version (default build)", s["version"])
        hit = ratios["get_hit_vs_floor"]
        nf = ratios["get_notfound_vs_floor"]
        if "ecr_hit" in s:
            vs = hit / s["ecr_hit"]["paired_ratio_to_first"]
            ratios["get_hit_vs_ecr_hit"] = vs
            row("ECR helper get, cache hit", s["ecr_hit"],
                f"ours = {vs:.2f}× it; " + goal_text("get_hit_vs_ecr_hit", vs))
            row("ECR helper get, not ECR (ghcr.io)", s["ecr_notfound"],
                f"ours = {nf / s['ecr_notfound']['paired_ratio_to_first']:.2f}× it")
        row("floor (mint group)", m["floor"])
        row("get, cold mint (challenge, Entra, exchange; TLS)", m["mint_cold"])
        row("get, mint with challenge cached", m["mint_challenge_cached"])
        ratios = {k: round(v, 3) for k, v in ratios.items()}

        b = self.results["burst"]
        binary = self.results["binary"]
        rss = s["get_hit"]["max_rss_kib"]
        self.results["ratios"] = ratios
        goals = {k: {"goal": f"<= {GOALS[k]}", "value": v, "met": v <= GOALS[k]}
                 for k, v in ratios.items() if k in GOALS}
        goals["burst_exchanges"] = {"goal": "== 1", "value": b["exchanges_per_burst_max"],
                                    "met": b["exchanges_per_burst_max"] == 1}
        goals["binary_mb"] = {"goal": "<= 5 (stripped)", "value": binary["mb"],
                              "met": binary["mb"] <= 5 and binary["stripped"]}
        self.results["goals"] = goals
        self.results["table"] = rows
        self.results["mode"] = mode
        self.results["runs"] = runs
        self.results["network_namespace"] = self.netns

        lines = ["| what | median ms | p95 ms | × floor | page faults | goal |",
                 "|---|---:|---:|---:|---:|---|"]
        for r in rows:
            lines.append(f"| {r['what']} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} | "
                         f"{r['x_floor']:.2f} | {r['faults'] if r['faults'] is not None else ''} | {r['goal']} |")
        g = goals
        lines.append(f"| {b['concurrent']} concurrent cold gets, one registry | {b['wall_ms_median']:.1f} (wall) | {b['wall_ms_max']:.1f} (max of {b['repeats']}) | | | exchanges per burst: {b['exchanges_per_burst_max']}, goal 1 {'met' if g['burst_exchanges']['met'] else 'MISSED'}; failed gets: {b['failed']}; distinct tokens per burst: {b['distinct_tokens_per_burst_max']} |")
        lines.append(f"| release binary (default build) | {binary['mb']:.2f} MB | | | | ≤ 5 MB stripped {'met' if g['binary_mb']['met'] else 'MISSED'} ({'static' if binary['static'] else 'dynamic'}, {'stripped' if binary['stripped'] else 'not stripped'}) |")
        lines.append(f"| peak RSS, cache-hit get | {rss / 1024:.1f} MiB | | | | floor {s['floor']['max_rss_kib'] / 1024:.1f} MiB |")
        ins = self.results.get("instructions")
        if ins and ins.get("floor"):
            for prefix, label in (("", "default build"), ("static_", "static build"), ("before_", "plain cargo build")):
                if ins.get(prefix + "get_hit"):
                    lines.append(f"| instructions (callgrind), {label}: not found / cache hit | {ins[prefix + 'get_notfound']:,} / {ins[prefix + 'get_hit']:,} | | {ins[prefix + 'get_notfound'] / ins['floor']:.2f} / {ins[prefix + 'get_hit'] / ins['floor']:.2f} | | floor {ins['floor']:,}; stable under load |")
            if ins.get("version"):
                lines.append(f"| instructions (callgrind), default build: version | {ins['version']:,} | | {ins['version'] / ins['floor']:.2f} | | start-up alone |")
            if ins.get("mint_cold"):
                lines.append(f"| instructions (callgrind): cold mint | {ins['mint_cold']:,} | | {ins['mint_cold'] / ins['floor']:.0f} | | the helper's own CPU work, fakes excluded |")
        lines.append("")
        lines.append(self.run_note(mode, runs))
        mr = self.results["mint_requests"]
        lines.append(f"mint group requests: {mr['challenges']} challenges, {mr['entra']} Entra, "
                     f"{mr['exchanges']} exchanges for {mr['mints']} mints")
        lines.append("")
        lines.append(self.before_after())
        lines.append("")
        lines.append(self.breakdown())
        return "\n".join(lines)

    def breakdown(self):
        """A not-found and a cache-hit `get` of the default build, step by step: each row
        adds one thing to the one above it."""
        s, ins = self.results["spawn"], self.results.get("instructions", {})
        steps = [
            ("floor", "static C hello: the process itself"),
            ("rust_static", "static Rust hello: Rust's runtime start-up"),
            ("floor_dynamic_libc", "dynamic Rust hello, libc.so.6 alone: the loader"),
            ("version", "`version`, default build: a bigger binary's pages and relocations"),
            ("get_notfound", "`get`, not found: the helper's own work"),
            ("get_hit", "`get`, cache hit: one cache file read and parsed"),
        ]
        lines = ["| step | × floor | adds | page faults | instructions |",
                 "|---|---:|---:|---:|---:|"]
        prev = None
        for key, label in steps:
            r = s[key]
            ratio = r["paired_ratio_to_first"]
            adds = f"+{ratio - prev:.2f}" if prev is not None else ""
            n = ins.get(key)
            lines.append(f"| {label} | {ratio:.2f} | {adds} | {r['minor_faults']} | {f'{n:,}' if n else ''} |")
            prev = ratio
        return "\n".join(lines)

    def before_after(self):
        """The default build's link options, before (plain `cargo build --release`) and after."""
        s, elf, ins = self.results["spawn"], self.results["elf"], self.results.get("instructions", {})
        lines = ["| build | not found × floor | cache hit × floor | page faults (hit) | instructions (hit) | NEEDED | relocations |",
                 "|---|---:|---:|---:|---:|---|---|"]
        for prefix, name, label in (("before_", "before", "before: `cargo build --release`"),
                                    ("", "default", "after: `cargo release-dynamic` (install.sh)"),
                                    ("static_", "static", "static: `cargo release-static`")):
            if prefix + "get_hit" not in s:
                continue
            e = elf.get(name, {})
            hit = ins.get(prefix + "get_hit")
            lines.append(f"| {label} | {s[prefix + 'get_notfound']['paired_ratio_to_first']:.2f} | "
                         f"{s[prefix + 'get_hit']['paired_ratio_to_first']:.2f} | "
                         f"{s[prefix + 'get_hit'].get('minor_faults', '')} | "
                         f"{f'{hit:,}' if hit else ''} | {' '.join(e.get('needed', [])) or 'none'} | "
                         f"{relocs_text(e)} |")
        return "\n".join(lines)

    def link_report(self, runs):
        s, ins = self.results["link"], self.results.get("instructions", {})
        lines = ["| variant | not found × floor | cache hit × floor | page faults (hit) | instructions (hit) | size KB | NEEDED | relocations | glibc needed |",
                 "|---|---:|---:|---:|---:|---:|---|---|---|"]
        for floor, label in (("floor", "static C hello (floor)"), ("rust_static", "static Rust hello"),
                             ("floor_dynamic", "dynamic Rust hello"),
                             ("floor_dynamic_libc", "dynamic Rust hello, libc.so.6 alone")):
            r = s[floor]
            lines.append(f"| {label} | {r['paired_ratio_to_first']:.2f} | | {r['minor_faults']} | "
                         f"{f'{ins[floor]:,}' if ins.get(floor) else ''} | | | | |")
        for name, binary in self.a.variant:
            e = self.results["variants"][name]
            nf, hit = s[f"{name}:get_notfound"], s[f"{name}:get_hit"]
            n = ins.get(f"{name}:get_hit")
            abi = "".join(f" + {a}" for a in e.get("glibc_abi", []))
            lines.append(f"| {name} | {nf['paired_ratio_to_first']:.2f} | {hit['paired_ratio_to_first']:.2f} | "
                         f"{hit['minor_faults']} | {f'{n:,}' if n else ''} | {e['bytes'] // 1000} | "
                         f"{' '.join(e.get('needed', [])) or 'none'} | {relocs_text(e)} | "
                         f"{e.get('glibc_max', '')}{abi} |")
        lines.append("")
        lines.append(self.run_note("link-options", runs))
        return "\n".join(lines)


def relocs_text(e):
    """Relocation facts of one binary for the tables: count, packing, binding, PIE."""
    if "relative_relocs" not in e:
        return ""
    parts = [f"{e['relative_relocs']} relative ({'RELR' if e['relr'] else 'RELA'}) + {e['other_relocs']} symbol"]
    parts.append("PIE" if e["pie"] else "no PIE")
    parts.append("now" if e["bind_now"] else "lazy")
    return ", ".join(parts)


def variant(text):
    name, sep, path = text.partition("=")
    if not sep or not name or ":" in name:
        raise argparse.ArgumentTypeError("--variant NAME=BINARY")
    return name, path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the default build (what install.sh installs)")
    ap.add_argument("--bin-static", help="the static build (install.sh --static)")
    ap.add_argument("--bin-before", help="plain cargo build --release, for before/after")
    ap.add_argument("--variant", type=variant, action="append", default=[],
                    help="NAME=BINARY: measure link variants only (repeat)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--ca-bundle", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    quick = a.quick
    spawn_runs, spawn_warm = (100, 10) if quick else (500, 30)
    mint_runs, mint_warm = (20, 3) if quick else (200, 10)
    bursts = 2 if quick else 5

    bench = Bench(a)
    bench.prepare()
    if a.variant:
        print(f"link variants: {spawn_runs} rounds ...", file=sys.stderr)
        bench.link_group(spawn_runs, spawn_warm)
        print("callgrind ...", file=sys.stderr)
        bench.callgrind([(f"{name}:", path) for name, path in a.variant])
        bench.results["variants"] = {name: bench.elf_facts(path) for name, path in a.variant}
        bench.results["machine"] = bench.machine()
        bench.results["mode"] = "link-options"
        bench.results["runs"] = spawn_runs
        table = bench.link_report(spawn_runs)
    else:
        print(f"spawn group: {spawn_runs} rounds ...", file=sys.stderr)
        bench.spawn_group(spawn_runs, spawn_warm)
        print(f"mint group: {mint_runs} rounds ...", file=sys.stderr)
        bench.mint_group(mint_runs, mint_warm)
        print(f"burst: 64 concurrent cold gets × {bursts} ...", file=sys.stderr)
        bench.burst(64, bursts)
        print("callgrind ...", file=sys.stderr)
        bench.callgrind()
        bench.static_facts()
        bench.results["machine"] = bench.machine()
        table = bench.report("quick" if quick else "full", spawn_runs)
    print(table)
    write(a.table, table + "\n")
    with open(a.out, "w") as f:
        json.dump(bench.results, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
