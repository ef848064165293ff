#!/usr/bin/env bash
# Builds release, runs the criterion benches (codec, content, ingest) and the
# one-hop file transfer example (256 MiB, three runs), then prints a summary
# with the issue's targets: ingest >= 20 000 bundles/s (batches of 64) and
# one hop >= 0.5 x raw quinn. Every step is bounded by `timeout`; the whole
# script takes about 5 minutes on 2 cores.
#
# Usage: scripts/bench.sh [MiB]   (default 256)
# Logs go to $BENCH_LOG_DIR (default: a new directory under /tmp).
set -euo pipefail

cd "$(dirname "$0")/.."
MIB="${1:-256}"
RUNS=3
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
LOG_DIR="${BENCH_LOG_DIR:-$(mktemp -d /tmp/spore-bench.XXXXXX)}"
mkdir -p "$LOG_DIR"
echo "logs: $LOG_DIR"

echo "== build (release): spore binary, examples, benches"
timeout 1200 cargo build --release --bin spore --example one_hop
timeout 1200 cargo bench --no-run --bench codec --bench content --bench ingest 2>&1 \
  | tail -n 3

for b in codec content ingest; do
  echo "== cargo bench --bench $b"
  timeout 600 cargo bench --bench "$b" >"$LOG_DIR/$b.txt" 2>&1 \
    || { echo "bench $b failed, see $LOG_DIR/$b.txt"; exit 1; }
done

echo "== one_hop $MIB MiB x $RUNS"
for i in $(seq "$RUNS"); do
  timeout 600 "$TARGET_DIR/release/examples/one_hop" "$MIB" | tee "$LOG_DIR/one_hop_$i.txt"
done

# Criterion lines: a name, then "time: [lo mid hi]" and maybe "thrpt: [lo mid hi]";
# long names sit on a line of their own. Prints "name<TAB>median time<TAB>median thrpt".
criterion_medians() {
  awk '
    /^(Benchmarking|Found|Warning|  [0-9]+ \(|     Running|    Finished)/ { next }
    /^[^ ]/ { name = $1; skip = 0 }
    /change:/ { skip = 1 }
    skip { next }
    /time:/  { sub(/.*\[/, ""); times[name] = $3 " " $4; order[++n] = name }
    /thrpt:/ { sub(/.*\[/, ""); thr[name] = $3 " " $4 }
    END { for (i = 1; i <= n; i++) printf "%s\t%s\t%s\n", order[i], times[order[i]], thr[order[i]] }
  ' "$@"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "================ summary ================"
printf "%-34s %-14s %s\n" "criterion bench" "median time" "median throughput"
for b in codec content ingest; do
  criterion_medians "$LOG_DIR/$b.txt" | while IFS=$'\t' read -r name t thr; do
    printf "%-34s %-14s %s\n" "$name" "$t" "$thr"
  done
done

field() { grep -h '^RESULT' "$LOG_DIR"/one_hop_*.txt | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
raw=$(field raw_mbps | median)
spore=$(field spore_mbps | median)
ratio=$(field ratio | median)
echo
printf "one hop, %s MiB, median of %s: raw quinn %s MB/s, spore %s MB/s, ratio %s\n" \
  "$MIB" "$RUNS" "$raw" "$spore" "$ratio"
echo "  runs (raw / spore MB/s): $(field raw_mbps | paste -sd' ') / $(field spore_mbps | paste -sd' ')"
echo "  contact transfer CPU seconds (both nodes) per raw quinn CPU second, median: $(field contact_cpu_per_raw | median)"

ingest=$(criterion_medians "$LOG_DIR/ingest.txt" | awk -F'\t' '$1 ~ /batch_64/ { print $3 }')
echo
echo "targets:"
awk -v r="$ratio" 'BEGIN { printf "  one hop >= 0.5 x raw quinn:       %s (ratio %s)\n", (r >= 0.5 ? "MET" : "MISSED"), r }'
echo "$ingest" | awk '{ v = $1; if ($2 ~ /^K/) v *= 1000; if ($2 ~ /^M/) v *= 1e6;
  printf "  ingest >= 20000 bundles/s (x64): %s (%.0f bundles/s)\n", (v >= 20000 ? "MET" : "MISSED"), v }'
