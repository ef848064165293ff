#!/usr/bin/env bash
# Does folder sync memory grow with the file size? (issue 4: "a 4 GiB file
# syncs with memory that does not grow with the file size")
#
# For each SIZE_MIB: one random file of that size in a fresh folder syncs
# A -> C over one hop on loopback (`spore sync add` at A, `spore sync
# accept` at C), timed from `sync add` until the file is at C (files appear
# there only complete, verified and fsynced). Both nodes' peak RSS (VmHWM
# from /proc/PID/status) is read once the file is there (and the nodes have
# had 2 s more to finish their bookkeeping); the copy is compared with
# `cmp`. Everything of a size is deleted before the next one. Disk: about
# 4 x SIZE_MIB (source, A's store, C's store, C's copy); check `df -h`.
#
# Usage: scripts/sync-memory.sh SIZE_MIB...     (e.g. 256 1024 4096)
# Uses the release build ($CARGO_TARGET_DIR or target/), or the binary in
# $SPORE_BIN if set (not rebuilt: to compare builds); logs and data in
# $MEM_DIR (default: a new directory under /tmp; removed at the end).
# With MEM_SMAPS_DIR set, both nodes' /proc/PID/smaps (every mapping's
# RSS) are copied there once each file is synced.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: $0 SIZE_MIB..." >&2; exit 2; }
T="${CARGO_TARGET_DIR:-target}"
if [[ -n "${SPORE_BIN:-}" ]]; then
  S="$SPORE_BIN" # a prebuilt binary, to compare builds (not rebuilt)
else
  timeout 3600 cargo build --release --bin spore 2>&1 | tail -n 1
  S="$T/release/spore"
fi
MEM_DIR="${MEM_DIR:-$(mktemp -d /tmp/spore-sync-mem.XXXXXX)}"
echo "data: $MEM_DIR (release build $S)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$MEM_DIR"
}
trap cleanup EXIT

start_node() { # dir name -> waits for api.json
  "$S" node --data-dir "$1" --node-id "dtn://$2/" --listen 127.0.0.1:0 \
    --api 127.0.0.1:0 --sync-settle 200ms 2>"$1.log" &
  pids+=($!)
  for _ in $(seq 400); do [[ -f "$1/api.json" ]] && return 0; sleep 0.05; done
  echo "node $2 did not start; see $1.log" >&2; exit 1
}
json() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

rows=()
run_size() { # SIZE_MIB
  local mib=$1 d="$MEM_DIR/s$1"
  mkdir -p "$d/src"
  head -c "$((mib << 20))" /dev/urandom >"$d/src/big.bin"
  start_node "$d/c" c
  start_node "$d/a" a
  "$S" sync accept --from dtn://a/ --into "$d/recv" --data-dir "$d/c" >/dev/null
  "$S" peers add "$(json "$d/c/api.json" quic)" --data-dir "$d/a" >/dev/null
  local t0 t1 out="$d/recv/mem/big.bin"
  t0=$(date +%s.%N)
  "$S" sync add "$d/src" --to dtn://c/files --name mem --data-dir "$d/a" >/dev/null
  # 1 MB/s at least, else give up.
  for _ in $(seq $((mib * 20 + 1200))); do
    [[ -f "$out" ]] && break
    sleep 0.05
  done
  t1=$(date +%s.%N)
  [[ -f "$out" ]] || { echo "$mib MiB: not synced in time; logs in $d" >&2; exit 1; }
  sleep 2
  local a_pid c_pid a_hwm c_hwm rate same
  a_pid=$(json "$d/a/api.json" pid); c_pid=$(json "$d/c/api.json" pid)
  a_hwm=$(hwm_mib "$a_pid"); c_hwm=$(hwm_mib "$c_pid")
  if [[ -n "${MEM_SMAPS_DIR:-}" ]]; then # where the memory is, per mapping
    mkdir -p "$MEM_SMAPS_DIR"
    cp "/proc/$a_pid/smaps" "$MEM_SMAPS_DIR/smaps-$mib-a.txt"
    cp "/proc/$c_pid/smaps" "$MEM_SMAPS_DIR/smaps-$mib-c.txt"
  fi
  rate=$(echo "($mib * 1048576) / ($t1 - $t0) / 1000000" | bc -l | cut -c1-6)
  if cmp -s "$d/src/big.bin" "$out"; then same=identical; else same=DIFFERENT; fi
  rows+=("$(printf '%8s | %14s | %14s | %7s | %s' "$mib" "$a_hwm" "$c_hwm" "$rate" "$same")")
  echo "${rows[-1]}"
  kill "$a_pid" "$c_pid"; wait "$a_pid" "$c_pid" 2>/dev/null || true
  rm -rf "$d"
}

for mib in "$@"; do run_size "$mib"; done
echo
printf '%8s | %14s | %14s | %7s | %s\n' "size MiB" "peak RSS A MiB" "peak RSS C MiB" "MB/s" "copy"
for r in "${rows[@]}"; do echo "$r"; done
