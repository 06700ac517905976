"""Process metrics from /proc (CPU seconds, RSS) and the idle mTLS connection probe."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(want: int = 200_000) -> int:
    """Raise RLIMIT_NOFILE for this process and its children (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (want, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard) if limit == want else hard))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def tree(pids: list[int]) -> list[int]:
    """The pids and all their descendants (nginx workers, etc.)."""
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes and their descendants, in seconds."""
    total = 0
    for pid in tree(pids):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def rss_kib(pids: list[int]) -> int:
    """Resident set size of the processes and their descendants, in KiB."""
    total = 0
    for pid in tree(pids):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def open_idle_mtls(port: int, n: int, certs: Path) -> tuple[list[ssl.SSLSocket], int]:
    """Open `n` mTLS connections (client certificate of side A, TLS 1.3, ALPN h2/http/1.1)
    to 127.0.0.1:port and leave them idle. Over h2 the client preface and an empty
    SETTINGS frame are sent so the server sets up its HTTP/2 connection state.
    Returns the sockets and the number of failures."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(certs / "a.pem", certs / "a.key")
    ctx.load_verify_locations(certs / "ca-b.pem")
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    socks: list[ssl.SSLSocket] = []
    failures = 0
    for _ in range(n):
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname="bench-b.test")
            if s.selected_alpn_protocol() == "h2":
                s.sendall(H2_PREFACE)
            socks.append(s)
        except (OSError, ssl.SSLError):
            failures += 1
    return socks, failures


def idle_connection_probe(port: int, pids: list[int], n: int, certs: Path) -> dict[str, float]:
    """RSS of the ingress before and with `n` idle mTLS connections."""
    before = rss_kib(pids)
    socks, failures = open_idle_mtls(port, n, certs)
    time.sleep(1.0)
    alive_fail = 0
    for s in socks:  # a server that dropped the connection shows up here
        try:
            s.setblocking(False)
            data = s.recv(1)
            if data == b"":
                alive_fail += 1
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except (OSError, ssl.SSLError):
            alive_fail += 1
    with_conns = rss_kib(pids)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    held = len(socks) - alive_fail
    return {
        "connections": n,
        "held": held,
        "failed": failures + alive_fail,
        "rss_before_kib": before,
        "rss_with_conns_kib": with_conns,
        "kib_per_conn": (with_conns - before) / held if held else float("nan"),
    }
