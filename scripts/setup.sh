#!/usr/bin/env bash
# Install mmhar-bench's dependencies into the active Python environment.
# Where no NVIDIA GPU is present and torch is missing, the CPU build of torch is installed first, so that the
# project's torch range does not pull a multi-GB CUDA build. Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] NVIDIA GPU found: installing torch with CUDA support"
    "$PY" -m pip install --quiet "torch>=2.1,<3"
  else
    echo "[setup] no GPU found: installing the CPU build of torch first"
    "$PY" -m pip install --quiet "torch==2.13.0"
  fi
fi
"$PY" -m pip install --quiet -e ".[test]"
echo "[setup] done: $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
