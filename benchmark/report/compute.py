"""How a results folder was produced: compute summed from its records, runs from the invocation log.

`compute.md` answers what a reader of a leaderboard asks next: on what hardware, at which commit, in how many
runs (was it interrupted and resumed?), how much wall-clock and how much compute. Compute comes from the
records' own timings: each pretraining unit's `timings.pretrain_s` counted once (units loaded from a cached
checkpoint count 0), plus every cell's `timings.protocol_s`. Runs come from `invocations.jsonl`
(`runner.runlog`; a run killed without an end line gets the records made between its start and the next run's
start, and the time to the last of them as a lower bound on its wall time); a folder written before the log
existed gets the span of its record times instead, with the long gaps between records (likely stops) listed.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmark.runner.cost import format_seconds
from benchmark.runner.runlog import LOG_NAME, read_log


def _time(s: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(s))
    except ValueError:
        return None


def _group(rec: dict[str, Any]) -> tuple[str, ...]:
    git = rec.get("git") or {}
    commit = str(git.get("commit") or "no commit")[:10] + (" (dirty)" if git.get("dirty") else "")
    cpu = rec.get("cpu") or {}
    device = str(rec.get("device") or "?")
    gpu = (rec.get("versions") or {}).get("gpu")
    if device.startswith("cuda") and gpu:  # the GPU is the machine that matters for a CUDA record's timings
        device = f"{device} ({gpu})"
    return (commit, str(rec.get("code_version") or "?"), device,
            str(rec.get("precision") or "unrecorded"), str(cpu.get("model") or "?"), str(rec.get("threads") or "?"))


def _compute(recs: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(units trained, summed pretraining seconds, summed protocol seconds) of these records."""
    units: dict[str, float] = {}
    proto = 0.0
    for r in recs:
        t = r.get("timings") or {}
        key = (r.get("pretrain") or {}).get("key") or r.get("key")
        if not t.get("pretrain_cached"):
            units[str(key)] = max(units.get(str(key), 0.0), float(t.get("pretrain_s") or 0.0))
        proto += float(t.get("protocol_s") or 0.0)
    return len(units), sum(units.values()), proto


def _gaps(times: list[datetime], longest_unit_s: float) -> list[tuple[datetime, datetime]]:
    """Pauses between consecutive records longer than the longest unit plus 30 minutes (likely stops)."""
    limit = longest_unit_s + 1800.0
    return [(a, b) for a, b in zip(times, times[1:]) if (b - a).total_seconds() > limit]


def _killed_run_span(start: datetime, next_start: datetime | None, stamps: list[datetime]
                     ) -> tuple[int, float] | None:
    """For a run without an end line: (records created between its start and the next run's start, seconds from
    its start to the last of them), a lower bound on its wall time; None when it left no record."""
    mine = [t for t in stamps if t >= start and (next_start is None or t < next_start)]
    return (len(mine), (mine[-1] - start).total_seconds()) if mine else None


def _runs_section(results_dir: Path, stamps: list[datetime]) -> list[str]:
    """The runs of the folder's invocation log; `stamps`: the records' creation times, sorted."""
    runs, bad = read_log(results_dir)
    if not runs:
        return []
    starts = [_time((r["start"] or {}).get("time")) for r in runs]
    lines = ["", f"## Runs (from `{LOG_NAME}`)", "",
             "| started (UTC) | ended | status | cells run | wall | device | workers x threads | commit |",
             "|---|---|---|---:|---:|---|---|---|"]
    wall = bound = 0.0
    stopped = 0
    for i, r in enumerate(runs):
        s, e = r["start"] or {}, r["end"]
        status = e.get("status", "?") if e else "no end line (killed or lost power)"
        stopped += 0 if e and e.get("status") in ("done", "failed") else 1
        w = float(e.get("wall_s") or 0.0) if e else 0.0
        wall += w
        done, took = f"{e.get('completed', '?')}" if e else "?", format_seconds(w) if e else "?"
        start = starts[i]
        span = None if start is None else \
            _killed_run_span(start, next((t for t in starts[i + 1:] if t is not None), None), stamps)
        if not e and span:
            done, took = f"{span[0]} (records)", f">= {format_seconds(span[1])} (to its last record)"
            bound += span[1]
        elif e and e.get("status") == "interrupted" and span and span[0] > int(e.get("completed") or 0):
            # logs written before the runner counted the stored cells of units still in flight at the stop
            done = f"{span[0]} (records; {e.get('completed')} logged)"
        lines.append(f"| {s.get('time', '?')} | {e.get('time', '?') if e else '-'} | {status} | "
                     f"{done} of {s.get('cells_todo', '?')} | {took} | {s.get('device', '?')} "
                     f"({s.get('numerics', '?')}) | {s.get('jobs', '?')} x {s.get('threads', '?')} | "
                     f"{str(s.get('commit') or '-')[:10]} |")
    resumed = "interrupted and resumed" if stopped and len(runs) > 1 else "not resumed" if stopped else "none interrupted"
    lines += ["", f"{len(runs)} run(s), {stopped} of them stopped before the end ({resumed}); "
                  f"summed wall time of the runs that logged an end: {format_seconds(wall)}"
                  + (f"; of those without an end line, at least {format_seconds(bound)} (start to last record)"
                     if bound else "") + "."]
    commands = sorted({str(r["start"]["command"]) for r in runs if r["start"] and r["start"].get("command")})
    lines += [f"Command: `{c}`" for c in commands]
    if bad:
        lines.append(f"{bad} line(s) of the log could not be read (cut short by a crash) and were skipped.")
    return lines


