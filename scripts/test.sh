#!/usr/bin/env bash
# The project's checks: lint (ruff), types (mypy against its baseline), then the tests (contract checks included).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
"$PY" -m ruff check .
"$PY" scripts/mypy_baseline.py
"$PY" -m pytest -q "$@"
