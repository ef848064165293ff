#!/usr/bin/env bash
# How much of the one-hop gap to raw quinn (issues 2 and 4) is the disk.
#
# A spore hop is durable: the receiver acknowledges custody only once each
# chunk is fsynced in its store, and a file for it is written again,
# fsynced, into the inbox or sync folder. Raw quinn writes nothing. So a
# one-hop transfer can go no faster than the disk takes those bytes, and
# on one machine the sender's store shares that disk as well.
#
# This script measures, on the file system holding $TMPDIR (default /tmp):
#   1. its durable write rate: MIB MiB written by dd with conv=fsync;
#   2. examples/one_hop MIB there (the usual benchmark);
#   3. examples/one_hop MIB with both nodes' data on tmpfs (/dev/shm), the
#      same code with the disk out of the picture (what is left is CPU);
# and prints the ceilings the disk puts on the ratio to raw quinn.
#
# Usage: scripts/disk-bound.sh [MIB]   (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-256}"
T="${CARGO_TARGET_DIR:-target}"
DISK_DIR="${TMPDIR:-/tmp}"
timeout 1800 cargo build --release --bin spore --example one_hop 2>&1 | tail -n 1

probe="$(mktemp "$DISK_DIR/spore-disk-bound.XXXXXX")"
trap 'rm -f "$probe"' EXIT
t0=$(date +%s.%N)
dd if=/dev/zero of="$probe" bs=1M count="$MIB" conv=fsync status=none
t1=$(date +%s.%N)
rm -f "$probe"
disk=$(echo "$MIB * 1.048576 / ($t1 - $t0)" | bc -l)
printf 'durable writes on %s: %d MiB in %.3f s = %.1f MB/s\n' \
  "$DISK_DIR" "$MIB" "$(echo "$t1 - $t0" | bc -l)" "$disk"

run() { # label tmpdir -> the RESULT line
  local line
  line=$(TMPDIR="$2" timeout 600 "$T/release/examples/one_hop" "$MIB" 2>&1 | grep '^RESULT')
  echo "$1: $line" >&2
  echo "$line"
}
field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<"$2"; }

on_disk=$(run "one hop, data on $DISK_DIR" "$DISK_DIR")
on_shm=""
if [[ -d /dev/shm && -w /dev/shm ]]; then
  on_shm=$(run "one hop, data on tmpfs" /dev/shm)
fi

raw=$(field raw_mbps "$on_disk")
echo
printf 'raw quinn in the disk run: %.1f MB/s\n' "$raw"
printf 'ceiling with ONE durable copy at the receiver: %.1f MB/s = %.3f x raw quinn\n' \
  "$disk" "$(echo "$disk / $raw" | bc -l)"
printf 'ceiling with the receiver writing store + file (2 copies): %.3f x raw quinn\n' \
  "$(echo "$disk / 2 / $raw" | bc -l)"
printf 'measured on disk:  contact %.3f x, whole send %.3f x\n' \
  "$(field contact_ratio "$on_disk")" "$(field ratio "$on_disk")"
if [[ -n "$on_shm" ]]; then
  printf 'measured on tmpfs: contact %.3f x, whole send %.3f x (raw %.1f MB/s)\n' \
    "$(field contact_ratio "$on_shm")" "$(field ratio "$on_shm")" "$(field raw_mbps "$on_shm")"
fi
