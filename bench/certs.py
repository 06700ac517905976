"""Certificate generation: one ECDSA P-256 CA per trust domain and one SPIFFE
X.509-SVID per side, created once with `openssl` and used by every peer.

Side A (the egress/client side) is `spiffe://bench-a.test/causeway/gateway/bench-a`,
side B (the ingress/server side) is `spiffe://bench-b.test/causeway/gateway/bench-b`.
Each leaf also carries a DNS SAN (`bench-a.test` / `bench-b.test`) so that nginx
and HAProxy, which cannot match URI SANs, can still verify the peer's name.
The SPIFFE bundles (JWKS) the Causeway gateway reads are written beside them.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

SIDES = {
    "a": {"td": "bench-a.test", "cluster": "bench-a"},
    "b": {"td": "bench-b.test", "cluster": "bench-b"},
}


def spiffe_id(side: str) -> str:
    s = SIDES[side]
    return f"spiffe://{s['td']}/causeway/gateway/{s['cluster']}"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def generate(out: Path) -> Path:
    """Create the CA, leaf, chain and bundle files in `out` unless present."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "done").exists():
        return out
    for side, s in SIDES.items():
        td = s["td"]
        ca_ext = out / f"ca-{side}.ext"
        ca_ext.write_text(
            "[req]\ndistinguished_name=dn\n[dn]\n"
            "[v3]\nbasicConstraints=critical,CA:true\n"
            "keyUsage=critical,keyCertSign,cRLSign\n"
            f"subjectAltName=URI:spiffe://{td}\n"
            "subjectKeyIdentifier=hash\n"
        )
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"ca-{side}.ec.pem", cwd=out)
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"ca-{side}.ec.pem", "-out", f"ca-{side}.key", cwd=out)
        _openssl("req", "-new", "-x509", "-key", f"ca-{side}.key", "-out", f"ca-{side}.pem",
                 "-days", "365", "-subj", f"/O=causeway-bench/CN={td} CA",
                 "-config", ca_ext.name, "-extensions", "v3",
                 "-sha256", cwd=out)
        leaf_ext = out / f"leaf-{side}.ext"
        leaf_ext.write_text(
            "[v3]\nbasicConstraints=critical,CA:false\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName=URI:{spiffe_id(side)},DNS:{td}\n"
            "authorityKeyIdentifier=keyid\n"
        )
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{side}.ec.pem", cwd=out)
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{side}.ec.pem", "-out", f"{side}.key", cwd=out)
        _openssl("req", "-new", "-key", f"{side}.key", "-out", f"{side}.csr",
                 "-subj", "/O=causeway-bench", "-config", ca_ext.name, cwd=out)
        _openssl("x509", "-req", "-in", f"{side}.csr", "-CA", f"ca-{side}.pem", "-CAkey", f"ca-{side}.key",
                 "-CAcreateserial", "-days", "30", "-sha256", "-extfile", leaf_ext.name,
                 "-extensions", "v3", "-out", f"{side}.pem", cwd=out)
        # leaf + CA concatenated: HAProxy `crt` wants cert and key in one file.
        (out / f"{side}.full.pem").write_text((out / f"{side}.pem").read_text() + (out / f"{side}.key").read_text())
        der = subprocess.run(["openssl", "x509", "-in", f"ca-{side}.pem", "-outform", "DER"],
                             cwd=out, check=True, capture_output=True).stdout
        bundle = {"keys": [{"use": "x509-svid", "kty": "EC", "x5c": [base64.b64encode(der).decode()]}],
                  "spiffe_sequence": 1}
        (out / f"bundle-{side}.json").write_text(json.dumps(bundle))
    (out / "done").write_text("ok\n")
    return out
