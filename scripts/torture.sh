#!/usr/bin/env bash
# The crash-torture campaign of issue 7: 100 SIGKILL cycles on an
# A -> B -> C line of real nodes, then check 0 lost / 0 duplicated.
# Usage: scripts/torture.sh SEED [extra spore-torture options...]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:?usage: scripts/torture.sh SEED [options]}
shift
cargo build --release --bins --quiet
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/spore-torture" --cycles 100 --max-seconds 600 --seed "$seed" "$@"
