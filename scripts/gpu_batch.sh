#!/usr/bin/env bash
# Run one prepared selection of cells on a lent GPU machine (the workplace's `device` tool) within a time
# budget, and hand the results folder back as one archive.
#
#   here:   scripts/gpu_batch.sh --prepare        (a shallow clone of HEAD and the raw data into .gpu/, ignored;
#           the working tree travels too and both together must stay under the tool's 64 MiB: move results/
#           aside for the call, the clone holds HEAD's records anyway; delete .gpu/ afterwards)
#   there:  bash scripts/gpu_batch.sh SECONDS RESULTS_DIR [run_all.py arguments ...]   (carry .gpu; SECONDS at
#           most the call's timeout_s minus about 60, for the stop, the archive and the transfer)
#   here:   tar xzf <files_at>/results.tar.gz    (the records land in RESULTS_DIR; then --report-only)
#
# The run happens in a clone of the carried shallow repository, so every record carries HEAD's commit and a
# clean tree (the copied working tree has no .git); a second call on a still-warm machine reuses that clone and
# the records it holds. run_all.py is stopped (SIGTERM) when SECONDS are up; records
# are written atomically, so the cells finished by then are complete and the unfinished ones simply missing.
# The archive holds RESULTS_DIR's records, invocation log, suite marker and subsets (not its tables: rebuild them
# here); run.log and the machine's facts come back beside it.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--prepare" ]; then
  cd "$root" || exit 2
  rm -rf .gpu && mkdir -p .gpu/data
  git clone -q --depth 1 --bare "file://$root" .gpu/repo.git || exit 1
  data="${MMHAR_DATA:-../shared/data}"
  cp -r "$data/utd_mhad" .gpu/data/ || exit 1
  # what the call would send: tracked and untracked-not-ignored files that exist, plus the carried .gpu/
  mib=$( { git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null
           find .gpu -type f -printf '%s\n'; } | awk '{s += $1} END {printf "%.1f", s / 1048576}')
  echo "prepared .gpu/ ($(du -sh .gpu | cut -f1)); the call would send about $mib MiB (limit 64: move results/ aside if over)"
  exit 0
fi
if [ $# -lt 2 ]; then sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
budget=$1; results=$2; shift 2
start=$(date +%s)
[ -d "$root/.gpu/repo.git" ] && [ -d "$root/.gpu/data" ] \
  || { echo "error: $root/.gpu is missing: run scripts/gpu_batch.sh --prepare here and carry .gpu" >&2; exit 2; }
out="${OUT:-/tmp/gpu_batch_out}"; mkdir -p "$out"
export MMHAR_DATA="$root/.gpu/data" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
{ date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"; } | tee "$out/machine.txt"
work=/tmp/gpu_batch_tree
want=$(git -C "$root/.gpu/repo.git" rev-parse HEAD 2>/dev/null)
if [ -n "$want" ] && [ "$(git -C "$work" rev-parse HEAD 2>/dev/null)" = "$want" ]; then
  cd "$work" || exit 1
  echo "reusing the clone at $want (a warm machine)" | tee -a "$out/machine.txt"
elif rm -rf "$work" && git clone -q "$root/.gpu/repo.git" "$work"; then
  cd "$work" || exit 1
  echo "running in a clone at $(git rev-parse HEAD)" | tee -a "$out/machine.txt"
else
  cd "$root" || exit 1
  echo "no git here: running in the copied tree (records will have no commit)" | tee -a "$out/machine.txt"
fi
left=$(( budget - ($(date +%s) - start) ))
if [ "$left" -lt 10 ]; then echo "error: the budget of $budget s was spent before the run" >&2; exit 1; fi
timeout --preserve-status -s TERM --kill-after=30 "$left" "$PY" run_all.py --results "$results" --device "${DEVICE:-cuda}" "$@" \
  > "$out/run.log" 2>&1
echo "run_all exit $? after $(( $(date +%s) - start )) s" | tee -a "$out/machine.txt"
tail -5 "$out/run.log"
parts=()
for p in records invocations.jsonl suite.json subsets; do [ -e "$results/$p" ] && parts+=("$results/$p"); done
tar czf "$out/results.tar.gz" "${parts[@]}"
ls "$results/records" 2>/dev/null | wc -l | sed 's/^/records: /' | tee -a "$out/machine.txt"
