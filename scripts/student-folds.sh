#!/usr/bin/env bash
# Cross-validation over queries: a student and the lexical baseline (TF-IDF + logistic
# regression, scripts/lexical_baseline.py) trained on the same train split and scored on the same
# test split of every fold, with the teacher on the same test pairs. Not run in CI: a benchmark
# for BENCHMARKS.md.
#
#   scripts/student-folds.sh DB WORK NAME [FOLDS] -- [student train flags…]
#
# DB: a database with human labels (e.g. fixtures/esci-dev.jsonl imported) and, for teacher
# rows, teacher judgments. For each fold K of FOLDS (default 5), `--split fold:K/FOLDS`:
#   WORK/baseline-fK.json        the baseline (cached: one per fold, whatever NAME)
#   WORK/NAME/fK/compare.json    the student (trained, test pairs scored, compared)
# then prints one row per fold and the mean, and writes WORK/NAME/summary.json.
# scikit-learn is installed into WORK/venv on first use. WORKBENCH overrides the binary.
# CALIBRATE=log-loss|macro-f1 first fits the teacher's calibration on each fold's split
# (`teacher calibrate --split fold:K/FOLDS`), which the student then learns from.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 3 ] || { sed -n 2,14p "$0" >&2; exit 2; }
db=$1 work=$2 name=$3; shift 3
folds=5
if [ $# -gt 0 ] && [ "$1" != "--" ]; then folds=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
wb=${WORKBENCH:-$here/target/debug/workbench}
mkdir -p "$work/$name"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet "scikit-learn>=1.3,<2"
fi

for k in $(seq 1 "$folds"); do
  split="fold:$k/$folds"
  if [ ! -f "$work/baseline-f$k.json" ]; then
    "$wb" --db "$db" export --out "$work/export-f$k" --format cot --source human-only \
      --split "$split" --force > /dev/null
    "$work/venv/bin/python" "$here/scripts/lexical_baseline.py" "$work/export-f$k" \
      > "$work/baseline-f$k.json.part"
    mv "$work/baseline-f$k.json.part" "$work/baseline-f$k.json"
  fi
  out="$work/$name/f$k"
  if [ ! -f "$out/compare.json" ]; then
    start=$(date +%s)
    if [ -n "${CALIBRATE:-}" ]; then
      "$wb" --db "$db" teacher calibrate --split "$split" --objective "$CALIBRATE" > "$out.calibrate.log"
    fi
    "$wb" --db "$db" student train --split "$split" --out "$out" --name "$name-f$k" "$@" \
      | tee "$out.train.log"
    "$wb" --db "$db" student score --name "$name-f$k" --split test
    "$wb" --db "$db" compare --student "$name-f$k" --split test --json > "$out/compare.json.part"
    mv "$out/compare.json.part" "$out/compare.json"
    echo "fold $k: $(( $(date +%s) - start )) s" | tee -a "$work/$name/times.txt"
  fi
done

python3 - "$work" "$name" "$folds" <<'PY'
import json, statistics, sys
from pathlib import Path
work, name, folds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rows = []
for k in range(1, folds + 1):
    c = json.loads((work / name / f"f{k}" / "compare.json").read_text())
    b = json.loads((work / f"baseline-f{k}.json").read_text())
    s, t = c["student_vs_human"], c["teacher_vs_human"]
    rows.append({
        "fold": k, "pairs": s["n"], "queries": c["queries"],
        "student_f1": s["macro_f1"], "student_kappa": s["kappa"], "student_acc": s["accuracy"],
        "baseline_f1": b["macro_f1"], "baseline_kappa": b["kappa"], "baseline_pairs": b["test_pairs"],
        "teacher_pairs": t["n"], "teacher_f1": t["macro_f1"] if t["n"] else None,
        "teacher_kappa": t["kappa"] if t["n"] else None,
        "student_f1_teacher_pairs": c["student_vs_human_judged"]["macro_f1"] if t["n"] else None,
        "calibrated_teacher_f1": (c.get("teacher_calibrated_vs_human") or {}).get("macro_f1"),
    })
    assert b["test_pairs"] == s["n"], f"fold {k}: baseline scored {b['test_pairs']} pairs, student {s['n']}"
def mean(key):
    v = [r[key] for r in rows if r[key] is not None]
    return statistics.mean(v) if v else None
summary = {"name": name, "folds": rows, "mean": {k: mean(k) for k in rows[0] if k != "fold"}}
(work / name / "summary.json").write_text(json.dumps(summary, indent=1))
f = lambda x: "  –  " if x is None else f"{x:.3f}"
print(f"{name}: fold | pairs | student F1 κ | baseline F1 κ | teacher (pairs) F1 κ | student F1 on teacher's pairs | calibrated teacher F1")
for r in rows + [dict(summary["mean"], fold="mean")]:
    print(f"  {r['fold']} | {r['pairs']:.0f} | {f(r['student_f1'])} {f(r['student_kappa'])} | "
          f"{f(r['baseline_f1'])} {f(r['baseline_kappa'])} | ({r['teacher_pairs']:.0f}) "
          f"{f(r['teacher_f1'])} {f(r['teacher_kappa'])} | {f(r['student_f1_teacher_pairs'])} | "
          f"{f(r['calibrated_teacher_f1'])}")
PY
