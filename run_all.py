"""Run the mmhar-bench benchmark: `python run_all.py --suite smoke|quick|full|paper [options]` (see --help)."""
from __future__ import annotations

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
