#!/usr/bin/env bash
# Starts a local Causeway federation on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "causeway: the local federation is not built yet; see README.md#status" >&2
exit 1
