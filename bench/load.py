"""Load generators: wrk (HTTP/1.1 closed loop), h2load (HTTP/2 closed loop, h2c),
oha (open loop with latency correction; new-connection mTLS rate with client certs).

Each function runs the client pinned to the client cores and returns a dict with
at least `rps`, `requests` and `errors`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from peers import GRPC_HOST, HOST


def _run(cmd: list[str], cpus: str, timeout: float) -> str:
    p = subprocess.run(["taskset", "-c", cpus, *cmd], capture_output=True, text=True, timeout=timeout)
    return p.stdout + "\n" + p.stderr


def _dur(s: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def wrk(tool: str, url: str, conns: int, seconds: float, cpus: str) -> dict:
    """Closed-loop HTTP/1.1 keep-alive: max requests/s with `conns` connections (whole seconds)."""
    out = _run([tool, "-t1", f"-c{conns}", f"-d{int(max(1, round(seconds)))}s", "--latency", "-H", f"Host: {HOST}", url],
               cpus, seconds + 30)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(x) for x in sock.groups())
    p99 = re.search(r"\s99%\s+(\S+)", out)
    if not rps or not total or int(total.group(1)) == 0:
        # no answer at all in the whole run: a failed run, kept out of the medians
        return {"rps": 0.0, "requests": 0, "errors": -1, "raw": out[-700:]}
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)), "errors": errors,
            "p99_ms": _dur(p99.group(1)) if p99 else None}


def h2load(tool: str, url: str, clients: int, streams: int, seconds: float, cpus: str,
           grpc_body: Path | None = None) -> dict:
    """Closed-loop HTTP/2 (h2c prior knowledge) with multiplexed streams; with `grpc_body`
    every request is a gRPC unary POST of that message (and the gRPC host)."""
    extra = ["-H", f":authority: {HOST}"]
    if grpc_body is not None:
        extra = ["-H", f":authority: {GRPC_HOST}", "-d", str(grpc_body), "-H", "content-type: application/grpc",
                 "-H", "te: trailers"]
    out = _run([tool, "-t1", "-c", str(clients), "-m", str(streams), "-D", str(int(max(1, seconds))),
                "--warm-up-time=1", *extra, url], cpus, seconds + 40)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not rps or not req:
        return {"rps": 0.0, "requests": 0, "errors": -1, "raw": out[-500:]}
    errors = int(req.group(5)) + int(req.group(6)) + int(req.group(7))
    if codes:
        errors += int(codes.group(3)) + int(codes.group(4))
    res = {"rps": float(rps.group(1)), "requests": int(req.group(4)), "errors": errors}
    if errors:
        res["raw"] = "\n".join(line for line in out.splitlines()
                               if line.startswith(("requests:", "status codes:", "finished")))
    return res


def _oha_json(out: str) -> dict | None:
    start = out.find("{")
    if start < 0:
        return None
    try:
        return json.JSONDecoder().raw_decode(out[start:])[0]
    except json.JSONDecodeError:
        return None


def _oha_result(out: str) -> dict:
    j = _oha_json(out)
    if not j:
        return {"rps": 0.0, "requests": 0, "errors": -1, "raw": out[-500:]}
    codes = {int(k): v for k, v in (j.get("statusCodeDistribution") or {}).items()}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    bad = sum(v for k, v in codes.items() if not 200 <= k < 300)
    # requests still in flight when the run's deadline hits are cancelled by oha and
    # reported as "aborted due to deadline": not errors of the target.
    errs = sum(v for k, v in (j.get("errorDistribution") or {}).items() if "deadline" not in k)
    pct = j.get("latencyPercentiles") or {}

    def ms(key: str) -> float | None:
        v = pct.get(key)
        return None if v is None else v * 1000.0

    res = {
        "rps": float(j["summary"].get("requestsPerSec") or 0.0),
        "requests": ok,
        "errors": bad + errs,
        "p50_ms": ms("p50"), "p90_ms": ms("p90"), "p99_ms": ms("p99"), "p99.9_ms": ms("p99.9"),
    }
    if res["errors"]:
        res["error_kinds"] = {**{str(k): v for k, v in codes.items() if not 200 <= k < 300},
                              **(j.get("errorDistribution") or {})}
    return res


def _oha_base(tool: str) -> list[str]:
    help_text = subprocess.run([tool, "--help"], capture_output=True, text=True).stdout
    fmt = ["--output-format", "json"] if "--output-format" in help_text else ["-j"]
    return [tool, "--no-tui", *fmt]


def oha_open(tool: str, url: str, rate: float, conns: int, seconds: float, cpus: str) -> dict:
    """Open loop at a fixed request rate with latency correction (coordinated omission)."""
    cmd = [*_oha_base(tool), "-z", f"{seconds}s", "-c", str(conns), "-q", str(int(rate)),
           "--latency-correction", "-H", f"Host: {HOST}", url]
    return _oha_result(_run(cmd, cpus, seconds + 60))


def oha_handshakes(tool: str, port: int, certs: Path, conns: int, seconds: float, cpus: str) -> dict:
    """New-connection rate on the mTLS hop: one request per TLS 1.3 connection with the
    side-A client certificate, straight to the ingress proxy."""
    cmd = [*_oha_base(tool), "-z", f"{seconds}s", "-c", str(conns), "--disable-keepalive",
           "--cert", str(certs / "a.pem"), "--key", str(certs / "a.key"), "--insecure",
           "-H", f"Host: {HOST}", f"https://127.0.0.1:{port}/0"]
    return _oha_result(_run(cmd, cpus, seconds + 60))
