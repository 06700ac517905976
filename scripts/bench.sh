#!/usr/bin/env bash
# Side-by-side benchmark: Causeway gateway vs direct, nginx, HAProxy and Envoy.
#
#   ./scripts/bench.sh [--quick] [--rounds N] [--seconds S] [--idle-conns N] [--no-build]
#
# Installs the peers and load generators if missing (apt-get, pip into a venv and
# `cargo install oha` under ${CAUSEWAY_BENCH_CACHE:-~/.cache/causeway-bench}), builds the
# gateway in release mode, runs interleaved rounds and writes bench/results/latest.json,
# bench/results/latest.md and the results section of BENCHMARKS.md. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
