#!/usr/bin/env bash
# Starts a local Causeway federation on this machine: the federation API
# (embedded store; --etcd URL for a real etcd), three gateways as separate
# processes in two jurisdictions with sample services, a little traffic, and
# a live view refreshed every two seconds. Ctrl-C stops everything.
#
# A thin entry point: installs/checks the toolchain (scripts/setup.sh), builds
# the binaries (cargo shows its progress) and runs `causeway-local`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: ./scripts/local-federation.sh [OPTIONS]

Starts a local Causeway federation and shows it routing:
  - the federation API (REST + gRPC watch) over the embedded store, or a real
    etcd with --etcd
  - three clusters, each a causeway-gateway process on its own address with its own trust domain, and echo backends:
      eu-west-1     region eu-west     jurisdictions eu
      eu-central-1  region eu-central  jurisdictions eu, de
      us-east-1     region us-east     jurisdictions us
  - residency policies: payments/* is served only in the EU (payments/audit,
    exported only in the US, is therefore always denied); shop/profile
    requests with `x-data-region: eu` too
  - sample traffic between the clusters
  - the read-only web console: its URL (with a read token in the fragment)
    is printed first; open it in a browser (docs/console.md)
  - a live view: clusters, which cluster serves each caller and why (from
    each gateway's /debug/route), residency denials, request rates; plus the
    REST API URL, every gateway's metrics and /debug/route URLs, and
    causewayctl / curl lines to try.

Options:
  --etcd URL[,URL]  use this etcd instead of the embedded store
  --dir DIR         keep state and logs in DIR (default: a temp dir removed at exit)
  --no-traffic      do not drive sample traffic
  --refresh SECS    seconds between refreshes of the live view (default 2)
  --duration SECS   stop after SECS seconds (default: until Ctrl-C)
  --once            print one view and exit
  -h, --help        this help

Ctrl-C stops every process it started (gateways, API, backends).

Each gateway runs its own cluster agent: it registers its cluster with a
cluster-scoped token, publishes its trust bundle and the services of its
static discovery file, and follows the catalog over the gRPC watch. As root
each cluster gets its own network namespace, otherwise a loopback address.

Needs: a Rust toolchain, cmake, protoc and a C compiler (scripts/setup.sh
installs them on Debian when run as root). etcd is needed only with --etcd.
EOF
}

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
  esac
done

if ! bash scripts/setup.sh; then
  # As a non-root user setup.sh only reports what is missing. The local
  # federation needs the build tools; etcd only for --etcd.
  for tool in cargo cmake protoc cc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "causeway: '$tool' is required to build; see the apt-get line above" >&2
      exit 1
    fi
  done
  echo "causeway: continuing without the optional tools listed above" >&2
fi

echo "==> building causeway-federation, causeway-gateway, causeway-local" >&2
cargo build -p causeway-federation -p causeway-gateway -p causeway-e2e --bins

target_dir="${CARGO_TARGET_DIR:-target}"
export CAUSEWAY_BIN_DIR="$PWD/$target_dir/debug"
case "$target_dir" in /*) export CAUSEWAY_BIN_DIR="$target_dir/debug" ;; esac
exec "$CAUSEWAY_BIN_DIR/causeway-local" "$@"
