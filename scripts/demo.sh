#!/usr/bin/env bash
# The main job on the embedded defaults: local models, a SQLite file, the shipped ESCI fixture.
#   fetch models → build → init ./workbench.db → import the fixture → teach 10 pairs → stats → review
# Re-running resumes: nothing is imported or judged twice. WORKBENCH_DB picks another file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
# --all-targets: the same feature set as `cargo test`, so mistral.rs is compiled once for both.
cargo build --all-targets
wb="${CARGO_TARGET_DIR:-target}/debug/workbench"
$wb init
$wb import fixtures/esci-fixture.jsonl
$wb teach --limit "${DEMO_PAIRS:-10}"
$wb stats
$wb show 73232 B07N6VYKD3
# In a terminal, end in the review app (`?` lists the keys); in a pipe or CI, stop here.
if [ -t 0 ] && [ -t 1 ]; then $wb review; fi
