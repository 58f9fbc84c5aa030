#!/usr/bin/env bash
# The whole test suite: fetches the real models once (tests run them), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
# The export test loads every file with Hugging Face `datasets`, as trainers will.
python3 -c "import datasets" 2>/dev/null || python3 -m pip install --quiet "datasets>=3,<5"
cargo test --all-targets "$@"
