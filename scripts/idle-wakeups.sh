#!/usr/bin/env bash
# Background wakeups of an idle node (issue 4: "no background wakeups when
# nothing is pending"): starts `spore node` with discovery off and one
# watched, empty sync folder, lets it settle 3 s, then counts the context
# switches of all its threads over SECS seconds (/proc, Linux).
#
# Usage: scripts/idle-wakeups.sh [SECS] [SPORE_BIN...]
# Default: 10 s, the release binary (built if missing). Give several
# binaries to compare builds; each is measured in turn.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
bins=("$@")
if [[ ${#bins[@]} -eq 0 ]]; then
  cargo build --release --quiet
  bins=("${CARGO_TARGET_DIR:-target}/release/spore")
fi
switches() { # PID -> "TID COUNT" lines
  for t in /proc/"$1"/task/*; do
    echo "$(basename "$t") $(awk '/ctxt_switches/ {s+=$2} END {print s+0}' "$t/status" 2>/dev/null)"
  done | sort
}
for bin in "${bins[@]}"; do
  dir=$(mktemp -d)
  mkdir -p "$dir/out"
  "$bin" node --data-dir "$dir/a" --listen 127.0.0.1:0 --api 127.0.0.1:0 --discovery off \
    > "$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [[ -f $dir/a/api.json ]] && break; sleep 0.1; done
  "$bin" sync add --data-dir "$dir/a" --to dtn://c/files "$dir/out" > /dev/null
  sleep 3
  switches "$pid" > "$dir/before"
  sleep "$secs"
  switches "$pid" > "$dir/after"
  # A thread started meanwhile counts from zero.
  n=$(join -a2 "$dir/before" "$dir/after" | awk '{t += (NF==3) ? $3-$2 : $2} END {print t+0}')
  echo "$bin: $n context switches in $secs s (all threads, idle)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
done
