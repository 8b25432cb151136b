"""What each leaderboard row costs: encoder parameters, forward GFLOPs per clip, pretraining wall time, peak memory.

Everything comes from the records (`params`, `timings`, `peak_memory_mb`, `device`, `cpu`, `versions`), except the
GFLOPs per clip, which the records do not hold: they are the planner's estimate (benchmark.runner.cost) of one
forward pass of the row's encoders on one clip of the dataset's shapes. Pretraining time is the median over the
row's pretraining runs (one per seed; a method's teachers, e.g. CMC-CMKM's, are not included); peak memory is
the median over the row's records of the worker's peak (CUDA: largest allocation; CPU: the process's peak RSS,
which also counts the data and whatever the worker ran before).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from benchmark.report.entries import Entry, ResultSet


@dataclass(frozen=True)
class Efficiency:
    """Cost of one row (nan where the records do not say)."""

    params_m: float  # encoder parameters, millions
    gflops_clip: float  # forward GFLOPs of the encoders per clip (estimate)
    pretrain_min: float  # median pretraining wall time, minutes (0 for methods that do not pretrain)
    peak_mem_gb: float  # median peak memory, GiB


HEADERS = ("Params (M)", "GFLOPs/clip", "Pretrain (min)", "Peak mem (GiB)")
CSV_HEADERS = ("params_m", "gflops_per_clip", "pretrain_min", "peak_mem_gib")
NOTE = ("Cost: encoder parameters; forward GFLOPs per clip (estimate from the encoders' shapes); median pretraining "
        "wall time per seed (teachers not included); median peak memory per record (CPU: the worker's peak RSS).")


def _median(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _clip_gflops(e: Entry) -> float:
    """Forward GFLOPs of the entry's encoders on one clip, from the dataset plugin's modality shapes."""
    from benchmark.runner.cost import clip_flops

    mods = list(e.resources.get("encoders") or {})
    length = e.resources.get("length")
    specs = _modality_specs(e.dataset)
    if not mods or not length or not specs or any(m not in specs for m in mods):
        return math.nan
    kinds = {m: specs[m][0] for m in mods}
    shapes: dict[str, tuple[int, ...]] = {}
    for m in mods:
        joints = specs[m][2]
        shapes[m] = (specs[m][1], int(length)) + ((joints,) if joints else ())
    return clip_flops(kinds, shapes, mods) / 1e9


def _modality_specs(dataset: str) -> dict[str, tuple[str, int, int | None]]:
    """{modality: (kind, channels, joints)} of the registered dataset plugin ({} when none is registered)."""
    from benchmark import plugins
    from benchmark.registry import DATASETS, RegistryError

    plugins.load_plugins()
    try:
        plugin = DATASETS.get(dataset)
    except RegistryError:
        return {}
    return {m: (s.kind, s.channels, s.joints) for m, s in getattr(plugin, "modalities", {}).items()}


def row_efficiency(entries: list[Entry]) -> Efficiency:
    """The cost of one row from its records."""
    if not entries:
        return Efficiency(math.nan, math.nan, math.nan, math.nan)
    params = [sum((e.resources.get("encoders") or {}).values()) / 1e6 for e in entries
              if e.resources.get("encoders")]
    pretrain: dict[str, float] = {}
    for e in entries:
        key, secs = e.resources.get("pretrain_key"), e.resources.get("pretrain_s")
        if key and isinstance(secs, (int, float)):
            pretrain[key] = float(secs) / 60
    mem = [e.resources["peak_memory_mb"] / 1024 for e in entries
           if isinstance(e.resources.get("peak_memory_mb"), (int, float))]
    return Efficiency(_median(params), _clip_gflops(entries[0]), _median(list(pretrain.values())), _median(mem))


def split_efficiency(rs: ResultSet) -> dict[tuple[str, str], dict[str, Efficiency]]:
    """{(dataset, split): {row label: Efficiency over all its records there}}, labels sorted."""
    groups: dict[tuple[str, str], dict[str, list[Entry]]] = {}
    for e in rs.entries:
        if e.artifacts.get("folds"):  # a pooled family entry repeats its first fold's records
            continue
        groups.setdefault((e.dataset, e.split), {}).setdefault(e.label, []).append(e)
    return {k: {lab: row_efficiency(v[lab]) for lab in sorted(v)} for k, v in sorted(groups.items())}


def table_efficiency(rs: ResultSet, dataset: str, split: str, table: str) -> dict[str, Efficiency]:
    """{row label: Efficiency} of one table."""
    memo = ("efficiency", dataset, split, table)
    if memo not in rs._memo:
        rows: dict[str, list[Entry]] = {}
        for e in rs.by_table().get((dataset, split, table), []):
            rows.setdefault(e.label, []).append(e)
        rs._memo[memo] = {lab: row_efficiency(ents) for lab, ents in rows.items()}
    return rs._memo[memo]


def cells(eff: Efficiency | None) -> list[str]:
    """The four values as table text ('–' where unknown)."""
    if eff is None:
        return ["–"] * 4

    def fmt(x: float, digits: int) -> str:
        return "–" if math.isnan(x) else f"{x:.{digits}f}"

    return [fmt(eff.params_m, 2), fmt(eff.gflops_clip, 2), fmt(eff.pretrain_min, 1), fmt(eff.peak_mem_gb, 2)]


def csv_cells(eff: Efficiency | None) -> list[str]:
    """The four values for the CSV (empty where unknown)."""
    if eff is None:
        return [""] * 4
    return ["" if math.isnan(x) else f"{x:.4f}" for x in (eff.params_m, eff.gflops_clip, eff.pretrain_min,
                                                          eff.peak_mem_gb)]


def devices(rs: ResultSet, dataset: str, split: str, table: str | None = None) -> str:
    """The devices a table's (or a split's) records ran on, named ('cpu (AMD EPYC)', 'cuda (NVIDIA H100)')."""
    names = set()
    ents = (rs.by_table().get((dataset, split, table), []) if table is not None
            else [e for e in rs.entries if (e.dataset, e.split) == (dataset, split)])
    for e in ents:
        dev = str(e.resources.get("device") or "?").split(":", 1)[0]
        model = e.resources.get("gpu") if dev == "cuda" else e.resources.get("cpu_model")
        names.add(f"{dev} ({model})" if model else dev)
    return ", ".join(sorted(names)) or "unrecorded"
