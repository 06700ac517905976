#!/usr/bin/env bash
# Runs every cargo-fuzz target one after another on ONE core, each for
# SECONDS (default 600), keeping a summary in fuzz/runs/summary.txt.
# Usage: security/run-fuzz.sh [seconds] [target...]
set -u
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(spiffe_id parse_host bundle decode_resource gateway_config routing_residency)
fi
mkdir -p runs artifacts
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  # -jobs=1 -workers=1: a single fuzzing process (the machine is shared);
  # libFuzzer writes its log to fuzz-0.log, moved to runs/<target>.log.
  cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >/dev/null 2>&1
  rc=$?
  end=$(date +%s)
  mv -f fuzz-0.log "runs/$t.log" 2>/dev/null
  crashes=$(find "artifacts/$t" -type f | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "runs/$t.log" | tail -1 | grep -o '[0-9]*$')
  echo "$t rc=$rc seconds=$((end - start)) execs=${execs:-?} artifacts=$crashes" | tee -a runs/summary.txt
done
