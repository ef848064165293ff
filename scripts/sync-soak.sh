#!/usr/bin/env bash
# Folder-sync soak at the issue's full size: a 200 MiB file and 2 000 small
# files (plus nested dirs, an empty file, unicode names) sync A -> B -> C
# while B's links flap every 0.5–5 s and B is SIGKILLed once; then an edit
# in the middle of the big file must resend exactly one chunk.
# Same test as tests/sync_folder.rs with bigger sizes; the test profile
# (dependencies optimized), or the release build with SPORE_SOAK_RELEASE=1.
#
# Usage: scripts/sync-soak.sh [BIG_MIB] [SMALL_FILES] [TIMEOUT_S]
# Prints the test's own line: "synced N files (...) in S s; relays ...".
set -euo pipefail
cd "$(dirname "$0")/.."
export SPORE_SYNC_BIG_MIB="${1:-200}"
export SPORE_SYNC_SMALL="${2:-2000}"
export SPORE_SYNC_TIMEOUT_S="${3:-600}"
profile=()
[[ "${SPORE_SOAK_RELEASE:-0}" == 1 ]] && profile=(--release)
/usr/bin/time -v cargo test "${profile[@]}" --test sync_folder -- --nocapture 2>&1 |
    grep -E "^error|synced|test result|panicked|Elapsed|Maximum resident"
