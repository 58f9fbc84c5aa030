#!/usr/bin/env bash
# The whole test suite: fetches the real models once (tests run them), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo test --all-targets "$@"
