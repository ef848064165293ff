#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 1800), one
# after another, and prints each target's final libFuzzer stats line.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   scripts/fuzz.sh            # every target, 30 min each
#   scripts/fuzz.sh 60         # smoke run, 1 min each
#   scripts/fuzz.sh 600 bundle_decode
#
# New corpus entries go to fuzz/corpus-run/<target>/ (git-ignored),
# not to the committed seeds in fuzz/corpus/; crashes land in
# fuzz/artifacts/<target>/ (git-ignored). Exit status 1 if any target
# crashed, panicked or timed out.
set -uo pipefail
cd "$(dirname "$0")/.."

secs="${1:-1800}"
shift || true
case "$secs" in
    ''|*[!0-9]*) echo "SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p fuzz/logs
cargo +nightly fuzz build -O || exit 2

failed=0
for t in "${targets[@]}"; do
    run_dir="fuzz/corpus-run/$t"
    mkdir -p "$run_dir"
    log="fuzz/logs/$t.log"
    echo "=== $t: ${secs}s (log $log)"
    # The outer timeout bounds a hung target: libFuzzer's own limit plus 2 min.
    timeout --kill-after=10 "$((secs + 120))" \
        cargo +nightly fuzz run -O "$t" "$run_dir" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+.*(DONE|exec/s)' "$log" | tail -n 1
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$log"
    if [ "$rc" -ne 0 ]; then
        echo "!!! $t exited with $rc; see $log and fuzz/artifacts/$t/"
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" | head -n 5
        failed=1
    fi
done
exit "$failed"
