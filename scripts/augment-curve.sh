#!/usr/bin/env bash
# Issue 9's curve on dev: students on teacher labels only (human weight 0), base = the
# teacher-labelled dev train pairs, then + augmented pairs (1x, 4x, 16x of the base); a bi and a
# cross student per level. Each level trains on a snapshot that holds only that level's
# augmented pairs (augmented ids grow level by level).
#
# Usage: scripts/augment-curve.sh DEV_DB TEST_QUERY_IDS WORK_DIR
#   DEV_DB: dev.jsonl imported, the test and train pairs teacher-labelled (issue 7's database);
#   TEST_QUERY_IDS: comma-separated query ids of the test split (never augmented or taught);
#   WORK_DIR: where the levels' databases, students, logs and compare-*.json go.
# Re-running resumes (done-* markers; augment and teach add only what is missing).
set -euxo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${W:-$ROOT/target/debug/workbench}
B=$ROOT/models/student-base
M=$ROOT/models/teacher/SmolLM2-135M-Instruct.Q4_1.gguf
src=$(realpath "$1"); test_queries=$2
mkdir -p "$3" && cd "$3"
[ -f curve.db ] || cp "$src" curve.db
train() { # DB NAME KIND [--include-augmented]
  local db=$1 n=$2-$3
  [ -f done-$n ] && return
  $W --db $db student train --kind $3 --epochs 2 --max-tokens 64 --batch-size 16 --human-weight 0 \
     --out students/$n --name $n --base $B "${@:4}" > train-$n.log 2>&1
  $W --db $db student score --name $n > score-$n.log 2>&1
  $W --db $db compare --student $n --split test --json > compare-$n.json 2>&1
  touch done-$n
}
snapshot() { # NAME MAX_AUGMENTED_ID
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
name, top = sys.argv[1], int(sys.argv[2])
src = sqlite3.connect("curve.db"); dst = sqlite3.connect(f"level-{name}.db")
src.backup(dst); src.close()
gone = f"(SELECT id FROM pairs WHERE origin != 'import' AND id > {top})"
for t in ("student_scores", "audit_findings", "annotations", "judgments"):
    dst.execute(f"DELETE FROM {t} WHERE pair_id IN {gone}")
dst.execute(f"DELETE FROM pairs WHERE id IN {gone}")
dst.commit()
print(name, dst.execute("SELECT count(*) FROM pairs WHERE origin != 'import'").fetchone())
PY
}
level() { # NAME PER_QUERY
  $W --db curve.db augment --per-query $2 --seed 0 --json > augment-$1.json 2>&1
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
  [ -n "$ids" ] && $W --db curve.db teach --model $M --mode score --only "$ids" > teach-$1.log 2>&1
  top=$(python3 -c "import sqlite3; print(sqlite3.connect('curve.db').execute(\"SELECT max(id) FROM pairs\").fetchone()[0])")
  [ -f top-$1 ] || echo $top > top-$1
  [ -f level-$1.db ] || snapshot $1 $(cat top-$1)
  train level-$1.db $1 bi --include-augmented
  train level-$1.db $1 cross --include-augmented
}
train curve.db base bi
train curve.db base cross
level x1 2
level x4 8
level x16 31
echo ALLDONE > done.txt
