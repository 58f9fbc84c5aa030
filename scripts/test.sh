#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust, Python 3 and pip:
#   - installs what the end-to-end tests drive and nothing else: tmux (the review app in a real
#     terminal), chromium (the HTML report in a headless browser) and postgresql (the team store;
#     each test starts a server of its own in a temporary directory) from Debian's packages, as
#     root or through sudo; without them it stops at once with the one command to run;
#   - Hugging Face `datasets` (the export is loaded as trainers load it), with pip;
#   - the real models (scripts/fetch-models.sh, once; sha256-checked);
# then runs every test, even when one fails (--no-fail-fast): through cargo-nextest when it is
# installed (it is on this project's machines), else `cargo test`. Extra arguments go to either.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v chromium >/dev/null || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "the tests need ${missing[*]}: run  sudo apt-get install -y ${missing[*]}  and start again" >&2
    exit 1
  fi
fi
python3 -c "import datasets" 2>/dev/null || python3 -m pip install --quiet "datasets>=3,<5"
scripts/fetch-models.sh
if cargo nextest --version >/dev/null 2>&1; then
  # .config/nextest.toml: three tests at a time, the ones with the real models first.
  cargo nextest run --all-targets --no-fail-fast "$@"
else
  cargo test --all-targets --no-fail-fast "$@"
fi
