#!/usr/bin/env bash
# Randomized simulator campaign (sim/tests/invariants.rs) in release:
# every policy on random small traces; each run must finish, lose nothing
# and stay within the oracle. Bounded by the case count.
# Usage: scripts/sim-chaos.sh [CASES] [FIRST_SEED]   (defaults 300, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
SPORE_SIM_CASES="${1:-300}" SPORE_SIM_SEED="${2:-1}" \
    cargo test --release -p spore-sim --test invariants -- --nocapture
