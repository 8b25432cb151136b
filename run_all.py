"""Run the mmhar-bench benchmark: `python run_all.py --suite smoke|quick|full|paper [options]` (see --help)."""
from __future__ import annotations

import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared or small CPU, spinning threads of parallel
# work units slow each other down several-fold (measured by python -m benchmark.bench train).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from benchmark.cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: nothing has started
    print("interrupted before the run started", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    code = main()
    if code == 143:  # stopped by SIGTERM: a repeat while the interpreter winds down (worker pools) is the same stop
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)
