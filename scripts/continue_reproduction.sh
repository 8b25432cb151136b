#!/usr/bin/env bash
# Resume the reproduction's long runs (README "Results") with the one that fits this machine's CPU:
#
#   scripts/continue_reproduction.sh            run it (stop at any time; the same command resumes)
#   DRY=1 scripts/continue_reproduction.sh      only print the command it would run
#
# - a CPU with native bf16 (AVX512-BF16 or AMX), where precision `auto` gives the folder's bf16, while the `full`
#   suite at the paper's schedules, results/utd_mhad/ (commit 499c75a), has cells left (none since 2026-12-04);
# - otherwise: the paper's variants on the rotating subject folds in fp32, results/utd_mhad_folds/ (commit
#   960e5af), and once all of its fold cells have records, the same variants and protocols on the reference split
#   `xsub` into the same folder.
# Commit the results folder's records/ (and invocations.jsonl) before the session ends.
# A session lent a GPU resumes the folds there instead (results/utd_mhad_folds_cuda/, seeds 0-4, then the same
# variants on `xsub`): scripts/gpu_batch.sh, with the command in that folder's README.
set -euo pipefail
cd "$(dirname "$0")/.."
export MMHAR_DATA="${MMHAR_DATA:-../shared/data}"
PY="${PYTHON:-python}"
native=$("$PY" -c "from benchmark.hardware import cpu_info; print(int(cpu_info()['native_bf16']))")
paper_variants=("supervised[inertial]" "supervised[skeleton]" "supervised[all]" supervised_fusion
                "simclr[inertial]" "simclr[skeleton]" cmc cmc_cmkm)
headline=(paper_head linear "semisup[budget=1]" "semisup[budget=5]")
# the full suite's 1285 cells all have records since 2026-12-04: then any CPU runs the folds
n_full=$(find results/utd_mhad/records -name '*.json' 2>/dev/null | wc -l)
if [ "$native" = 1 ] && [ "$n_full" -lt 1285 ]; then
  cmd=(scripts/run_at_commit.sh 499c75a results/utd_mhad --suite full --datasets utd_mhad --jobs 2 --threads 1 --quiet)
else
  folds=(--suite full --datasets utd_mhad --methods "${paper_variants[@]}" --protocols "${headline[@]}" --seeds 0-2
         --precision fp32 --jobs 2 --threads 1 --quiet)
  # 384 fold cells (8 variants x 4 protocol cells x 3 seeds x 4 folds): while fewer have records, run the folds
  n_fold=$("$PY" -c "
import glob, json
n = 0
for f in glob.glob('results/utd_mhad_folds/records/*.json'):
    with open(f) as fh:
        n += json.load(fh)['cell']['split'].startswith('xsub_fold')
print(n)")
  split=xsub_folds
  [ "$n_fold" -ge 384 ] && split=xsub
  cmd=(scripts/run_at_commit.sh 960e5af results/utd_mhad_folds "${folds[@]}" --split "$split")
fi
echo "[continue] native bf16: $native; running: ${cmd[*]}"
[ -n "${DRY:-}" ] && exit 0
exec "${cmd[@]}"
