"""A plan: every cell and pretrain unit of a suite, what the results folder already holds, and the order in
which the missing units run (dependency stages)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmark import store
from benchmark.runner import cost
from benchmark.runner.units import Cell, DatasetInfo, PretrainUnit


@dataclass
class Plan:
    """Everything a run will do, and what is already done."""

    suite: str
    results_dir: Path
    cells: list[Cell]
    units: dict[str, PretrainUnit]  # in dependency order (dependencies first)
    datasets: dict[str, DatasetInfo]
    done: set[str] = field(default_factory=set)  # cell keys with a valid record
    cached: set[str] = field(default_factory=set)  # unit keys with a checkpoint
    corrupt: list[str] = field(default_factory=list)  # messages about corrupt records (to recompute)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (variant, protocol, why) not applicable
    messages: list[str] = field(default_factory=list)
    numerics: str = "cpu-fp32"  # device type and resolved precision of every key, e.g. 'cpu-bf16'
    auto_precision: bool = False  # the precision came from 'auto' (so it depends on the machine)
    held: dict[str, int] = field(default_factory=dict)  # numerics tag -> valid records of the folder with it
    foreign: list[str] = field(default_factory=list)  # messages about records whose content does not match their key
    code_changed: dict[str, int] = field(default_factory=dict)  # what changed ('method simclr', ...) -> cells

    @property
    def precision(self) -> str:
        """The resolved training precision ('fp32' or 'bf16') the plan's keys were made for."""
        return self.numerics.rsplit("-", 1)[-1]

    @property
    def todo(self) -> list[Cell]:
        return [c for c in self.cells if c.key not in self.done]

    def needed_units(self) -> list[str]:
        """Units to run: those with cells to do, plus the missing checkpoints they depend on (dependency order)."""
        need: set[str] = set()

        def add_deps(key: str) -> None:
            for dep in self.units[key].deps.values():
                if dep not in self.cached and dep not in need:
                    need.add(dep)
                    add_deps(dep)

        for c in self.todo:
            if c.pretrain_key not in need:
                need.add(c.pretrain_key)
                add_deps(c.pretrain_key)
        return [k for k in self.units if k in need]

    def depth(self, key: str) -> int:
        """Longest dependency chain below a unit (0 for units without dependencies)."""
        deps = self.units[key].deps.values()
        return 0 if not deps else 1 + max(self.depth(d) for d in deps)

    def numerics_conflict(self) -> str | None:
        """Why this run must not start, or None: the precision came from 'auto', the folder holds records, and
        none of them has this plan's numerics (so 'auto' resolved differently than on the machine that wrote
        them, and the run would silently start every cell afresh beside them)."""
        if not self.auto_precision or not self.held or self.numerics in self.held:
            return None
        held = ", ".join(f"{n} at {tag}" for tag, n in sorted(self.held.items()))
        device = self.numerics.rsplit("-", 1)[0]
        if all(tag.rsplit("-", 1)[0] != device for tag in self.held):  # another device type wrote them
            hint = "run it on the device that wrote them (--device), or give --precision to start cells here."
        else:
            other = "bf16" if self.precision == "fp32" else "fp32"
            hint = (f"to continue that folder's cells run it where 'auto' gives their precision (bf16: a CPU with "
                    f"AVX512-BF16 or AMX), or say which precision you want: --precision {self.precision} (new "
                    f"cells beside the old ones) or --precision {other}.")
        return (f"{self.results_dir} holds records trained with other numerics ({held}) and none at "
                f"{self.numerics}, which precision 'auto' gives on this machine, so this run would start all of "
                f"its cells afresh beside them; {hint}")

    def dataset_of(self, dataset: str, split: str) -> "DatasetInfo | None":
        """The planned DatasetInfo of (dataset, split) (keyed by the dataset, or 'dataset/split' when a suite
        runs several splits of one dataset)."""
        info = self.datasets.get(f"{dataset}/{split}") or self.datasets.get(dataset)
        return info if info is not None and info.split == split else None

    def stages(self) -> list[list[str]]:
        """Needed units grouped by dependency depth: each stage only needs checkpoints of earlier stages."""
        by_depth: dict[int, list[str]] = {}
        for k in self.needed_units():
            by_depth.setdefault(self.depth(k), []).append(k)
        return [by_depth[d] for d in sorted(by_depth)]

    def estimate_seconds(self, device: str, workers: int = 1,
                         step_times: Mapping[str, float] | None = None) -> tuple[float, str]:
        """Estimated wall time of the remaining work and the rate's source (`cost.estimate_seconds`)."""
        return cost.estimate_seconds(self, device, workers, step_times)

    def summary(self, device: str = "cpu", detail: bool = False, workers: int = 1,
                step_times: Mapping[str, float] | None = None, started: int | None = None) -> str:
        """A human-readable description of the plan (what --dry-run prints), timed for `workers` work units at
        once (`started`: the worker processes a run starts, where more than run at once)."""
        lines = [f"suite {self.suite}: results in {self.results_dir}"]
        by_dataset = cost.estimate_by_dataset(self, device, workers, step_times)
        if by_dataset:
            lines.append("  estimated wall time: " + ", ".join(f"{d} ~{cost.format_seconds(s)}"
                                                             for d, s in by_dataset.items())
                         + f" ({workers} parallel work unit{'s' if workers != 1 else ''}; details below)")
        for d in self.datasets.values():
            sizes = " / ".join(f"{v} {k}" for k, v in d.sizes.items())
            opts = f" {d.options}" if d.options else ""
            lines.append(f"  dataset {d.name}{opts}, split {d.split}: {sizes} clips (main metric {d.main_metric})")
        todo = self.todo
        needed = self.needed_units()
        to_train = [k for k in needed if k not in self.cached]
        with_cells = {c.pretrain_key for c in self.cells}
        lines.append(f"  cells: {len(self.cells)} total, {len(self.done & {c.key for c in self.cells})} done, "
                     f"{len(todo)} to run")
        lines.append(f"  pretrain units: {len(self.units)} ({len(self.units) - len(with_cells)} only as "
                     f"dependencies); {len(self.cached & set(self.units))} checkpoints cached, "
                     f"{len(to_train)} to train, {len(needed) - len(to_train)} to load")
        if self.skipped:
            lines.extend(self.not_applicable_lines())
        for m in self.corrupt + self.foreign:
            lines.append(f"  set aside: {m}")
        for what, n in sorted(self.code_changed.items()):
            lines.append(f"  code changed: {n} cell(s) recomputed ({what} differs from their stored records)")
        lines.extend(f"  {m}" for m in self.messages if m.startswith(("warning:", "note:")))
        conflict = self.numerics_conflict()
        if conflict:
            lines.append(f"  warning: a run would stop here: {conflict}")
        secs, source = self.estimate_seconds(device, workers, step_times)
        flops = sum(self.units[k].flops for k in to_train) + sum(c.flops for c in todo)
        on = f"{device} ({self.numerics})" + (f" with {workers} parallel work units" if workers > 1 else "")
        if started is not None and started > workers:
            on += f" ({started} worker processes start; the cores run {workers} at once)"
        lines.append(f"  estimated cost left: {flops / 1e12:.1f} TFLOP, about {cost.format_seconds(secs)} on {on} "
                     f"({source})")
        lines.append(self.table())
        if detail:
            for c in todo:
                lines.append(f"  todo {c.key} {c.dataset} {c.variant} {c.protocol_variant} seed {c.seed}")
        return "\n".join(lines)

    def not_applicable_lines(self) -> list[str]:
        """What the plan leaves out, one line per method variant: why it runs nowhere, or on which protocols not."""
        whole: dict[str, list[str]] = {}
        protocols: dict[str, list[str]] = {}
        for v, p, why in sorted(set(self.skipped)):
            if p == "*":
                whole.setdefault(v, []).append(why)
            else:
                protocols.setdefault(v, []).append(f"{p} ({why})" if why else p)
        names = sorted(set(whole) | set(protocols))
        out = [f"  not applicable: {len(names)} method variant(s):"]
        for v in names:
            parts = list(dict.fromkeys(whole.get(v, [])))
            if v in protocols:
                parts.append("not with " + ", ".join(protocols[v]))
            out.append(f"    {v}: {'; '.join(parts)}")
        return out

    def table(self) -> str:
        """Cells to run / total per method variant (rows) and protocol (columns; variants and seeds summed)."""
        from tabulate import tabulate

        protocols = list(dict.fromkeys(c.protocol for c in self.cells))
        counts: dict[str, dict[str, list[int]]] = {}
        for c in self.cells:
            n = counts.setdefault(c.variant, {}).setdefault(c.protocol, [0, 0])
            n[0] += c.key not in self.done
            n[1] += 1
        rows = [[v] + [f"{by_p[p][0]}/{by_p[p][1]}" if p in by_p else "-" for p in protocols]
                for v, by_p in counts.items()]
        return "cells to run / total:\n" + tabulate(rows, headers=["method variant", *protocols], tablefmt="simple")


