"""Planning a run against a baseline folder (`--baselines DIR`): only the new methods' cells, plus the anchor,
with exactly the baselines' datasets, split, seeds and protocol configs (benchmark.baselines)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.baselines import BaselineError, BaselineFolder, mark, plan_unusable, read_baselines
from benchmark.registry import PROTOCOLS
from benchmark.runner.plan import Plan, refresh
from benchmark.runner.planner import plan_suite
from benchmark.runner.units import DatasetInfo, RunError
from benchmark.suites import Suite

ANCHOR_SEEDS = 3  # the anchor runs on the first (at most) this many seeds of the run


def _single_split(bf: BaselineFolder) -> str:
    splits = {s for d in bf.datasets().values() for s in d["splits"]}
    if len(splits) != 1:
        raise RunError(f"--baselines {bf.path}: its records span the splits {', '.join(sorted(splits))}; a run "
                       f"against baselines takes one split: copy the records of one split to a folder of their own")
    return splits.pop()


def _same_provenance(bf: BaselineFolder, numerics: str, suite: Suite) -> bool:
    """Whether a run here would reproduce the baselines' numbers: same numerics, same recorded harness code, no
    shortened schedule (then no anchor is needed)."""
    from benchmark.codehash import harness_hash
    from benchmark.store import record_numerics

    recs = list(bf.records.values())
    return (suite.shrink.epochs_scale == 1.0 and suite.shrink.epochs_cap is None
            and all(record_numerics(r) == numerics for r in recs)
            and all((r.get("code") or {}).get("harness") == harness_hash() for r in recs))


def plan_with_baselines(suite: Suite, baselines: Path, results_dir: Path, *, methods: Sequence[str],
                        anchor: str | None, protocols: Sequence[str] | None, seeds: Sequence[int] | None,
                        data_root: str | None, log: Callable[[str], None], device: Any = "auto",
                        precision: str | None = None) -> tuple[Plan, dict[str, Any], BaselineFolder]:
    """(plan, the new folder's baselines.json, the baseline folder) of a run of `methods` against `baselines`.

    `anchor`: a variant of the baseline folder, 'none', or None (its cheapest trained variant)."""
    try:
        bf = read_baselines(baselines)
    except BaselineError as exc:
        raise RunError(str(exc)) from None
    if Path(results_dir).resolve() == bf.path.resolve():
        raise RunError(f"--results {results_dir} is the baseline folder; a run against baselines writes into a "
                       f"folder of its own (the baseline folder is only read)")
    if not methods:
        raise RunError("--baselines needs --methods: the method(s) to compare with the baselines")
    split = _single_split(bf)
    have = bf.seeds
    run_seeds = [s for s in (seeds or have) if s in have]
    if seeds and len(run_seeds) < len(seeds):
        log(f"note: seeds {', '.join(str(s) for s in seeds if s not in have)} have no baseline records; not run")
    if not run_seeds:
        raise RunError(f"--baselines {bf.path} holds seeds {', '.join(map(str, have))}; none of them was asked for")
    variants = {r["cell"]["variant"] for r in bf.records.values()}
    chosen = None if anchor == "none" else anchor or bf.cheapest_variant()
    if chosen is not None and chosen not in variants:
        raise RunError(f"--anchor {chosen}: not a variant of {bf.path} (its variants: {', '.join(sorted(variants))}); "
                       f"or --anchor none")
    datasets = bf.datasets()
    names = list(methods) + ([chosen] if chosen and chosen not in methods else [])
    narrowed = replace(suite, datasets=tuple(datasets), split=split, seeds=tuple(run_seeds), methods=tuple(names),
                       dataset_options={n: d["options"] for n, d in datasets.items()}, fallback_dataset=None,
                       skip_missing=False)
    unusable: list[tuple[str, str]] = []

    def protocol_cells(info: DatasetInfo) -> list[dict[str, Any]]:
        bad = plan_unusable(bf, info.name, info.split, info.fingerprint, info.options, PROTOCOLS)
        unusable.extend(bad)
        skip = {name.removesuffix(".json") for name, _ in bad}
        keep = {k: r for k, r in bf.records.items() if k not in skip and r["cell"]["dataset"] == info.name}
        usable = BaselineFolder(bf.path, keep).protocol_cells(info.name, info.split, list(protocols or []) or None)
        if not usable:
            why = "; ".join(sorted({w for _, w in bad})[:3]) or "no protocol asked for has baseline records"
            raise RunError(f"--baselines {bf.path}: no comparable baseline records of {info.name} split {info.split} "
                           f"({why})")
        return usable

    plan = plan_suite(narrowed, results_dir, data_root=data_root, log=log, device=device, precision=precision,
                      strict_methods=list(methods), protocol_cells=protocol_cells)
    for name, why in unusable:
        log(f"baseline not usable: {name}: {why}")
    why_none = "--anchor none" if anchor == "none" else None
    if chosen and _same_provenance(bf, plan.numerics, narrowed):
        log("note: this run reproduces the baselines' provenance; no anchor needed")
        chosen, why_none = None, "same provenance"
    anchor_seeds = run_seeds[:ANCHOR_SEEDS] if chosen else []
    keep = [c for c in plan.cells if c.variant in methods or (c.variant == chosen and c.seed in anchor_seeds)
            or (c.method in methods and c.variant != chosen)]
    _restrict(plan, keep)
    return plan, {**mark(bf, results_dir, chosen, anchor_seeds), "no_anchor": why_none}, bf


def _restrict(plan: Plan, cells: list[Any]) -> None:
    """Keep only `cells` and the pretrain units they need."""
    plan.cells = cells
    need: set[str] = set()
    todo = [c.pretrain_key for c in cells]
    while todo:
        k = todo.pop()
        if k not in need:
            need.add(k)
            todo.extend(plan.units[k].deps.values())
    plan.units = {k: u for k, u in plan.units.items() if k in need}
    refresh(plan)
