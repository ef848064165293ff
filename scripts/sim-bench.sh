#!/usr/bin/env bash
# Speed of the simulator (issue 3: "at least 1 M events per second ... so a
# 3-day 100-node trace runs in seconds"): generates a 100-node, 3-day
# Poisson trace and runs it with the release binary, printing the report
# (events, events_per_s) and where the time went (agent calls).
#
# Usage: scripts/sim-bench.sh [RATE_PER_PAIR_PER_S] [MESSAGES] [ROUTER] [LIFETIME_S]
# Defaults: every pair meets every 6 hours (1/21600), 2000 messages,
# spray-and-wait (8 copies), 6 h lifetime. Epidemic with messages living
# the whole 3 days makes every node hold every bundle: over 20 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-0.0000462963}
messages=${2:-2000}
router=${3:-spray-and-wait}
lifetime=${4:-21600}
cargo build --release --quiet -p spore-sim
bin=${CARGO_TARGET_DIR:-target}/release/spore-sim
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" gen poisson --nodes 100 --rate "$rate" --duration 259200 --contact-secs 60 --seed 1 > "$dir/trace.txt"
echo "trace: $(wc -l < "$dir/trace.txt") CONN events (100 nodes, 3 days, rate $rate per pair per s)"
/usr/bin/time -f "wall %e s, max RSS %M KiB" \
  "$bin" run --trace "$dir/trace.txt" --router "$router" --messages "$messages" --lifetime "$lifetime" --seed 1 --json --profile