def foreign_reason(rec: dict, cell: Cell, numerics: str) -> str | None:
    """Why a record stored under `cell`'s key is not that cell's result (another cell, code, numerics or data),
    or None when it matches."""
    from benchmark.runner.units import CODE_VERSION

    checks = [("cell", store.canonical_json(rec.get("cell")), store.canonical_json(cell.describe())),
              ("code version", str(rec.get("code_version")), CODE_VERSION),
              ("numerics", store.record_numerics(rec), numerics),
              ("data fingerprint", str(rec.get("data_fingerprint")), cell.data_fingerprint),
              ("code hashes", store.canonical_json(rec.get("code") or {}), store.canonical_json(cell.code))]
    bad = [f"{what} {got} (its key stands for {want})" if what != "cell" else "another cell"
           for what, got, want in checks if got != want]
    return "; ".join(bad) or None


def _code_changes(plan: Plan, records: dict[str, dict]) -> dict[str, int]:
    """Cells to run whose description, numerics and data match a stored record of other code: what changed -> n."""
    def ident(cell: object, numerics: str, fingerprint: object) -> str:
        return store.canonical_json([cell, numerics, fingerprint])

    stored: dict[str, dict] = {}
    for rec in records.values():
        stored.setdefault(ident(rec.get("cell"), store.record_numerics(rec), rec.get("data_fingerprint")), rec)
    out: dict[str, int] = {}
    for c in plan.cells:
        if c.key in plan.done:
            continue
        match = stored.get(ident(c.describe(), plan.numerics, c.data_fingerprint))
        if match is None:
            continue
        old = match.get("code") or {}
        names = {"harness": "harness", "method": f"method {c.method}", "dataset": f"dataset {c.dataset}"}
        parts = [names[k] for k in names if old.get(k) != c.code.get(k)] if old else ["unhashed code"]
        what = ", ".join(parts) or "code"
        out[what] = out.get(what, 0) + 1
    return out


def refresh(plan: Plan) -> None:
    """Re-read which cells have records (whose content matches their key) and which units have checkpoints."""
    records, bad = store.scan_records(plan.results_dir)
    by_key = {c.key: c for c in plan.cells}
    plan.foreign = []
    for key, rec in list(records.items()):
        cell = by_key.get(key)
        why = foreign_reason(rec, cell, plan.numerics) if cell is not None else None
        if why:
            plan.foreign.append(f"record {store.record_path(plan.results_dir, key)} does not match its key: {why}; "
                                f"it is set aside and the cell recomputed")
            del records[key]
    plan.done = set(records)
    plan.code_changed = _code_changes(plan, records)
    held: dict[str, int] = {}
    for rec in records.values():
        tag = store.record_numerics(rec)
        held[tag] = held.get(tag, 0) + 1
    plan.held = held
    plan.corrupt = [str(e) for e in bad]
    plan.cached = {k for k in plan.units if store.checkpoint_path(plan.results_dir, k).is_file()}
