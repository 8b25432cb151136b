#!/usr/bin/env bash
# Rebuild every committed results folder from its stored records (`--report-only`), e.g. after a change to the
# report. Usage: bash scripts/rebuild_results.sh [FOLDER ...]   (default: every folder under results/ with records
# and a report). Then `git diff --stat results/` shows what the change did to the committed tables.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
suite_of() {  # the suite that wrote a folder: its suite.json, else the full suite for utd_mhad*, else paper
  if [ -f "$1/suite.json" ]; then "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["suite"])' "$1/suite.json"
  elif [[ "$(basename "$1")" == utd_mhad* ]]; then echo full; else echo paper; fi
}
folders=("$@")
if [ ${#folders[@]} -eq 0 ]; then
  while IFS= read -r f; do folders+=("$(dirname "$f")"); done < <(find results -name leaderboard.md | sort)
fi
for d in "${folders[@]}"; do
  s="$(suite_of "$d")"
  echo "[rebuild] $d (suite $s)"
  "$PY" run_all.py --report-only --results "$d" --suite "$s" --quiet
done
