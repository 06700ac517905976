#!/usr/bin/env bash
# Quick local benchmark of the east-west path:
#   wrk (HTTP/1.1) -> egress gateway A -> mTLS HTTP/2 -> ingress gateway B -> origin
# compared with wrk -> origin directly, on the same machine in one run.
# Needs `wrk` (apt-get install wrk); uses `h2load` (nghttp2-client) for h2c when present.
#
#   scripts/bench-gateway.sh [duration=10s] [connections=32]
#
# Every process started here is killed by pid on exit. SKIP_BUILD=1 reuses existing binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10s}"
CONNS="${2:-32}"
HOST="echo.demo.svc.clusterset.local"

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "==> building (release)"
  cargo build --release -p causeway-gateway --bin causeway-gateway --example origin >/dev/null 2>&1 \
    || cargo build --release -p causeway-gateway --bin causeway-gateway --example origin
fi
BIN=target/release/causeway-gateway
ORIGIN=target/release/examples/origin

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
O=$(port); AE=$(port); AI=$(port); AA=$(port); BE=$(port); BI=$(port); BA=$(port)

cat >"$WORK/catalog.json" <<EOF
{
  "revision": 1,
  "clusters": {
    "bench-a": {"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": "bench-a"},
      "spec": {"region": "eu-west", "zone": "eu-west-1a", "jurisdictions": ["eu"],
               "gateway": {"endpoints": ["127.0.0.1:$AI"]}, "trustDomain": "bench-a.test"}},
    "bench-b": {"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": "bench-b"},
      "spec": {"region": "eu-central", "zone": "eu-central-1a", "jurisdictions": ["eu"],
               "gateway": {"endpoints": ["127.0.0.1:$BI"]}, "trustDomain": "bench-b.test"}}
  },
  "exports": {
    "demo/echo/bench-b": {"apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
      "metadata": {"namespace": "demo", "name": "echo", "cluster": "bench-b"},
      "spec": {"ports": [{"name": "http", "port": 8080}], "endpoints": [{"zone": "eu-central-1a", "ready": 1}]}}
  }
}
EOF

gw_config() { # name td egress ingress admin peer-td peer-bundle local
  cat <<EOF
cluster: { id: $1, region: r, zone: z, jurisdictions: [eu], trustDomain: $2 }
listeners: { egress: "127.0.0.1:$3", ingress: "127.0.0.1:$4", admin: "127.0.0.1:$5" }
identity: { authorityDir: "$WORK/$1-ca" }
federation: { catalogFile: "$WORK/catalog.json", bundles: { "$6": "$7" } }
localServices: { $8 }
threads: 1
EOF
}
gw_config bench-a bench-a.test "$AE" "$AI" "$AA" bench-b.test "$WORK/bench-b.bundle.json" "" >"$WORK/a.yaml"
gw_config bench-b bench-b.test "$BE" "$BI" "$BA" bench-a.test "$WORK/bench-a.bundle.json" "\"demo/echo\": [\"127.0.0.1:$O\"]" >"$WORK/b.yaml"
"$BIN" --config "$WORK/a.yaml" --write-bundle "$WORK/bench-a.bundle.json"
"$BIN" --config "$WORK/b.yaml" --write-bundle "$WORK/bench-b.bundle.json"

"$ORIGIN" "127.0.0.1:$O" & PIDS+=($!)
CAUSEWAY_GATEWAY_LOG_LEVEL=error "$BIN" --config "$WORK/b.yaml" & PIDS+=($!); PID_B=$!
CAUSEWAY_GATEWAY_LOG_LEVEL=error "$BIN" --config "$WORK/a.yaml" & PIDS+=($!); PID_A=$!
for a in "$AA" "$BA"; do
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$a/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
curl -fsS -H "Host: $HOST" "http://127.0.0.1:$AE/" >/dev/null

rss() { ps -o rss= -p "$1" | tr -d ' '; }
echo "==> idle RSS: gateway A $(rss $PID_A) KiB, gateway B $(rss $PID_B) KiB"

run_wrk() { # label url [host]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Host: $3" "$2")
  else
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$2")
  fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-34s %12s req/s  p50 %8s  p99 %8s\n' "$1" "$rps" "$p50" "$p99"
  echo "$rps" >"$WORK/$1.rps"
}

echo "==> wrk -t1 -c$CONNS -d$DURATION (HTTP/1.1 keep-alive)"
run_wrk direct "http://127.0.0.1:$O/"
run_wrk via-one-gateway-local "http://127.0.0.1:$BE/" "$HOST"
run_wrk via-two-gateways "http://127.0.0.1:$AE/" "$HOST"
python3 - "$WORK" <<'EOF'
import sys
w = sys.argv[1]
d = float(open(f"{w}/direct.rps").read())
g = float(open(f"{w}/via-two-gateways.rps").read())
print(f"==> throughput ratio via-gateways/direct: {g/d:.2f}")
EOF
echo "==> loaded RSS: gateway A $(rss $PID_A) KiB, gateway B $(rss $PID_B) KiB"

if command -v h2load >/dev/null; then
  N="${H2LOAD_REQUESTS:-20000}"
  echo "==> h2load h2c, 8 connections x 16 streams, $N requests"
  for target in "direct http://127.0.0.1:$O/" "one-gateway-local http://127.0.0.1:$BE/" "two-gateways http://127.0.0.1:$AE/"; do
    set -- $target
    printf '%-20s ' "$1"
    h2load -n "$N" -c 8 -m 16 -H ":authority: $HOST" "$2" \
      | awk '/finished in/ {rps=$4} /succeeded/ {ok=$8} /time for request/ {print rps, "req/s, mean", $4, "max", $3, "succeeded", ok}'
  done
fi
