#!/usr/bin/env bash
# Usage: benchmarks/equivalence/numbers.sh SRC_TREE OUT_DIR — the numbers a refactor must not change (same seed):
# the real-data drop table (issue 3) and the explanation benchmark on smoke settings, computed with the sources of
# SRC_TREE (e.g. a `git worktree` of the commit before the refactor, then this checkout) and compared as JSON.
set -euo pipefail
SRC=$1; OUT=$2; mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
export PYTHONPATH="$SRC/src" OMP_NUM_THREADS=1 POINTLENS_PROGRESS=0
SH=${POINTLENS_SHARED_DATA:-../shared/data}
CK=${CKPT_DIR:-runs/equivalence_ckpt}/checkpoint.pt
if [ ! -f "$CK" ]; then
  $PY -m pointlens.cli.main train --model pointnet --data shapeparts:n=280 --points 512 --epochs 3 --seed 0 \
      --out "$(dirname "$CK")" --quiet > /dev/null
fi
# 1. the real-data drop table (issue 3's experiment, through the CLI)
$PY -m pointlens.cli.main drop --checkpoint $SH/learning3d_pointnet_cls_modelnet40_best_model.t7 --checkpoint-format learning3d \
   --data npz:$SH/modelnet40_normal_resampled_subset_2048.npz --split test --points 1024 --methods pointshift,random,critical \
   --mode both --budgets 0,25,50,100,150,200 --per-step 10 --alpha 1 --json --quiet --out "$OUT/drop_real" > "$OUT/drop_real.json"
# 2. the benchmark table on smoke settings (every method, every metric group)
$PY -m pointlens.cli.main benchmark --checkpoint $CK --data shapeparts:n=280 --points 512 --limit 8 --methods all \
   --sanity-clouds 2 --fc-subsets 8 --sensitivity-samples 2 --deletion-steps 5 --seed 0 --out "$OUT/bench" --json --quiet > "$OUT/bench.json"
echo done