def compute_markdown(results_dir: Path, records: dict[str, dict[str, Any]]) -> str:
    """The folder's compute summary as Markdown (deterministic for the same records and log)."""
    recs = [records[k] for k in sorted(records)]
    out = ["# Compute: how these records were produced", "",
           "Compute summed from the records' timings (each pretraining unit once; checkpoints loaded from the "
           "cache count 0), grouped by where and how the records were made.", "",
           "| commit | code version | device | precision | CPU | threads | records | units trained | "
           "pretraining | protocols | compute | first record (UTC) | last record |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        groups[_group(r)].append(r)
    for g in sorted(groups):
        rs = groups[g]
        n_units, pre, proto = _compute(rs)
        times = sorted(str(r.get("created", "")) for r in rs)
        out.append(f"| {' | '.join(g)} | {len(rs)} | {n_units} | {format_seconds(pre)} | {format_seconds(proto)} | "
                   f"{format_seconds(pre + proto)} | {times[0]} | {times[-1]} |")
    _, pre_all, proto_all = _compute(recs)
    own = {str((r.get("pretrain") or {}).get("key")) for r in recs}
    dep_only = {str(d) for r in recs for d in ((r.get("pretrain") or {}).get("deps") or {}).values()} - own
    out += ["", f"Summed compute: {format_seconds(pre_all + proto_all)} over {len(recs)} records "
                f"(work units running in parallel overlap in wall time)."]
    seeds: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        seeds[int((r.get("cell") or {}).get("seed", -1))].append(r)
    if len(seeds) > 1:
        out.append("Per seed (the compute of one complete seed of these cells): " + ", ".join(
            f"seed {s} {format_seconds(sum(_compute(rs)[1:]))} ({len(rs)} records)" for s, rs in sorted(seeds.items()))
            + ".")
    if dep_only:
        out.append(f"Not included: {len(dep_only)} unit(s) trained only as another method's dependency (no record "
                   f"of their own here, so their time is not recorded).")
    stamps = sorted(t for t in (_time(r.get("created")) for r in recs) if t is not None)
    runs = _runs_section(results_dir, stamps)
    if runs:
        out += runs
    elif recs:
        longest = max((float((r.get("timings") or {}).get("total_s") or 0.0) for r in recs), default=0.0)
        gaps = _gaps(stamps, longest)
        out += ["", f"No invocation log (`{LOG_NAME}`, written by runs since 2026-12-02): the records span "
                    f"{stamps[0].isoformat()} to {stamps[-1].isoformat()} "
                    f"({format_seconds((stamps[-1] - stamps[0]).total_seconds())}, an upper bound on the wall time "
                    f"of their runs plus the stops between them)." if stamps else ""]
        if gaps:
            out += ["Pauses between records longer than the longest unit plus 30 minutes (likely stops, then a "
                    "resumed run): " + "; ".join(f"{a.isoformat()} to {b.isoformat()}" for a, b in gaps) + "."]
    return "\n".join(out) + "\n"
