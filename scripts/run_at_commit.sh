#!/usr/bin/env bash
# Run (or resume) a long suite at one fixed commit, so that every record of its results folder carries that
# commit and code, while work on main goes on.
#
#   scripts/run_at_commit.sh COMMIT RESULTS_DIR [run_all.py arguments ...]
#   e.g. scripts/run_at_commit.sh 1043bc3 results/paper --suite paper --seeds 0-4
#
# Makes a clean git worktree at COMMIT beside the checkout (../mmhar-at-<commit>), copies the records already in
# RESULTS_DIR of this checkout into it (so finished cells are skipped), runs run_all.py there with
# --results RESULTS_DIR, and copies every new record back into this checkout's RESULTS_DIR (every
# $MMHAR_COPY_EVERY seconds, default 300, while it runs, and at the end, also after a SIGTERM). Nothing is
# overwritten: records are immutable, named by their cell key. Stop it at any time; the same command resumes.
# Regenerate the folder's tables here afterwards: python run_all.py --report-only --results RESULTS_DIR
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
commit=$(git rev-parse --verify --quiet "$1^{commit}") || { echo "error: $1 is not a commit of this repository" >&2; exit 2; }
results=$2
shift 2
case "$results" in /*|*..*) echo "error: give RESULTS_DIR relative to the repository root (e.g. results/paper)" >&2; exit 2;; esac
root=$(git rev-parse --show-toplevel)
tree="$root/../mmhar-at-${commit:0:10}"
PY="${PYTHON:-python}"
if [ ! -d "$tree" ]; then
  git -C "$root" worktree add --detach --quiet "$tree" "$commit"
fi
# the tables a finished run rebuilt in the worktree's RESULTS_DIR (tracked there when COMMIT holds that folder's
# tables) are restored first: this checkout rebuilds them from the records; records and invocations.jsonl are
# left as they are, so a change to those still stops the run below
git -C "$tree" diff --name-only -- "$results" \
  | grep -v -e "^$results/records/" -e "^$results/invocations.jsonl\$" \
  | (cd "$tree" && xargs -r git checkout --) || true
if [ -n "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
  echo "error: the worktree $tree has changes; its records would not be of commit ${commit:0:10}" >&2
  exit 2
fi
mkdir -p "$tree/$results/records"
if [ -d "$root/$results/records" ]; then
  find "$root/$results/records" -maxdepth 1 -name '*.json' -exec cp -n {} "$tree/$results/records/" \;
fi
if [ -f "$root/$results/invocations.jsonl" ] && [ ! -f "$tree/$results/invocations.jsonl" ]; then
  cp "$root/$results/invocations.jsonl" "$tree/$results/invocations.jsonl"  # the run appends to it
fi
copy_back() {  # the records COMMIT does not itself hold in RESULTS_DIR, each copied atomically (tmp + rename)
  mkdir -p "$root/$results/records"
  git -C "$tree" ls-files -- "$results/records" | sed 's|.*/||' | sort > "$tree/.committed-records"
  find "$tree/$results/records" -maxdepth 1 -name '*.json' ! -name '.*' -printf '%f\n' | sort \
    | comm -23 - "$tree/.committed-records" \
    | while read -r f; do
        if [ ! -e "$root/$results/records/$f" ]; then
          cp "$tree/$results/records/$f" "$root/$results/records/.tmp-$f" && mv "$root/$results/records/.tmp-$f" "$root/$results/records/$f"
        fi
      done
  if [ -f "$tree/$results/invocations.jsonl" ]; then
    cp "$tree/$results/invocations.jsonl" "$root/$results/.tmp-invocations.jsonl" \
      && mv "$root/$results/.tmp-invocations.jsonl" "$root/$results/invocations.jsonl"
  fi
}
# finished records also come back every few minutes while the run goes on (a machine that stops without
# warning keeps them in this checkout)
( while sleep "${MMHAR_COPY_EVERY:-300}"; do copy_back; done ) &
syncer=$!
trap 'kill "$syncer" 2>/dev/null || true' EXIT
# a stop (SIGTERM to this script or to its process group, or Ctrl-C) is passed on to run_all.py, which stores its
# finished cells and logs its end line; this script then still copies everything back before it exits
(cd "$tree" && exec "$PY" run_all.py --results "$results" "$@") &
run=$!
trap 'echo "stop requested: copying the records back once the run has stopped" >&2; kill -TERM "$run" 2>/dev/null || true' TERM INT
status=0
while :; do
  wait "$run" && { status=0; break; } || status=$?
  kill -0 "$run" 2>/dev/null || break  # `wait` returns early when a trapped signal arrives: wait on while it runs
done
copy_back
echo "records of $results copied back to $root/$results/records (run exit status $status)"
exit "$status"
