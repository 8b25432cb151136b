#!/usr/bin/env bash
# Run one prepared selection of cells on a lent GPU machine (the workplace's `device` tool) within a time
# budget, and hand the results folder's records back as one archive.
#
#   here:   scripts/gpu_batch.sh --prepare RESULTS_DIR
#           (.gpu/ = HEAD's commits and trees without file contents, about 0.3 MB, and the raw data; ignored.
#           The working tree travels too, under the tool's 64 MiB together with .gpu/: this moves every results
#           folder but RESULTS_DIR aside into .gpu-aside/ for the call; --restore brings them back; meanwhile this
#           checkout looks dirty to git, so run nothing here that writes records;
#           pause any run that copies records into results/ meanwhile, e.g. run_at_commit.sh)
#   there:  bash scripts/gpu_batch.sh SECONDS RESULTS_DIR [run_all.py arguments ...]   (carry .gpu; SECONDS at
#           most the call's timeout_s minus about 60, for the stop, the archive and the transfer)
#   here:   scripts/gpu_batch.sh --restore; scripts/gpu_batch.sh --unpack <files_at>/results.tar.gz; then
#           --report-only (--unpack adds the records this checkout lacks, never replaces one, and appends the
#           invocation lines it lacks; a plain tar xzf would overwrite invocations.jsonl)
#
# There, the copied working tree gets a .git rebuilt from .gpu/ (HEAD's trees, the missing results folders
# marked skip-worktree), so every record carries HEAD's commit and a clean-tree flag that git computes from
# the files themselves. Commit before --prepare: a tree with changes is refused. run_all.py is stopped (SIGTERM)
# when SECONDS are up; records are written atomically, so the cells finished by then are complete. A copy of the
# records is kept on the machine (/tmp/gpu_batch_keep), so a second call on a still-warm machine resumes.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aside="$root/.gpu-aside"  # per checkout, ignored
aside_must_be_empty() {  # --prepare and --unpack need the other results folders back in results/
  if [ -n "$(ls -A "$aside" 2>/dev/null)" ]; then
    echo "error: $aside is not empty: run scripts/gpu_batch.sh --restore first" >&2; exit 2
  fi
}
if [ "${1:-}" = "--restore" ]; then
  [ -d "$aside" ] || { echo "nothing to restore ($aside does not exist)"; exit 0; }
  (cd "$aside" && find . -mindepth 1 -maxdepth 1 -print0 | while IFS= read -r -d '' d; do
     if [ -e "$root/results/$d" ]; then echo "error: results/$d exists here too; left in $aside" >&2
     else mv "$d" "$root/results/$d"; fi; done)
  rmdir "$aside" 2>/dev/null && echo "results folders restored"
  exit 0
fi
if [ "${1:-}" = "--unpack" ]; then
  archive=$(realpath "${2:?"usage: scripts/gpu_batch.sh --unpack results.tar.gz"}") || exit 2
  cd "$root" || exit 2
  aside_must_be_empty
  tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
  tar xzf "$archive" -C "$tmp" || { echo "error: could not unpack $archive" >&2; exit 1; }
  add_if_missing() {  # add_if_missing FILE DEST: copy atomically where DEST does not exist; status 1 where it does
    [ -e "$2" ] && return 1
    mkdir -p "$(dirname "$2")" && cp "$1" "$2.part" && mv "$2.part" "$2" || exit 1
  }
  found=0
  for dir in "$tmp"/results/*/; do
    [ -d "$dir" ] || continue
    found=1; name=results/$(basename "$dir"); new=0; same=0
    for f in "$dir"records/*.json; do
      [ -e "$f" ] || continue
      if add_if_missing "$f" "$name/records/${f##*/}"; then new=$((new + 1)); else same=$((same + 1)); fi
    done
    lines=0
    if [ -f "$dir/invocations.jsonl" ]; then
      touch "$name/invocations.jsonl"
      grep -vxFf "$name/invocations.jsonl" "$dir/invocations.jsonl" > "$tmp/new_lines"
      lines=$(wc -l < "$tmp/new_lines")
      cat "$tmp/new_lines" >> "$name/invocations.jsonl"
    fi
    subs=0  # suite.json and each file of subsets/: added where missing, never replaced
    for f in "$dir"suite.json "$dir"subsets/*; do
      [ -f "$f" ] || continue
      rel=${f#"$dir"}
      if add_if_missing "$f" "$name/$rel"; then
        [ "$rel" = suite.json ] || subs=$((subs + 1))
      elif ! cmp -s "$f" "$name/$rel"; then
        echo "warning: $name/$rel differs from the archive's; kept this checkout's" >&2; fi
    done
    echo "$name: $new records added, $same already here (kept), $lines invocation lines appended, $subs subset files added"
  done
  [ "$found" = 1 ] || { echo "error: $archive holds no results/NAME folder" >&2; exit 1; }
  exit 0
fi
if [ "${1:-}" = "--prepare" ]; then
  target=${2:?"usage: scripts/gpu_batch.sh --prepare RESULTS_DIR"}
  cd "$root" || exit 2
  target=$(realpath -m --relative-to="$root" "$target")
  case "$target" in results/*/*|results/|results) echo "error: give RESULTS_DIR as results/NAME" >&2; exit 2;;
    results/*) ;; *) echo "error: give RESULTS_DIR as results/NAME (got $target)" >&2; exit 2;; esac
  aside_must_be_empty
  if git ls-files --others --exclude-standard -- benchmark methods datasets | grep -q '\.py$'; then
    echo "error: untracked .py files under benchmark/, methods/ or datasets/ would make every record dirty" >&2
    exit 2
  fi
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "error: the working tree has uncommitted changes; commit them first (records name HEAD's commit)" >&2
    exit 2
  fi
  rm -rf .gpu && mkdir -p .gpu/data
  git clone -q --depth 1 --filter=blob:none --no-checkout \
      --upload-pack="git -c uploadpack.allowFilter=true upload-pack" "file://$root" .gpu/meta || exit 1
  mv .gpu/meta/.git .gpu/git && rmdir .gpu/meta
  data="${MMHAR_DATA:-../shared/data}"
  cp -r "$data/utd_mhad" .gpu/data/ || exit 1
  mkdir -p "$aside"
  for d in results/*/; do
    d=${d%/}
    [ "$d" = "$target" ] || mv "$d" "$aside/" || exit 1
  done
  # what the call would send: tracked and untracked-not-ignored files that exist, plus the carried .gpu/
  mib=$( { git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null
           find .gpu -type f -printf '%s\n'; } | awk '{s += $1} END {printf "%.1f", s / 1048576}')
  echo "prepared .gpu/ ($(du -sh .gpu | cut -f1)) for $(git rev-parse --short HEAD); other results folders are in" \
       "$aside; the call would send about $mib MiB (limit 64). Afterwards: scripts/gpu_batch.sh --restore"
  if awk -v m="$mib" 'BEGIN {exit !(m > 63)}'; then
    echo "error: over the device tool's 64 MiB: the target folder itself is too large to travel this way" >&2
    exit 1
  fi
  exit 0
