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
    import signal

    try:
        code = main()
    except KeyboardInterrupt:  # a stop in the last instructions of main, after its own handling
        code = 130
    # The run is over (records and report written, or stopped and cleaned up): a Ctrl-C while the interpreter
    # winds down its worker pools would only print a traceback from their exit handlers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code == 143:  # stopped by SIGTERM: a repeat while the interpreter winds down (worker pools) is the same stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)
