#!/usr/bin/env bash
# Speed of the simulator (issue 3: "at least 1 M events per second ... so a
# 3-day 100-node trace runs in seconds"): generates a 100-node, 3-day
# Poisson trace and runs it with the release binary, printing the report
# (events, events_per_s); with SIM_PROFILE=1 also where the time went.
#
# Usage: scripts/sim-bench.sh [RATE_PER_PAIR_PER_S] [MESSAGES] [ROUTER] [LIFETIME_S]
# Defaults: every pair meets every 6 hours (1/21600), 2000 messages,
# spray-and-wait (8 copies), 6 h lifetime. Epidemic with messages living
# the whole 3 days makes every node hold every bundle: over 20 minutes.
#
# A second number follows: the same trace with no messages at all
# ("contact-only"), i.e. the per-event cost of contacts between nodes with
# nothing to exchange (ContactUp, PeerSummary, ContactDown, no store write).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-0.0000462963}
messages=${2:-2000}
router=${3:-spray-and-wait}
lifetime=${4:-21600}
# SIM_PROFILE=1: also time every agent call and print where the time went
# (two clock reads per call: the events/s figures are then a little lower).
profile=()
[[ "${SIM_PROFILE:-0}" == 1 ]] && profile=(--profile)
cargo build --release --quiet -p spore-sim
bin=${CARGO_TARGET_DIR:-target}/release/spore-sim
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" gen poisson --nodes 100 --rate "$rate" --duration 259200 --contact-secs 60 --seed 1 > "$dir/trace.txt"
echo "trace: $(wc -l < "$dir/trace.txt") CONN events (100 nodes, 3 days, rate $rate per pair per s)"
/usr/bin/time -f "wall %e s, max RSS %M KiB" \
  "$bin" run --trace "$dir/trace.txt" --router "$router" --messages "$messages" --lifetime "$lifetime" --seed 1 --json "${profile[@]}"
echo
echo "contact-only (same trace, 0 messages: contacts with nothing to exchange):"
/usr/bin/time -f "wall %e s, max RSS %M KiB" \
  "$bin" run --trace "$dir/trace.txt" --router "$router" --messages 0 --seed 1 --json "${profile[@]}" \
  | sed -E 's/.*"events":([0-9]+),"events_per_s":([0-9.]+).*/contact-only: events \1, events_per_s \2/'
echo
