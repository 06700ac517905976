#!/usr/bin/env bash
# Runs cargo-fuzz targets one after another on ONE core, each for SECONDS
# (default 600), keeping a summary in fuzz/runs/summary.txt.
# Usage: security/run-fuzz.sh [seconds] [target...]
# Builds once (`cargo fuzz build`), then runs the fuzz binaries directly so
# that a concurrent edit of a dependency does not trigger a rebuild mid-run.
# Set FUZZ_NO_BUILD=1 to skip the build.
set -u
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(spiffe_id parse_host bundle decode_resource gateway_config routing_residency)
fi
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  cargo +nightly fuzz build || exit 1
fi
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p runs artifacts
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  # -jobs=1 -workers=1: a single fuzzing process (the machine is shared);
  # libFuzzer writes its log to fuzz-0.log, moved to runs/<target>.log.
  "$bin/$t" "corpus/$t" -max_total_time="$secs" -jobs=1 -workers=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >/dev/null 2>&1
  rc=$?
  end=$(date +%s)
  mv -f fuzz-0.log "runs/$t-$secs.log" 2>/dev/null
  crashes=$(find "artifacts/$t" -type f | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "runs/$t-$secs.log" | tail -1 | grep -o '[0-9]*$')
  echo "$t rc=$rc seconds=$((end - start)) execs=${execs:-?} artifacts=$crashes" | tee -a runs/summary.txt
done
