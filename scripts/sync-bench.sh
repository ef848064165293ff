#!/usr/bin/env bash
# One-hop folder sync on loopback versus raw quinn (issue 4 benchmarks):
#   1. raw quinn: examples/quic_throughput moves the same bytes on one raw
#      quinn stream with the CLA's TLS/transport config, in the same run;
#   2. a folder holding one BIG_MIB file syncs A -> C;
#   3. a folder of SMALL files of 1 KiB syncs A -> C.
# Each sync is timed from `spore sync add` at A until the receiver holds
# everything: files appear at C only complete, verified and fsynced, so
# "all present" is the end; then the trees are compared byte for byte.
# Peak RSS (VmHWM) of both nodes is read from /proc at the end of each run.
#
# Usage: scripts/sync-bench.sh [BIG_MIB] [SMALL]   (default 1024 10000)
# BIG_MIB=0 runs only the small files (no raw quinn, no big file); SMALL=0
# only the big file. With
# SPORE_BENCH_NOPACK=1 the small files also run once with packing off
# (`[sync] pack_max_file_bytes = 0`: one chunk + one manifest bundle per
# file, as before packs), for a before/after in the same run.
# Profile: the test/dev profile (dependencies optimized), or the release
# build with SPORE_BENCH_RELEASE=1. Logs stay in $BENCH_DIR (default: a new
# directory under /tmp). SPORE_BIN runs that node binary instead of the
# built one (to compare builds; the raw quinn example is still built).
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_MIB="${1:-1024}"
SMALL="${2:-10000}"
T="${CARGO_TARGET_DIR:-target}"
PROFILE=debug
FLAGS=()
if [[ "${SPORE_BENCH_RELEASE:-0}" == 1 ]]; then PROFILE=release; FLAGS=(--release); fi
BENCH_DIR="${BENCH_DIR:-$(mktemp -d /tmp/spore-sync-bench.XXXXXX)}"
echo "logs: $BENCH_DIR (profile $PROFILE)"
timeout 1800 cargo build "${FLAGS[@]}" --bin spore --example quic_throughput 2>&1 | tail -n 1
S="${SPORE_BIN:-$T/$PROFILE/spore}"

if [[ "$BIG_MIB" != 0 ]]; then
  echo "== raw quinn, $BIG_MIB MiB"
  timeout 600 "$T/$PROFILE/examples/quic_throughput" "$BIG_MIB"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_node() { # dir name -> waits for api.json
  mkdir -p "$1"
  [[ -n "${NODE_TOML:-}" ]] && printf '%s\n' "$NODE_TOML" >"$1/spore.toml"
  "$S" node --data-dir "$1" --node-id "dtn://$2/" --listen 127.0.0.1:0 \
    --api 127.0.0.1:0 --sync-settle 200ms 2>"$1.log" &
  pids+=($!)
  for _ in $(seq 200); do [[ -f "$1/api.json" ]] && return 0; sleep 0.05; done
  echo "node $2 did not start"; exit 1
}
json() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
hwm() { awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$1/status"; }

run_case() { # name; the folder is $BENCH_DIR/$1/src
  local d="$BENCH_DIR/$1"
  start_node "$d/c" c
  start_node "$d/a" a
  "$S" sync accept --from dtn://a/ --into "$d/recv" --data-dir "$d/c" >/dev/null
  "$S" peers add "$(json "$d/c/api.json" quic)" --data-dir "$d/a" >/dev/null
  local want bytes
  want=$(find "$d/src" -type f | wc -l)
  bytes=$(find "$d/src" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
  local t0 t1
  t0=$(date +%s.%N)
  "$S" sync add "$d/src" --to dtn://c/files --name bench --data-dir "$d/a" >/dev/null
  for _ in $(seq 36000); do
    if [[ -d "$d/recv/bench" ]] && \
       [[ $(find "$d/recv/bench" -type f ! -name '.spore-*' | wc -l) -ge $want ]]; then break; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  local a_pid c_pid
  a_pid=$(json "$d/a/api.json" pid); c_pid=$(json "$d/c/api.json" pid)
  echo "$1: $want files, $bytes bytes in $(echo "$t1 - $t0" | bc -l | cut -c1-7) s" \
       "= $(echo "$bytes / ($t1 - $t0) / 1000000" | bc -l | cut -c1-6) MB/s," \
       "$(echo "$want / ($t1 - $t0)" | bc -l | cut -c1-7) files/s;" \
       "peak RSS A $(hwm "$a_pid"), C $(hwm "$c_pid")"
  if diff -rq "$d/src" "$d/recv/bench" >/dev/null; then echo "$1: trees identical"; else echo "$1: TREES DIFFER"; fi
  # Files C wrote as their chunks arrived (spec/manifest.md §Progressive reassembly).
  echo "$1: written early: $(grep -c 'written as its chunks arrived' "$d/c.log" || true) file(s);" \
       "last: $(grep -h 'written as its chunks arrived' "$d/c.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g; s/.*arrived //')"
  kill "$a_pid" "$c_pid"; wait "$a_pid" "$c_pid" 2>/dev/null || true
  rm -rf "$d/a" "$d/c"
}

if [[ "$BIG_MIB" != 0 ]]; then
  echo "== one $BIG_MIB MiB file"
  mkdir -p "$BENCH_DIR/big/src"
  head -c "$((BIG_MIB << 20))" /dev/urandom >"$BENCH_DIR/big/src/big.bin"
  run_case big
  rm -rf "$BENCH_DIR/big"
fi

if [[ "$SMALL" == 0 ]]; then exit 0; fi
echo "== $SMALL files of 1 KiB"
python3 - "$BENCH_DIR/small/src" "$SMALL" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i % 100}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
        f.write(os.urandom(1024))
PY
run_case small
if [[ "${SPORE_BENCH_NOPACK:-0}" == 1 ]]; then
  echo "== $SMALL files of 1 KiB, packing off"
  rm -rf "$BENCH_DIR/small/recv"
  NODE_TOML=$'[sync]\npack_max_file_bytes = 0' run_case small
fi
