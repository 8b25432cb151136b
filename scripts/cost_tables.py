"""The cost tables of docs/cost.md, from stored records and bench files (nothing is run).

Usage:
  python scripts/cost_tables.py compute RECORDS_DIR     recorded compute per protocol and per method (and CPU kind)
  python scripts/cost_tables.py bench BENCH.json [...]  training-step figures per CPU kind (run_all bench files)

Compute: a cell's protocol time is its record's `timings.protocol_s`; a pretraining unit counts once, where it
was trained (`pretrain_cached` false), with its `pretrain_s`. Grouped by device and CPU model, because the same
cell costs differently on each.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _hm(seconds: float) -> str:
    m = round(seconds / 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{seconds / 60:.1f} min"


def _where(rec: dict[str, Any]) -> str:
    cpu = rec.get("cpu")
    model = cpu.get("model") if isinstance(cpu, dict) else cpu
    dev = str(rec.get("device", "?"))
    return f"{dev}, {rec.get('precision', '?')}, {model}"


def compute(folder: Path) -> None:
    """Protocol and pretraining seconds per (device/CPU) x protocol and x method."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SystemExit(f"error: no records (*.json) in {folder}")
    proto: dict[tuple[str, str], list[float]] = defaultdict(list)
    method_p: dict[tuple[str, str], float] = defaultdict(float)
    method_t: dict[tuple[str, str], float] = defaultdict(float)
    units: dict[str, tuple[str, str, float]] = {}
    for f in files:
        rec = json.loads(f.read_text())
        t, cell, where = rec.get("timings") or {}, rec["cell"], _where(rec)
        proto[(where, cell["protocol"])].append(float(t.get("protocol_s", 0.0)))
        method_p[(where, cell["variant"])] += float(t.get("protocol_s", 0.0))
        if not t.get("pretrain_cached", True):
            units[rec["pretrain"]["key"]] = (where, cell["variant"], float(t.get("pretrain_s", 0.0)))
    for where, variant, s in units.values():
        method_t[(where, variant)] += s
    print("| where (device, precision, CPU) | protocol | cells | protocol compute | mean per cell |")
    print("|---|---|---:|---:|---:|")
    for (where, p), v in sorted(proto.items()):
        print(f"| {where} | {p} | {len(v)} | {_hm(sum(v))} | {sum(v) / len(v):.0f} s |")
    print("\n| where (device, precision, CPU) | method | pretraining | protocols | total |")
    print("|---|---|---:|---:|---:|")
    for key in sorted(set(method_p) | set(method_t)):
        a, b = method_t.get(key, 0.0), method_p.get(key, 0.0)
        print(f"| {key[0]} | {key[1]} | {_hm(a)} | {_hm(b)} | {_hm(a + b)} |")
    tot_t = sum(s for _, _, s in units.values())
    tot_p = sum(sum(v) for v in proto.values())
    print(f"\nAll: {len(files)} records, {len(units)} pretraining units: pretraining {_hm(tot_t)}, "
          f"protocols {_hm(tot_p)}, total {_hm(tot_t + tot_p)}.")


def bench(paths: list[Path]) -> None:
    """Step time and throughput per method and CPU kind from bench files."""
    print("| file | CPU (flags) | threads | precision | method | batch | step | clips/s | GFLOP/s | vs baseline |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|")
    for path in paths:
        for row in json.loads(path.read_text()):
            m = row.get("machine", {})
            flags = ",".join(m.get("cpu_flags", [])) or "no bf16/avx512 flags"
            print(f"| {path.name} | {m.get('cpu', '?')} ({flags}) | {m.get('threads', '?')} | {row['precision']} | "
                  f"{row['method']} | {row['batch']} | {row['step_ms']:.0f} ms | {row['clips_per_s']:.0f} | "
                  f"{row['gflops']:.0f} | {row.get('speedup', float('nan')):.2f}x |")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("compute", "bench"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "compute":
        compute(Path(argv[1]))
    else:
        bench([Path(a) for a in argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
