"""Summaries (medians with ranges), ratios and the Markdown/JSON report."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

GW = "causeway"
PEERS = ["nginx", "haproxy", "envoy"]


def stat(values: list[float]) -> dict:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "n/a"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_stat(s: dict, digits: int = 0) -> str:
    if s.get("median") is None:
        return "n/a"
    return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}–{fmt(s['max'], digits)})"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def summarize(raw: dict) -> dict:
    """raw['throughput'][workload][target] = [run dicts]; raw['latency'][level][target] = [run dicts]."""
    s: dict = {"throughput": {}, "latency": {}, "cpu_per_1k": {}}
    for wl, by_target in raw["throughput"].items():
        s["throughput"][wl] = {
            t: {**stat([r["rps"] for r in runs if r["errors"] >= 0 and r["requests"] > 0]),
                "errors": sum(max(r["errors"], 0) for r in runs),
                "failed_runs": sum(1 for r in runs if r["errors"] < 0 or r["requests"] == 0)}
            for t, runs in by_target.items()
        }
    for t, vals in raw["cpu_per_1k"].items():
        s["cpu_per_1k"][t] = stat(vals)
    for level, by_target in raw["latency"].items():
        out = {}
        direct = by_target.get("direct", [])
        for t, runs in by_target.items():
            row = {"rate": stat([r["rps"] for r in runs]),
                   "errors": sum(max(r["errors"], 0) for r in runs)}
            for p in ("p50", "p90", "p99", "p99.9"):
                row[p] = stat([r.get(f"{p}_ms") for r in runs])
                if t != "direct" and direct:
                    # added latency per round: target minus direct of the same round
                    added = [r.get(f"{p}_ms") - d.get(f"{p}_ms") for r, d in zip(runs, direct)
                             if r.get(f"{p}_ms") is not None and d.get(f"{p}_ms") is not None]
                    row[f"added_{p}"] = stat(added)
                    row[f"added_{p}_per_hop"] = stat([a / 2 for a in added])
            out[t] = row
        s["latency"][level] = out
    return s


def targets_check(s: dict, raw: dict) -> list[dict]:
    """The DESIGN.md §6 targets, with measured ratios."""
    checks = []
    tp = s["throughput"]
    for wl in tp:
        gw = tp[wl].get(GW, {}).get("median")
        best = max((tp[wl].get(p, {}).get("median") or 0 for p in PEERS), default=0)
        if gw is not None and best:
            checks.append({"target": f"throughput {wl} >= best peer", "gateway": gw, "best_peer": best,
                           "ratio": gw / best, "met": gw >= best})
    lvl = next((k for k in s["latency"] if k.startswith("50%")), None)
    if lvl:
        row = s["latency"][lvl]
        gw = row.get(GW, {}).get("added_p99_per_hop", {}).get("median")
        peers = [row.get(p, {}).get("added_p99_per_hop", {}).get("median") for p in PEERS]
        peers = [p for p in peers if p is not None]
        if gw is not None and peers:
            best = min(peers)
            checks.append({"target": f"added p99 per hop at {lvl} <= best peer (ms)", "gateway": gw,
                           "best_peer": best, "ratio": (gw / best) if best > 0 else None, "met": gw <= best})
    rss = raw.get("rss_idle", {})
    if GW in rss:
        for side in ("egress_kib", "ingress_kib"):
            v = rss[GW][side]
            checks.append({"target": f"RSS idle {side[:-4]} < 20 MiB (KiB)", "gateway": v, "best_peer": 20480,
                           "ratio": v / 20480, "met": v < 20480})
    ic = raw.get("idle_conns", {})
    if GW in ic:
        gw = ic[GW]["kib_per_conn"]
        peers = [ic[p]["kib_per_conn"] for p in PEERS if p in ic]
        if peers:
            best = min(peers)
            checks.append({"target": "KiB per idle mTLS connection < every peer", "gateway": gw,
                           "best_peer": best, "ratio": gw / best if best > 0 else None, "met": gw < best})
    return checks


WL_TITLES = {
    "h1-0B": "HTTP/1.1 0 B (wrk, 64 conns)",
    "h1-1KiB": "HTTP/1.1 1 KiB (wrk, 64 conns)",
    "h2-1KiB": "HTTP/2 h2c 1 KiB (h2load, 4 conns x 16 streams)",
    "grpc-1KiB": "gRPC unary 1 KiB (h2load, 4 conns x 16 streams)",
    "mtls-newconn": "new mTLS connections/s (oha, 16 conns, no keep-alive, to the ingress)",
}


def markdown(doc: dict) -> str:
    s, raw, meta = doc["summary"], doc["raw"], doc["meta"]
    targets = meta["targets"]
    L: list[str] = []
    m = meta["machine"]
    L.append(f"Run: `{meta['command']}` ({meta['mode']}), {meta['started']} UTC, {meta['rounds']} interleaved rounds, "
             f"{meta['seconds']} s per run.  ")
    L.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}, "
             f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}, at end "
             f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_at_end', []))} (other work on the machine "
             "shows here: a load above the core count means the figures are noisy).  ")
    L.append(f"Pinning: client and origin on CPU {meta['client_cpus']}, every proxy process on CPU {meta['proxy_cpus']}.  ")
    L.append("Versions: " + "; ".join(f"{k} `{v}`" for k, v in meta["versions"].items()) + ".")
    if meta.get("notes"):
        L.append("")
        for n in meta["notes"]:
            L.append(f"- {n}")
    L.append("")
    L.append("### Max throughput, closed loop (req/s, median (min–max) over rounds)")
    L.append("")
    wls = list(s["throughput"].keys())
    L.append("| target | " + " | ".join(WL_TITLES.get(w, w) for w in wls) + " | errors |")
    L.append("|---|" + "---|" * (len(wls) + 1))
    for t in targets:
        cells = [fmt_stat(s["throughput"][w].get(t, {})) if t in s["throughput"][w] else "—" for w in wls]
        errs = sum(s["throughput"][w].get(t, {}).get("errors", 0) for w in wls)
        fails = sum(s["throughput"][w].get(t, {}).get("failed_runs", 0) for w in wls)
        L.append(f"| {t} | " + " | ".join(cells) + f" | {errs}{f' + {fails} failed runs' if fails else ''} |")
    if GW in targets:
        L.append("")
        L.append("A failed run (no answer at all during the run) is left out of the median and counted in the "
                 "errors column.")
        L.append("")
        L.append("Ratios of the gateway's median to each target's median (>1: the gateway is faster):")
        L.append("")
        L.append("| workload | " + " | ".join(f"causeway / {t}" for t in targets if t != GW) + " |")
        L.append("|---|" + "---|" * (len(targets) - 1))
        for w in wls:
            g = s["throughput"][w].get(GW, {}).get("median")
            L.append(f"| {w} | " + " | ".join(ratio(g, s["throughput"][w].get(t, {}).get("median"))
                                             for t in targets if t != GW) + " |")
    L.append("")
    L.append("### Added latency over direct, open loop (oha, latency-corrected), ms, median (min–max)")
    L.append("")
    L.append("Each run's percentile minus the same round's direct percentile; the path has two proxy hops, "
             "per hop = half of it.")
    L.append("")
    for level, row in s["latency"].items():
        d = row.get("direct", {})
        L.append(f"**{level}** — direct: p50 {fmt(d.get('p50', {}).get('median'), 3)}, p90 "
                 f"{fmt(d.get('p90', {}).get('median'), 3)}, p99 {fmt(d.get('p99', {}).get('median'), 3)}, "
                 f"p99.9 {fmt(d.get('p99.9', {}).get('median'), 3)} ms")
        L.append("")
        L.append("| target | achieved req/s | +p50 | +p90 | +p99 | +p99.9 | +p99 per hop | errors |")
        L.append("|---|---|---|---|---|---|---|---|")
        for t in targets:
            if t == "direct" or t not in row:
                continue
            r = row[t]
            L.append(f"| {t} | {fmt(r['rate']['median'])} | " +
                     " | ".join(fmt_stat(r.get(f"added_{p}", {}), 3) for p in ("p50", "p90", "p99", "p99.9")) +
                     f" | {fmt_stat(r.get('added_p99_per_hop', {}), 3)} | {r['errors']} |")
        L.append("")
    L.append("### Resources")
    L.append("")
    L.append("CPU = utime+stime of both proxy processes (and children) during the HTTP/1.1 0 B closed-loop runs. "
             "RSS idle = after start and one request. Idle connections: N mTLS connections (TLS 1.3, client "
             "certificate, h2 preface when ALPN h2) held open to the ingress.")
    L.append("")
    L.append("| target | CPU s / 1,000 req | RSS idle egress (KiB) | RSS idle ingress (KiB) | idle mTLS conns held | "
             "ingress RSS with conns (KiB) | KiB per idle conn |")
    L.append("|---|---|---|---|---|---|---|")
    for t in targets:
        if t == "direct":
            continue
        cpu = s["cpu_per_1k"].get(t, {})
        rss = raw.get("rss_idle", {}).get(t, {})
        ic = raw.get("idle_conns", {}).get(t, {})
        L.append(f"| {t} | {fmt_stat(cpu, 4)} | {fmt(rss.get('egress_kib'))} | {fmt(rss.get('ingress_kib'))} | "
                 f"{ic.get('held', 'n/a')}/{ic.get('connections', 'n/a')} | {fmt(ic.get('rss_with_conns_kib'))} | "
                 f"{fmt(ic.get('kib_per_conn'), 2)} |")
    checks = doc.get("checks") or []
    if checks:
        L.append("")
        L.append("### Targets (DESIGN.md §6)")
        L.append("")
        L.append("| target | gateway | best peer | ratio | met |")
        L.append("|---|---|---|---|---|")
        for c in checks:
            r = "n/a" if c["ratio"] is None else f"{c['ratio']:.2f}"
            digits = 3 if "ms" in c["target"] or "KiB per" in c["target"] else 0
            L.append(f"| {c['target']} | {fmt(c['gateway'], digits)} | {fmt(c['best_peer'], digits)} | "
                     f"{r} | {'yes' if c['met'] else 'NO'} |")
    return "\n".join(L) + "\n"


def write(doc: dict, results_dir: Path, benchmarks_md: Path | None) -> str:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "latest.json").write_text(json.dumps(doc, indent=2, default=str))
    md = markdown(doc)
    (results_dir / "latest.md").write_text(md)
    if benchmarks_md and benchmarks_md.exists():
        text = benchmarks_md.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            benchmarks_md.write_text(f"{head}{start}\n{md}{end}{tail}")
    return md
