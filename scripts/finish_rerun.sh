#!/usr/bin/env bash
# Issue 38's last step, once the full-suite rerun is whole: check it, compare it with the suite it replaces, and
# (with --swap) move it into that suite's folder, rebuild the tables twice (byte-identical) and recalibrate.
#
#   bash scripts/finish_rerun.sh [--swap] [FROM..TO ...]
#
# Without --swap it changes nothing: it fails unless all records of results/utd_mhad_rerun share one provenance (the
# report's: code version, device, precision, data, harness hash) and CPU model and are exactly the cells of `--suite
# full --datasets utd_mhad` at the checkout's code (the runner's own plan, for that device and precision, says 0 to run;
# $RERUN_DIR, $TARGET_DIR, $SUITE, $DATASETS, $FOLDS change these); it checks every head's stop
# (scripts/head_stopping.py --check) and writes the per-seed compute against the old suite (scripts/cost_tables.py
# compare; FROM..TO windows, as its docstring says, leave out cells run beside other work: the rerun README's runs table
# names them) and the paired accuracy against the old suite (scripts/paired_stopping.py --across) into $OUT (default
# /tmp/finish_rerun). With --swap (both folders committed and clean, or it refuses) it then replaces results/utd_mhad's
# records and invocations.jsonl by the rerun's (git rm / git mv: the old ones stay in git history), rewrites
# calibration.json and fold_agreement.md, and rebuilds the report twice, failing if the two builds differ in any byte.
# The READMEs are left to a person: results/utd_mhad/README.md must name the last commit that holds the old records.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
new="${RERUN_DIR:-results/utd_mhad_rerun}"  # the defaults are issue 38's; the variables let a test use small folders
ref="${TARGET_DIR:-results/utd_mhad}"
suite="${SUITE:-full}"
datasets="${DATASETS:-utd_mhad}"
folds="${FOLDS:-results/utd_mhad_folds_cuda}"
out="${OUT:-/tmp/finish_rerun}"
swap=0
windows=()
for a in "$@"; do
  case "$a" in
    --swap) swap=1 ;;
    *..*) windows+=("$a") ;;
    *) echo "error: unknown argument $a (use --swap and FROM..TO windows)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"

# one provenance (the report's, benchmark.report.provenance, and one CPU model; prints "COUNT DEVICE PRECISION"):
# the plan below is made for that device and precision
prov=$("$PY" - "$new/records" <<'EOF'
import json, sys
from pathlib import Path
from benchmark.report.provenance import describe, provenance
seen = {}
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    seen.setdefault((provenance(r), r["cpu"]["model"]), []).append(f.name)
if len(seen) != 1:
    if not seen:
        print(f"error: no records in {sys.argv[1]}", file=sys.stderr)
    for (prov, cpu), v in seen.items():
        print(f"error: {len(v)} records of {describe(prov)}, CPU {cpu}, e.g. {v[0]}", file=sys.stderr)
    sys.exit(1)
((prov, cpu), v), = seen.items()
print(f"{len(v)} records, one provenance: {describe(prov)}, CPU {cpu}", file=sys.stderr)
print(len(v), prov[1], prov[2])
EOF
)
read -r count device precision <<<"$prov"
plan=$("$PY" run_all.py --results "$new" --suite "$suite" --datasets "$datasets" --device "$device" \
       --precision "$precision" --dry-run)
read -r total todo <<<"$(sed -n 's/^ *cells: \([0-9]*\) total, [0-9]* done, \([0-9]*\) to run.*/\1 \2/p' <<<"$plan")"
if [ "$todo" != 0 ]; then
  echo "error: ${todo:-an unknown number of} cells still to run in $new at this checkout's code ($device, $precision);" \
       "resume the rerun (the command in $new/README.md) first" >&2
  exit 1
fi
if [ "$count" != "$total" ]; then
  echo "error: $new/records holds $count records but the suite has $total cells; move the records of other cells" \
       "out first" >&2
  exit 1
fi
"$PY" scripts/head_stopping.py "$new/records" --check > "$out/head_stopping.md" \
  || { tail -n 3 "$out/head_stopping.md" >&2; echo "error: scripts/head_stopping.py --check failed (its output: $out/head_stopping.md)" >&2; exit 1; }
"$PY" scripts/cost_tables.py compare "$ref/records" "$new/records" ${windows[@]+"${windows[@]}"} > "$out/compare.md"
"$PY" scripts/paired_stopping.py --across "$ref/records" "$new/records" > "$out/across.md"
echo "checks passed; tables in $out (head_stopping.md, compare.md, across.md)"
[ "$swap" = 1 ] || exit 0

if [ -n "$(git status --porcelain --untracked-files=all -- "$ref" "$new")" ]; then
  echo "error: $ref and $new must be committed and clean before the swap (git status -- $ref $new)" >&2
  exit 1
fi
old_commit=$(git log -1 --format=%h -- "$ref/records")
trap 'echo "error: the swap stopped half-way; undo it with: git reset -q -- $ref $new && git checkout -- $ref $new" >&2' ERR
git rm -q -r "$ref/records"
mkdir -p "$ref/records"
git mv "$new"/records/*.json "$ref/records/"
git mv -f "$new/invocations.jsonl" "$ref/invocations.jsonl"
# calibration and fold agreement read the records only; the report reads calibration.json, so they come first
"$PY" -m benchmark.report.calibrate "$ref" --rows 10 --seeds 5 --sims 300 --json "$ref/calibration.json"
"$PY" -m benchmark.report.rankings --reference "$ref" --folds "$folds" --out "$ref/fold_agreement.md"
snapshot() { find "$ref" -type f ! -path "$ref/records/*" -print0 | sort -z | xargs -0 sha256sum; }
"$PY" run_all.py --report-only --results "$ref" --suite "$suite" --quiet
snapshot > "$out/build1.sha256"
"$PY" run_all.py --report-only --results "$ref" --suite "$suite" --quiet
snapshot > "$out/build2.sha256"
if ! cmp -s "$out/build1.sha256" "$out/build2.sha256"; then
  echo "error: two --report-only builds of $ref differ:" >&2
  diff "$out/build1.sha256" "$out/build2.sha256" >&2 || true
  exit 1
fi
echo "swapped: $ref holds the rerun's records (the old ones are in git history, last at $old_commit);" \
     "two builds byte-identical; calibration.json and fold_agreement.md rewritten."
echo "Now update $ref/README.md (name $old_commit), the root README's results and docs/cost.md part 6, then commit."
