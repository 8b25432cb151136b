"""The cost tables of docs/cost.md, from stored records and bench files (nothing is run).

Usage:
  python scripts/cost_tables.py compute RECORDS_DIR     recorded compute per protocol and per method (and CPU kind)
  python scripts/cost_tables.py bench BENCH.json [...]  training-step figures per CPU kind (run_all bench files)
  python scripts/cost_tables.py compare OLD_RECORDS NEW_RECORDS [SINCE] [FROM..TO ...]
                                                    protocol compute per seed, old against new, per CPU model
                                                    (SINCE: only new records created at or after this UTC time,
                                                    e.g. 2026-12-07T09:40, to leave out cells run beside other work;
                                                    FROM..TO: leave out new records created in that window,
                                                    e.g. 2026-12-07T13:54..2026-12-07T14:25;
                                                    before a whole seed is in, it also projects one)

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


def _load(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SystemExit(f"error: no records (*.json) in {folder}")
    return [json.loads(f.read_text()) for f in files]


def compare(old_dir: Path, new_dir: Path, since: str | None = None,
            leave_out: tuple[tuple[str, str], ...] = ()) -> None:
    """Summed protocol compute per seed (seeds whose cells all ran on one CPU model and that hold as many cells
    as the old folder's fullest seed), old against new, within each CPU model; and the ratio over the cells
    present in both folders (same variant, protocol variant and seed) that ran on the same CPU model."""
    old, new = _load(old_dir), _load(new_dir)
    if since:
        new = [r for r in new if str(r.get("created", "")) >= since]
        if not new:
            raise SystemExit(f"error: no record in {new_dir} created at or after {since}")
    for start, end in leave_out:  # windows where other work shared the CPU
        new = [r for r in new if not start <= str(r.get("created", "")) < end]
    if not new:
        raise SystemExit(f"error: every record of {new_dir} lies in a left-out window")

    def cell_id(rec: dict[str, Any]) -> tuple[str, str, int]:
        c = rec["cell"]
        return c["variant"], c["protocol_variant"], int(c["seed"])

    per_seed_cells = defaultdict(int)
    for rec in old:
        per_seed_cells[int(rec["cell"]["seed"])] += 1
    full = max(per_seed_cells.values())
    print("| folder | CPU (device, precision, model) | seed | cells | protocol compute | per protocol |")
    print("|---|---|---:|---:|---:|---|")
    means: dict[tuple[str, str], list[float]] = defaultdict(list)
    for label, recs in (("old", old), ("new", new)):
        by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for rec in recs:
            by_seed[int(rec["cell"]["seed"])].append(rec)
        for seed, rs in sorted(by_seed.items()):
            cpus = {_where(r) for r in rs}
            if len(rs) < full or len(cpus) != 1:
                continue  # an incomplete seed, or one split over CPU models: no per-seed figure
            (cpu,) = cpus
            per_proto: dict[str, float] = defaultdict(float)
            for r in rs:
                per_proto[r["cell"]["protocol"]] += _protocol_s(r)
            total = sum(per_proto.values())
            means[(cpu, label)].append(total)
            parts = ", ".join(f"{p} {_hm(v)}" for p, v in sorted(per_proto.items(), key=lambda kv: -kv[1]))
            print(f"| {label} | {cpu} | {seed} | {len(rs)} | {_hm(total)} | {parts} |")
    for cpu in sorted({c for c, _ in means}):
        o, n = means.get((cpu, "old")), means.get((cpu, "new"))
        if o and n:
            ratio = (sum(n) / len(n)) / (sum(o) / len(o))
            print(f"\n{cpu}: mean protocol compute per seed {_hm(sum(n) / len(n))} (new, {len(n)} seeds) / "
                  f"{_hm(sum(o) / len(o))} (old, {len(o)} seeds) = {ratio:.2f}")
    # cells of any seed: each new cell against the mean of the old cells of its variant and protocol variant that
    # ran on its CPU model (a figure before a whole seed is in); then the same cell (same seed) where both exist
    old_mean: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in old:
        old_mean[(_where(r),) + cell_id(r)[:2]].append(_protocol_s(r))
    old_by = {cell_id(r): r for r in old}
    matched: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for rec in new:
        group = (_where(rec), rec["cell"]["protocol"])
        o = old_mean.get((_where(rec),) + cell_id(rec)[:2])
        if o:
            matched[group].append((sum(o) / len(o), _protocol_s(rec)))
        same = old_by.get(cell_id(rec))
        if same is not None and _where(same) == _where(rec):
            pairs[group].append((_protocol_s(same), _protocol_s(rec)))
    _ratio_table(matched, "new cells | old mean of the same cells")
    for cpu in sorted({c for c, _ in matched}):
        v = [x for (c, _), xs in matched.items() if c == cpu for x in xs]
        a, b = sum(x for x, _ in v), sum(y for _, y in v)
        print(f"\n{cpu}: {len(v)} new cells, protocol compute {_hm(b)} against {_hm(a)} for the same cells "
              f"(old, mean over the seeds run on this CPU model) = {b / a:.2f}")
    _ratio_table(pairs, "paired cells (same seed) | old")
    new_times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for rec in new:
        new_times[(_where(rec),) + cell_id(rec)[:2]].append(_protocol_s(rec))
    _projection(old_mean, new_times)


def _projection(old_times: dict[tuple[str, str, str], list[float]],
                new_times: dict[tuple[str, str, str], list[float]]) -> None:
    """A whole seed's protocol compute before one is in, per CPU model: every cell of the old folder's seeds (mean
    over the old seeds run there) at the mean of its new cells where there are some, else at its old time times
    the new / old ratio of its protocol variant (of its protocol where the variant has no new cell yet; at its old
    time where the protocol has none either). Both maps: (CPU, variant, protocol variant) -> protocol seconds."""
    for cpu in sorted({c for c, _, _ in new_times}):
        olds = {k[1:]: v for k, v in old_times.items() if k[0] == cpu}
        news = {k[1:]: v for k, v in new_times.items() if k[0] == cpu and k[1:] in olds}
        if not olds or not news:
            continue
        ratio: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for cell, v in news.items():
            o = sum(olds[cell]) / len(olds[cell])
            for group in (cell[1], cell[1].split("[")[0]):
                ratio[group][0] += o
                ratio[group][1] += sum(v) / len(v)
        total_old = total_new = 0.0
        for cell, v in olds.items():
            o = sum(v) / len(v)
            total_old += o
            if cell in news:
                total_new += sum(news[cell]) / len(news[cell])
            else:
                a, b = ratio.get(cell[1]) or ratio.get(cell[1].split("[")[0]) or (1.0, 1.0)
                total_new += o * b / a
        print(f"\n{cpu}: projected whole seed (measured {len(news)} of {len(olds)} cells, the others at their "
              f"protocol variant's ratio): {_hm(total_new)} against {_hm(total_old)} = {total_new / total_old:.2f}")


def _protocol_s(rec: dict[str, Any]) -> float:
    return float((rec.get("timings") or {}).get("protocol_s", 0.0))


def _ratio_table(groups: dict[tuple[str, str], list[tuple[float, float]]], columns: str) -> None:
    """| CPU | protocol | n | old | new | new / old | per (CPU, protocol) group of (old s, new s) pairs."""
    if not groups:
        return
    print(f"\n| CPU | protocol | {columns} | new | new / old |")
    print("|---|---|---:|---:|---:|---:|")
    for (cpu, proto), v in sorted(groups.items()):
        a, b = sum(x for x, _ in v), sum(y for _, y in v)
        print(f"| {cpu} | {proto} | {len(v)} | {_hm(a)} | {_hm(b)} | {b / a:.2f} |")


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
    windows = [a for a in argv[3:] if ".." in a] if argv and argv[0] == "compare" else []
    rest = [a for a in argv[3:] if ".." not in a]
    if len(argv) < 2 or argv[0] not in ("compute", "bench", "compare") or (
            argv[0] == "compare" and (len(argv) < 3 or len(rest) > 1)):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "compute":
        compute(Path(argv[1]))
    elif argv[0] == "compare":
        leave_out = tuple((start, end) for start, end in (w.split("..", 1) for w in windows))
        compare(Path(argv[1]), Path(argv[2]), rest[0] if rest else None, leave_out)
    else:
        bench([Path(a) for a in argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
