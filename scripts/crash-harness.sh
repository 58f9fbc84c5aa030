#!/usr/bin/env bash
# The crash harness at scale (tests/e2e/crash.rs with ROUNDS kills per command, default 100): every
# long command SIGKILLed at seeded random moments and run again, the invariants checked after
# each kill. Prints the table BENCHMARKS.md keeps. Not run in CI (CI runs 2 rounds per command).
#   scripts/crash-harness.sh [ROUNDS] [SEED]
# WORKBENCH_CRASH_CASES=name,… runs only the cases whose names contain one of them (e.g.
# "teach --workers 2,augment"); WORKBENCH_BIN tests a copied binary while the tree is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-100}
seed=${2:-1}
echo "| command | rounds | killed mid-run | integrity failures | repairs needed | lost or duplicated |"
echo "|---|---|---|---|---|---|"
WORKBENCH_CRASH_ROUNDS=$rounds WORKBENCH_CRASH_SEED=$seed \
  cargo test --test e2e crash:: -- --nocapture --test-threads 1 2>/dev/null \
  | sed -n 's/^crash-harness | \(.*\) | \([0-9]*\) rounds | \([0-9]*\) killed mid-run | integrity failures \([0-9]*\) | repairs \([0-9]*\) | lost or duplicated \([0-9]*\)$/| \1 | \2 | \3 | \4 | \5 | \6 |/p'
