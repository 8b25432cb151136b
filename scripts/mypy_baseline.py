"""Type-check benchmark/ with mypy and fail on any error that is not in the baseline (which only goes down).

The baseline (scripts/mypy_baseline.txt) holds one `file: message` line per known error, without line
numbers, so moving code does not break it. `--update` rewrites it; use that only to remove fixed errors.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scripts" / "mypy_baseline.txt"
_LINE = re.compile(r"^(?P<file>[^:]+):\d+(?::\d+)?: error: (?P<msg>.*)$")


def current_errors() -> Counter[str]:
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"mypy did not run: {out.stderr or out.stdout}")
    return Counter(f"{m['file']}: {m['msg']}" for line in out.stdout.splitlines() if (m := _LINE.match(line)))


def main() -> int:
    errors = current_errors()
    if "--update" in sys.argv:
        BASELINE.write_text("".join(f"{e}\n" for e in sorted(errors.elements())))
        print(f"mypy baseline written: {sum(errors.values())} errors")
        return 0
    known = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    new = errors - known
    fixed = known - errors
    if new:
        print("mypy: errors not in the baseline (fix them; the baseline only goes down):")
        print("\n".join(f"  {e}" for e in sorted(new.elements())))
        return 1
    note = f"; {sum(fixed.values())} baseline errors are fixed: run with --update to lower it" if fixed else ""
    print(f"mypy: {sum(errors.values())} errors, all in the baseline of {sum(known.values())}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