fi
if [ $# -lt 2 ]; then sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
budget=$1; results=$2; shift 2
start=$(date +%s)
[ -d "$root/.gpu/git" ] && [ -d "$root/.gpu/data" ] \
  || { echo "error: $root/.gpu is missing: run scripts/gpu_batch.sh --prepare here and carry .gpu" >&2; exit 2; }
out="${OUT:-/tmp/gpu_batch_out}"; mkdir -p "$out"
export MMHAR_DATA="$root/.gpu/data" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
{ date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"; } | tee "$out/machine.txt"
cd "$root" || exit 1
if [ -e .git ] && [ ! -e .git/gpu_batch_rebuilt ]; then
  # The device tool may copy .git with the tree. Its copy is recognised by $OUT (set by the tool) and no
  # .gpu-aside/ (ignored, so it never travels; --prepare leaves it in the real checkout): set it aside there.
  # Anywhere else this is a real checkout: never touch it.
  if [ -n "${OUT:-}" ] && [ ! -e "$aside" ]; then
    moved=$(mktemp -d) && mv .git "$moved/git" && echo "the copy's own .git moved to $moved/git" | tee -a "$out/machine.txt"
  else
    echo "error: $root has its own .git: this step runs on the lent machine's copy of the tree (run --prepare here)" >&2
    exit 2
  fi
fi
git config --global --add safe.directory "$root" 2>/dev/null  # the copy may not be owned by this user
rm -rf .git && cp -r .gpu/git .git && touch .git/gpu_batch_rebuilt && git config core.fileMode false \
  && git read-tree HEAD \
  && git ls-files -z --deleted | xargs -0 -r git update-index --skip-worktree \
  || { echo "error: could not rebuild .git from .gpu/git (git missing or too old?)" >&2; exit 1; }
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  git status --short --untracked-files=no | head >&2
  echo "error: the copied tree differs from HEAD $(git rev-parse --short HEAD); its records would be dirty" >&2
  exit 1
fi
echo "running at $(git rev-parse HEAD), clean tree" | tee -a "$out/machine.txt"
keep=/tmp/gpu_batch_keep
mkdir -p "$results/records" "$keep"
copy_missing() {  # copy_missing FROM TO: the *.json of FROM that TO lacks (cp -n warns on newer coreutils)
  for f in "$1"/*.json; do [ -e "$f" ] && [ ! -e "$2/${f##*/}" ] && cp "$f" "$2/"; done; return 0
}
copy_missing "$keep" "$results/records"  # a warm machine's earlier call
left=$(( budget - ($(date +%s) - start) ))
if [ "$left" -lt 10 ]; then echo "error: the budget of $budget s was spent before the run" >&2; exit 1; fi
timeout --preserve-status -s TERM --kill-after=30 "$left" "$PY" run_all.py --results "$results" --device "${DEVICE:-cuda}" "$@" \
  > "$out/run.log" 2>&1
echo "run_all exit $? after $(( $(date +%s) - start )) s" | tee -a "$out/machine.txt"
tail -5 "$out/run.log"
copy_missing "$results/records" "$keep"
parts=()
for p in records invocations.jsonl suite.json subsets; do [ -e "$results/$p" ] && parts+=("$results/$p"); done
tar czf "$out/results.tar.gz" "${parts[@]}"
ls "$results/records" | wc -l | sed 's/^/records: /' | tee -a "$out/machine.txt"
