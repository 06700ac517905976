"""Causeway side-by-side benchmark runner (stdlib only). Entry point: scripts/bench.sh.

Targets: direct, nginx, haproxy, envoy, causeway (two-hop mTLS path each).
Phases: idle RSS -> throughput rounds (interleaved A..E, E..A, ...) -> open-loop
latency rounds at the same absolute rates for every target -> idle mTLS
connections -> report (bench/results/latest.{json,md}, BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import certs
import load
import machine
import metrics
import peers
import report
import tools as toolmod

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (a few minutes)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    ap.add_argument("--seconds", type=float, help="seconds per run (default 8, quick 2)")
    ap.add_argument("--idle-conns", type=int, help="idle mTLS connections (default 10000, or 9500 under a 20000 fd hard limit; quick 1000)")
    ap.add_argument("--targets", default="direct,nginx,haproxy,envoy,causeway")
    ap.add_argument("--no-build", action="store_true", help="do not (re)build the gateway release binary")
    ap.add_argument("--cache", default=os.environ.get("CAUSEWAY_BENCH_CACHE",
                                                      str(Path.home() / ".cache/causeway-bench")))
    ap.add_argument("--no-markdown-update", action="store_true", help="leave BENCHMARKS.md alone")
    a = ap.parse_args()
    a.rounds = a.rounds or (2 if a.quick else 5)
    a.seconds = a.seconds or (2.0 if a.quick else 8.0)
    if a.idle_conns is None:
        # 10,000 in full mode when the hard nofile limit allows it; HAProxy reserves two
        # descriptors per connection, so with a hard limit of 20,000 every peer gets 9,500.
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        full = 10000 if hard == resource.RLIM_INFINITY or hard >= 30000 else 9500
        a.idle_conns = 1000 if a.quick else full
    return a


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def interleaved(targets: list[str], r: int) -> list[str]:
    return targets if r % 2 == 0 else list(reversed(targets))


def main() -> int:
    a = parse()
    nofile = metrics.raise_nofile()
    tools = toolmod.find_or_install(Path(a.cache), REPO, build_gateway=not a.no_build)
    wanted = a.targets.split(",")
    notes: list[str] = []
    if "causeway" in wanted and "causeway-gateway" not in tools:
        wanted.remove("causeway")
        notes.append("causeway-gateway release binary not available: the gateway is missing from this run.")
    work = Path(tempfile.mkdtemp(prefix="causeway-bench-"))
    work.chmod(0o755)  # nginx workers (user nobody) read the gRPC answer file from here
    cert_dir = certs.generate(work / "certs")
    fleet = peers.Fleet(tools, cert_dir, work)
    client = fleet.client_cpus
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    meta = {
        "command": " ".join(["./scripts/bench.sh", *sys.argv[1:]]),
        "mode": "quick" if a.quick else "full", "started": started, "rounds": a.rounds, "seconds": a.seconds,
        "machine": machine.describe(), "versions": toolmod.versions(tools), "client_cpus": client,
        "proxy_cpus": fleet.proxy_cpus, "nofile": nofile, "notes": notes,
    }
    raw: dict = {"throughput": {}, "latency": {}, "cpu_per_1k": {}, "rss_idle": {}, "idle_conns": {}}
    try:
        fleet.start_origin()
        targets: dict[str, peers.Target] = {}
        for name in wanted:
            if name == "direct":
                targets[name] = peers.direct()
                continue
            try:
                targets[name] = fleet.start(name)
            except RuntimeError as e:
                notes.append(f"{name} did not start: {e}")
                log(f"{name} did not start: {e}")
        names = list(targets)
        meta["targets"] = names
        # warm-up: one short closed-loop run each, which also checks the path answers 200
        time.sleep(1.0)
        for n in names:
            r = load.wrk(tools["wrk"], targets[n].url("/0"), 16, 1, client)
            log(f"warm-up {n}: {r['rps']:.0f} req/s, errors {r['errors']}")
            if r["errors"] != 0 or r["requests"] == 0:
                notes.append(f"{n}: warm-up had errors ({r['errors']}) — see its figures' error column")
        time.sleep(2.0)
        for n in names:
            t = targets[n]
            if n != "direct":
                raw["rss_idle"][n] = {"egress_kib": metrics.rss_kib(t.egress_pids()),
                                      "ingress_kib": metrics.rss_kib(t.ingress_pids())}
        log(f"idle RSS: {raw['rss_idle']}")

        # ---- throughput, closed loop
        workloads = {
            "h1-0B": lambda t: load.wrk(tools["wrk"], t.url("/0"), 64, a.seconds, client),
            "h1-1KiB": lambda t: load.wrk(tools["wrk"], t.url("/1k"), 64, a.seconds, client),
            "h2-1KiB": lambda t: load.h2load(tools["h2load"], t.url("/1k", h2c=True), 4, 16, a.seconds, client),
            "grpc-1KiB": lambda t: load.h2load(tools["h2load"], t.url(peers.GRPC_PATH, h2c=True), 4, 16, a.seconds,
                                               client, grpc_body=work / "grpc-1k.bin"),
            "mtls-newconn": lambda t: load.oha_handshakes(tools["oha"], t.ingress, cert_dir, 16, a.seconds, client),
        }
        for wl in workloads:
            raw["throughput"][wl] = {n: [] for n in names if not (wl == "mtls-newconn" and n == "direct")}
        raw["cpu_per_1k"] = {n: [] for n in names if n != "direct"}
        for r in range(a.rounds):
            order = interleaved(names, r)
            for wl, fn in workloads.items():
                for n in order:
                    if n not in raw["throughput"][wl]:
                        continue
                    t = targets[n]
                    cpu0 = metrics.cpu_seconds(t.proxy_pids())
                    res = fn(t)
                    cpu = metrics.cpu_seconds(t.proxy_pids()) - cpu0
                    raw["throughput"][wl][n].append(res)
                    if wl == "h1-0B" and n != "direct" and res["requests"]:
                        raw["cpu_per_1k"][n].append(cpu / res["requests"] * 1000)
                    log(f"round {r + 1}/{a.rounds} {wl:13s} {n:9s} {res['rps']:>10.0f} req/s  errors {res['errors']}"
                        + (f"  cpu {cpu:.2f}s" if n != "direct" else ""))

        # ---- open-loop latency at the same absolute rates for every target
        s = report.summarize(raw)
        proxies = [n for n in names if n != "direct"]
        maxes = [s["throughput"]["h1-0B"][n]["median"] for n in proxies if s["throughput"]["h1-0B"][n]["median"]]
        slowest = min(maxes) if maxes else 10000.0
        levels = {f"{p}% of slowest max ({slowest * p / 100:,.0f} req/s, 64 conns)": (slowest * p / 100, 64)
                  for p in (10, 50, 80)}
        levels["1,000 req/s, 16 conns"] = (1000.0, 16)
        for lv in levels:
            raw["latency"][lv] = {n: [] for n in names}
        for r in range(a.rounds):
            order = interleaved(names, r)
            for lv, (rate, conns) in levels.items():
                for n in order:
                    res = load.oha_open(tools["oha"], targets[n].url("/0"), rate, conns, a.seconds, client)
                    raw["latency"][lv][n].append(res)
                    log(f"round {r + 1}/{a.rounds} {lv[:12]:12s} {n:9s} {res['rps']:>8.0f} req/s  p50 "
                        f"{res.get('p50_ms') or 0:.3f}  p99 {res.get('p99_ms') or 0:.3f} ms  errors {res['errors']}")

        # ---- idle mTLS connections to the ingress
        for n in proxies:
            t = targets[n]
            res = metrics.idle_connection_probe(t.ingress, t.ingress_pids(), a.idle_conns, cert_dir)
            raw["idle_conns"][n] = res
            log(f"idle conns {n}: {res}")
            time.sleep(1.0)
    finally:
        fleet.stop()
    meta["loadavg_at_end"] = os.getloadavg()
    meta["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    summary = report.summarize(raw)
    doc = {"meta": meta, "raw": raw, "summary": summary}
    doc["checks"] = report.targets_check(summary, raw)
    md = report.write(doc, HERE / "results",
                      None if a.no_markdown_update else REPO / "BENCHMARKS.md")
    print(md)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
