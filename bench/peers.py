"""The targets: configs rendered from bench/peers/, processes started pinned and
stopped by pid.

Topology per proxy target: client -> egress proxy -> mTLS (TLS 1.3, the same
SPIFFE certificates for all) -> ingress proxy -> origin. "direct" is
client -> origin. Every proxy process runs one worker thread; with two or more
cores the proxies are pinned to the last core and the client and origin to the
others.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "peers"
HOST = "echo.demo.svc.clusterset.local"
GRPC_HOST = "grpc.demo.svc.clusterset.local"
GRPC_PATH = "/bench.Echo/Unary"


def grpc_message(size: int = 1024) -> bytes:
    """One length-prefixed gRPC message whose protobuf payload (field 1, bytes) is `size` bytes."""
    inner = size - 3  # tag + two-byte varint length
    payload = b"\x0a" + bytes([(inner & 0x7F) | 0x80, inner >> 7]) + b"x" * inner
    return b"\x00" + len(payload).to_bytes(4, "big") + payload

ORIGIN_H1 = 18080
ORIGIN_H2C = 18081
PORTS = {
    # name: (egress h1, egress h2c, ingress, admin egress, admin ingress)
    "nginx": (18101, 18111, 18102, 0, 0),
    "haproxy": (18201, 18201, 18202, 0, 0),
    "envoy": (18301, 18301, 18302, 18303, 18304),
    "causeway": (18401, 18401, 18412, 18403, 18413),
}
PROXIES = ["nginx", "haproxy", "envoy", "causeway"]


def cpu_layout() -> tuple[str, str]:
    """(cpus for client and origin, cpus for the proxies)."""
    n = os.cpu_count() or 1
    if n < 2:
        return "0", "0"
    return (f"0-{n - 2}" if n > 2 else "0"), str(n - 1)


def render(name: str, out: Path, values: dict[str, object]) -> Path:
    text = (TEMPLATES / name).read_text()
    for k, v in values.items():
        text = text.replace(f"@@{k}@@", str(v))
    if "@@" in text:
        raise SystemExit(f"unrendered placeholder in {name}")
    dst = out / name
    dst.write_text(text)
    return dst


@dataclass
class Proc:
    label: str
    popen: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Target:
    """One benchmark target: the URLs the client uses and the proxy processes."""

    name: str
    egress_h1: int
    egress_h2c: int
    ingress: int | None = None
    procs: list[Proc] = field(default_factory=list)

    def url(self, path: str, h2c: bool = False) -> str:
        return f"http://127.0.0.1:{self.egress_h2c if h2c else self.egress_h1}{path}"

    def proxy_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.label != "origin"]

    def ingress_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.label.endswith("ingress")]

    def egress_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.label.endswith("egress")]


class Fleet:
    """Starts every process and kills each by pid on exit."""

    def __init__(self, tools: dict[str, str], certs: Path, workdir: Path):
        self.tools = tools
        self.certs = certs
        self.dir = workdir
        self.all: list[Proc] = []
        self.client_cpus, self.proxy_cpus = cpu_layout()
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _spawn(self, label: str, argv: list[str], cpus: str, env: dict[str, str] | None = None) -> Proc:
        log = open(self.logs / f"{label}.log", "wb")
        cmd = ["taskset", "-c", cpus, *argv]
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})})
        proc = Proc(label, p)
        self.all.append(proc)
        return proc

    def stop(self) -> None:
        for p in reversed(self.all):
            if p.popen.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for p in reversed(self.all):
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.popen.wait()
        self.all.clear()

    def base_values(self) -> dict[str, object]:
        return {"DIR": self.dir, "CERTS": self.certs, "PORT_ORIGIN": ORIGIN_H1, "PORT_ORIGIN_H2C": ORIGIN_H2C}

    def start_origin(self) -> Proc:
        body = "x" * 1024
        (self.dir / "grpc-1k.bin").write_bytes(grpc_message())
        cfg = render("origin-nginx.conf", self.dir,
                     {**self.base_values(), "PORT_H1": ORIGIN_H1, "PORT_H2C": ORIGIN_H2C, "BODY_1K": body})
        p = self._spawn("origin", [self.tools["nginx"], "-c", str(cfg), "-p", str(self.dir)], self.client_cpus)
        wait_port(ORIGIN_H1)
        return p

    def start(self, name: str) -> Target:
        eg, eg2, ing, adm_e, adm_i = PORTS[name]
        v = {**self.base_values(), "PORT_EGRESS": eg, "PORT_EGRESS_H2C": eg2, "PORT_INGRESS": ing}
        t = Target(name, eg, eg2, ing)
        c = self.proxy_cpus
        if name == "nginx":
            for side in ("ingress", "egress"):
                cfg = render(f"nginx-{side}.conf", self.dir, v)
                t.procs.append(self._spawn(f"nginx-{side}", [self.tools["nginx"], "-c", str(cfg), "-p", str(self.dir)], c))
        elif name == "haproxy":
            for side in ("ingress", "egress"):
                cfg = render(f"haproxy-{side}.cfg", self.dir, v)
                t.procs.append(self._spawn(f"haproxy-{side}", [self.tools["haproxy"], "-db", "-f", str(cfg)], c))
        elif name == "envoy":
            for side, adm in (("ingress", adm_i), ("egress", adm_e)):
                cfg = render(f"envoy-{side}.yaml", self.dir, {**v, "PORT_ADMIN": adm})
                t.procs.append(self._spawn(f"envoy-{side}", [
                    self.tools["envoy"], "-c", str(cfg), "--concurrency", "1", "--disable-hot-restart",
                    "-l", "error"], c))
        elif name == "causeway":
            render("causeway-catalog.json", self.dir, {"PORT_A_INGRESS": 18402, "PORT_B_INGRESS": ing})
            (self.dir / "catalog.json").write_text((self.dir / "causeway-catalog.json").read_text())
            b = render("causeway-b.yaml", self.dir, {**v, "PORT_ADMIN": adm_i, "PORT_EGRESS_UNUSED": 18411})
            a = render("causeway-a.yaml", self.dir, {**v, "PORT_ADMIN": adm_e, "PORT_INGRESS_UNUSED": 18402})
            env = {"CAUSEWAY_GATEWAY_LOG_LEVEL": "error"}
            t.procs.append(self._spawn("causeway-ingress", [self.tools["causeway-gateway"], "--config", str(b)], c, env))
            t.procs.append(self._spawn("causeway-egress", [self.tools["causeway-gateway"], "--config", str(a)], c, env))
        else:
            raise ValueError(name)
        wait_port(ing)
        wait_port(eg)
        wait_port(eg2)
        for p in t.procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.label} exited with {p.popen.returncode}; see {self.logs}/{p.label}.log")
        return t


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open in {timeout}s")


def direct() -> Target:
    return Target("direct", ORIGIN_H1, ORIGIN_H2C, None)
