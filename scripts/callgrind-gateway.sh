#!/usr/bin/env bash
# Instructions per request of each hop of the east-west path, counted by
# callgrind (exact and repeatable, whatever else the machine runs):
#   client -> egress gateway A -> mTLS HTTP/2 -> ingress gateway B -> origin
# For each binary given (default: target/release/causeway-gateway), each
# gateway in turn runs under callgrind while the other runs natively; after
# WARMUP requests the counters are zeroed, N sequential HTTP/1.1 keep-alive
# requests are sent, and the dump's instruction total divided by N is the
# cost of one request on that hop.
#
#   scripts/callgrind-gateway.sh [label=binary ...]
#   N=2000 WARMUP=300 scripts/callgrind-gateway.sh base=/tmp/old/causeway-gateway new=target/release/causeway-gateway
#
# Needs valgrind (apt-get install valgrind) and a release origin example
# (cargo build --release -p causeway-gateway --example origin). Every
# process started here is killed by pid on exit. With KEEP=<dir>, each
# measured dump is copied there as <label>-<egress|ingress>.cg for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-2000}"
WARMUP="${WARMUP:-300}"
HOST="echo.demo.svc.clusterset.local"
ORIGIN="${ORIGIN:-target/release/examples/origin}"
[ $# -gt 0 ] || set -- "current=target/release/causeway-gateway"
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

WORK="$(mktemp -d)"
# Each measurement runs in a command substitution (a subshell): the pids it
# starts are appended to a file so that the exit trap here can stop them.
PIDFILE="$WORK/pids"
: >"$PIDFILE"
cleanup() {
  local p
  for p in $(cat "$PIDFILE" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# requests PORT COUNT: sequential keep-alive GETs; fails on any non-200.
requests() {
  python3 - "$1" "$2" "$HOST" <<'EOF'
import http.client, sys
port, n, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/", headers={"Host": host})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
EOF
}

# first_ok PORT: waits (up to 3 minutes) for the first 200 through both hops:
# the gateway under valgrind starts slowly, and until the egress's active
# probe has seen the ingress answer, the egress refuses with 503.
first_ok() {
  python3 - "$1" "$HOST" <<'EOF'
import http.client, sys, time
port, host = int(sys.argv[1]), sys.argv[2]
deadline, last = time.time() + 180, None
while time.time() < deadline:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse()
        r.read()
        last = r.status
        if r.status == 200:
            sys.exit(0)
    except OSError as e:
        last = e
    time.sleep(0.5)
sys.exit(f"no 200 through both hops within 3 minutes (last: {last})")
EOF
}

wait_ready() { # admin-port
  for _ in $(seq 600); do curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "gateway on admin port $1 did not become ready" >&2; return 1
}

# measure BIN HOP(a|b) LABEL: instructions per request of that hop.
# Background processes write to files, never to this function's stdout
# (the caller's command substitution would otherwise wait for them).
measure() {
  local bin=$1 hop=$2 label=$3 dir
  dir="$WORK/run-$hop-$RANDOM"; mkdir -p "$dir"
  local O AE AI AA BE BI BA
  O=$(port); AE=$(port); AI=$(port); AA=$(port); BE=$(port); BI=$(port); BA=$(port)
  cat >"$dir/catalog.json" <<EOF
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
  gw() { # name td egress ingress admin peer-td local
    cat <<EOF
cluster: { id: $1, region: r, zone: z, jurisdictions: [eu], trustDomain: $2 }
listeners: { egress: "127.0.0.1:$3", ingress: "127.0.0.1:$4", admin: "127.0.0.1:$5" }
identity: { authorityDir: "$dir/$1-ca" }
federation: { catalogFile: "$dir/catalog.json", bundles: { "$6": "$dir/$6.bundle.json" } }
localServices: { $7 }
threads: 1
EOF
  }
  gw bench-a bench-a.test "$AE" "$AI" "$AA" bench-b.test "" >"$dir/a.yaml"
  gw bench-b bench-b.test "$BE" "$BI" "$BA" bench-a.test "\"demo/echo\": [\"127.0.0.1:$O\"]" >"$dir/b.yaml"
  "$bin" --config "$dir/a.yaml" --write-bundle "$dir/bench-a.test.bundle.json"
  "$bin" --config "$dir/b.yaml" --write-bundle "$dir/bench-b.test.bundle.json"
  local po
  "$ORIGIN" "127.0.0.1:$O" >"$dir/origin.log" 2>&1 & po=$!
  echo "$po" >>"$PIDFILE"
  local vg=(valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" --dump-instr=no)
  local pa pb measured
  if [ "$hop" = b ]; then
    CAUSEWAY_GATEWAY_LOG_LEVEL=error "${vg[@]}" "$bin" --config "$dir/b.yaml" >"$dir/b.log" 2>"$dir/vg.log" & pb=$!
  else
    CAUSEWAY_GATEWAY_LOG_LEVEL=error "$bin" --config "$dir/b.yaml" >"$dir/b.log" 2>&1 & pb=$!
  fi
  echo "$pb" >>"$PIDFILE"
  if [ "$hop" = a ]; then
    CAUSEWAY_GATEWAY_LOG_LEVEL=error "${vg[@]}" "$bin" --config "$dir/a.yaml" >"$dir/a.log" 2>"$dir/vg.log" & pa=$!
  else
    CAUSEWAY_GATEWAY_LOG_LEVEL=error "$bin" --config "$dir/a.yaml" >"$dir/a.log" 2>&1 & pa=$!
  fi
  echo "$pa" >>"$PIDFILE"
  wait_ready "$AA"; wait_ready "$BA"
  measured=$([ "$hop" = a ] && echo "$pa" || echo "$pb")
  # A failed request fails the run (the count would be of errors).
  if ! first_ok "$AE" || ! requests "$AE" "$WARMUP"; then
    echo "warm-up requests failed; gateway logs:" >&2
    tail -n 20 "$dir/a.log" "$dir/b.log" "$dir/vg.log" >&2
    return 1
  fi
  callgrind_control -z "$measured" >/dev/null 2>&1
  requests "$AE" "$N" || { echo "measured requests failed" >&2; return 1; }
  callgrind_control -d "$measured" >/dev/null 2>&1
  kill "$pa" "$pb" "$po" 2>/dev/null || true
  wait "$pa" "$pb" "$po" 2>/dev/null || true
  # The explicit dump (`.1`) holds exactly the N requests (and timers).
  local total
  total=$(awk '/^summary:/ {print $2}' "$dir/cg.$measured.1")
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$dir/cg.$measured.1" "$KEEP/$label-$([ "$hop" = a ] && echo egress || echo ingress).cg"
  fi
  echo $(( total / N ))
}

printf '%-12s %18s %18s\n' binary "egress instr/req" "ingress instr/req"
for spec in "$@"; do
  label=${spec%%=*}; bin=${spec#*=}
  [ -x "$bin" ] || { echo "$bin: not an executable" >&2; exit 1; }
  a=$(measure "$bin" a "$label") || exit 1
  b=$(measure "$bin" b "$label") || exit 1
  printf '%-12s %18s %18s\n' "$label" "$a" "$b"
done
