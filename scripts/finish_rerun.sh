#!/usr/bin/env bash
# Issue 38's last step, once the full-suite rerun is whole: check it, compare it with the suite it replaces, and
# (with --swap) move it into that suite's folder, rebuild the tables twice (byte-identical) and recalibrate.
#
#   bash scripts/finish_rerun.sh [--swap] [FROM..TO ...]
#
# Without --swap it changes nothing: it fails unless every cell of `--suite full --datasets utd_mhad` is stored in
# results/utd_mhad_rerun ($RERUN_DIR, $TARGET_DIR, $SUITE, $DATASETS, $FOLDS change these) at the checkout's code (the runner's own plan says 0 to run) and all records share one
# harness hash, device, precision and CPU model; it checks every head's stop (scripts/head_stopping.py --check)
# and writes the per-seed compute against the old suite (scripts/cost_tables.py compare; FROM..TO windows, as
# its docstring says, leave out cells run beside other work: the rerun README's runs table names them) and the
# paired accuracy against the old suite (scripts/paired_stopping.py --across) into $OUT (default
# /tmp/finish_rerun). With --swap it then replaces results/utd_mhad's records and invocations.jsonl by the
# rerun's (git rm / git mv: the old ones stay in git history), rewrites calibration.json and fold_agreement.md,
# and rebuilds the report twice, failing if the two builds differ in any byte. The READMEs are left to a
# person: results/utd_mhad/README.md must name the last commit that holds the old records.
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

plan=$("$PY" run_all.py --results "$new" --suite "$suite" --datasets "$datasets" --dry-run)
todo=$(sed -n 's/^ *cells: [0-9]* total, [0-9]* done, \([0-9]*\) to run.*/\1/p' <<<"$plan")
if [ "$todo" != 0 ]; then
  echo "error: ${todo:-an unknown number of} cells still to run in $new at this checkout's code; resume the rerun" \
       "(the command in $new/README.md) first" >&2
  exit 1
fi
"$PY" - "$new/records" <<'EOF'
import json, sys
from pathlib import Path
seen = {}
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    seen.setdefault((r["code"]["harness"], r["device"], r["precision"], r["cpu"]["model"]), []).append(f.name)
if len(seen) != 1:
    for k, v in seen.items():
        print(f"error: {len(v)} records with (harness, device, precision, CPU) = {k}, e.g. {v[0]}", file=sys.stderr)
    sys.exit(1)
(k, v), = seen.items()
print(f"{len(v)} records, one provenance: harness {k[0]}, {k[1]}, {k[2]}, {k[3]}")
EOF
"$PY" scripts/head_stopping.py "$new/records" --check > "$out/head_stopping.md" \
  || { tail -n 3 "$out/head_stopping.md" >&2; echo "error: heads that broke their stop (whole list: $out/head_stopping.md)" >&2; exit 1; }
"$PY" scripts/cost_tables.py compare "$ref/records" "$new/records" ${windows[@]+"${windows[@]}"} > "$out/compare.md"
"$PY" scripts/paired_stopping.py --across "$ref/records" "$new/records" > "$out/across.md"
echo "checks passed; tables in $out (head_stopping.md, compare.md, across.md)"
[ "$swap" = 1 ] || exit 0

old_commit=$(git log -1 --format=%h -- "$ref/records")
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
