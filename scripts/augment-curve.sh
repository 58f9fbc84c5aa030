#!/usr/bin/env bash
# The augmentation curve on dev (BENCHMARKS.md): students on teacher labels only (human weight 0), base = the
# teacher-labelled dev train pairs, then + exactly 1x, 4x, 16x as many teacher-labelled
# augmented train pairs (`student train --augmented-ratio R`, a seeded sample); a bi and a cross
# student per level, each scored and compared on the imported dev pairs.
#
# Usage: scripts/augment-curve.sh DEV_DB TEST_QUERY_IDS WORK_DIR [PER_QUERY]
#   DEV_DB: dev.jsonl imported, the test and train pairs teacher-labelled (the students' database of BENCHMARKS.md);
#   TEST_QUERY_IDS: comma-separated query ids of the test split (never augmented or taught);
#   WORK_DIR: where the databases, students, logs and compare-*.json go;
#   PER_QUERY: augmented pairs per query (default 41: enough labelled pairs for 16x).
# Re-running resumes (done-* markers; augment and teach add only what is missing).
set -euxo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${W:-$ROOT/target/debug/workbench}
B=$ROOT/models/student-base
M=$ROOT/models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf
src=$(realpath "$1"); test_queries=$2; per_query=${4:-41}
mkdir -p "$3" && cd "$3"
[ -f curve.db ] || cp "$src" curve.db
[ -f eval.db ] || cp "$src" eval.db # imported pairs only: what the students are compared on
train() { # NAME KIND [ARGS...]
  local n=$1-$2
  [ -f done-$n ] && return
  $W --db curve.db student train --kind $2 --encoder fine-tune --layers 6 --epochs 2 --max-tokens 64 --batch-size 16 \
     --human-weight 0 --out students/$n --name $n --base $B "${@:3}" > train-$n.log 2>&1
  $W --db eval.db student score --model students/$n --name $n > score-$n.log 2>&1
  $W --db eval.db compare --student $n --split test --json > compare-$n.json 2>&1
  touch done-$n
}
$W --db curve.db augment --per-query $per_query --seed 0 --json > augment.json 2>&1
ids=$(python3 - "$test_queries" <<'PY'
import sqlite3, sys
test = set(sys.argv[1].split(","))
c = sqlite3.connect("file:curve.db?mode=ro", uri=True)
rows = c.execute("""SELECT q.ext_id, i.ext_id FROM pairs p JOIN queries q ON q.id = p.query_id
  JOIN items i ON i.id = p.item_id
  WHERE p.origin != 'import' AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = p.id)""").fetchall()
print(",".join(f"{q}/{i}" for q, i in rows if q not in test))
PY
)
[ -n "$ids" ] && $W --db curve.db teach --model $M --mode score --only "$ids" > teach.log 2>&1
for kind in bi cross; do
  train base $kind
  for r in 1 4 16; do train x$r $kind --augmented-ratio $r; done
done
echo ALLDONE > done.txt
