"""A stored results folder as the baselines of a new run: what to plan from it and which records are comparable.

`python run_all.py --methods my_method --baselines results/<folder> --results results/my_method` plans only the
new method's cells (plus one cheap anchor variant), with exactly the baseline folder's datasets, split, seeds
and protocol configs (its saved semi-supervised subsets are copied over), into its own folder. The baseline
folder is only read. The new folder's `baselines.json` names it, so its report puts the comparable baseline
records beside the new ones (benchmark.report.entries) and measures the anchor's shift
(benchmark.report.anchor).

A baseline record is comparable with a new one when they share the data fingerprint, the dataset options,
the split, the protocol config (resolved), the code version and, where both record it, the harness and dataset
plugin code hashes. Device and precision may differ. Records written before code hashes existed carry no
harness hash; they are judged by their code version (the project's explicit "numbers changed" bump of that
time), labelled with their commit, and the anchor measures whatever shift remains.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark import store

BASELINES_MARK = "baselines.json"


class BaselineError(ValueError):
    """A baseline folder that cannot serve; the message names the folder and what to do."""


@dataclass
class BaselineFolder:
    """The records of a baseline folder, read once."""

    path: Path
    records: dict[str, dict[str, Any]]

    @property
    def seeds(self) -> list[int]:
        return sorted({int(r["cell"]["seed"]) for r in self.records.values()})

    def datasets(self) -> dict[str, dict[str, Any]]:
        """{dataset: {'options': ..., 'splits': [...]}} of the records."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records.values():
            d = out.setdefault(r["cell"]["dataset"], {"options": r.get("dataset_options") or {}, "splits": []})
            if r["cell"]["split"] not in d["splits"]:
                d["splits"].append(r["cell"]["split"])
        return out

    def protocol_cells(self, dataset: str, split: str, only: list[str] | None = None) -> list[dict[str, Any]]:
        """The distinct protocol cells of (dataset, split), optionally only those whose protocol or protocol
        variant is in `only`; ordered by protocol variant."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records.values():
            c = r["cell"]
            if c["dataset"] != dataset or c["split"] != split or "protocol_resolved" not in r:
                continue
            variant = c.get("protocol_variant") or c["protocol"]
            if only and c["protocol"] not in only and variant not in only:
                continue
            cell = {"protocol": c["protocol"], "protocol_cfg": c.get("protocol_cfg") or {},
                    "protocol_variant": variant, "protocol_resolved": r["protocol_resolved"]}
            out.setdefault(store.canonical_json(cell), cell)
        return sorted(out.values(), key=lambda p: (p["protocol_variant"], store.canonical_json(p)))

    def cheapest_variant(self) -> str | None:
        """The self-supervised variant with the smallest recorded pretraining cost (the default anchor)."""
        cost: dict[str, float] = {}
        for r in self.records.values():
            flops = float((r.get("estimate") or {}).get("pretrain_flops") or 0.0)
            epochs = ((r.get("pretrain") or {}).get("method_resolved") or {}).get("epochs", 1)
            if flops > 0 and epochs:
                v = r["cell"]["variant"]
                cost[v] = min(cost.get(v, flops), flops)
        if not cost:
            return None
        from benchmark.registry import METHODS

        def supervised(variant: str) -> bool:
            name = variant.split("[", 1)[0]
            return name not in METHODS or METHODS.get(name).kind == "supervised"

        return min(cost, key=lambda v: (supervised(v), cost[v], v))  # a self-supervised one where there is one


def read_baselines(path: Path) -> BaselineFolder:
    """The valid records of a baseline folder (corrupt files are named in the error, nothing is written)."""
    path = Path(path)
    if not (path / store.RECORDS_DIR).is_dir():
        raise BaselineError(f"--baselines {path}: no records/ folder there; name a results folder that holds records")
    good, bad = store.scan_records(path)
    if bad:
        raise BaselineError(f"--baselines {path}: {bad[0]}; fix or remove it in the baseline folder first")
    if not good:
        raise BaselineError(f"--baselines {path}: its records/ folder is empty")
    return BaselineFolder(path, good)


def plan_unusable(bf: BaselineFolder, dataset: str, split: str, fingerprint: str, options: dict[str, Any],
                  protocols: Any) -> list[tuple[str, str]]:
    """(record file, why) of the baseline records of (dataset, split) a run here cannot be compared with:
    another data fingerprint, dataset options or code version, or a protocol config the current protocol code
    resolves differently (`protocols`: the registry of protocols)."""
    from benchmark.runner.units import CODE_VERSION

    out = []
    for key, r in sorted(bf.records.items()):
        c = r["cell"]
        if c["dataset"] != dataset or c["split"] != split:
            continue
        why = []
        if r.get("data_fingerprint") != fingerprint:
            why.append(f"data fingerprint {r.get('data_fingerprint')}, yours {fingerprint}")
        if (r.get("dataset_options") or {}) != options:
            why.append(f"dataset options {r.get('dataset_options')}, yours {options}")
        if str(r.get("code_version")) != CODE_VERSION:
            why.append(f"code version {r.get('code_version')}, yours {CODE_VERSION}")
        resolved = r.get("protocol_resolved")
        try:
            again = protocols.get(c["protocol"]).resolve_config(resolved) if resolved is not None else None
        except Exception as exc:  # an unknown protocol or a key the current protocol refuses
            again = f"refused ({exc})"
        if resolved is None or store.canonical_json(again) != store.canonical_json(resolved):
            why.append(f"protocol config {c.get('protocol_variant')} is not what the current protocol code runs")
        if why:
            out.append((f"{key}.json", "; ".join(why)))
    return out


def copy_subsets(bf: BaselineFolder, results_dir: Path) -> int:
    """Copy the baseline folder's saved label subsets into the new folder (those not there yet); how many."""
    src = bf.path / "subsets"
    if not src.is_dir():
        return 0
    n = 0
    for f in sorted(src.rglob("*.json")):
        dst = Path(results_dir) / "subsets" / f.relative_to(src)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
            n += 1
    return n


def mark(bf: BaselineFolder, results_dir: Path, anchor: str | None, anchor_seeds: list[int]) -> dict[str, Any]:
    """The new folder's `baselines.json` content (the baseline folder relative to the new one)."""
    rel = os.path.relpath(bf.path.resolve(), Path(results_dir).resolve())
    return {"folder": Path(rel).as_posix(), "anchor": anchor, "anchor_seeds": anchor_seeds}


def read_mark(results_dir: Path) -> dict[str, Any] | None:
    """The folder's `baselines.json` with `folder` resolved, or None when the folder has none."""
    path = Path(results_dir) / BASELINES_MARK
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        m["path"] = (Path(results_dir) / m["folder"]).resolve()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{path} is unreadable ({exc}); delete it or rerun with --baselines") from None
    return m


def provenance_label(recs: list[dict[str, Any]]) -> str:
    """'cpu bf16 @499c75a' for a set of records (several values joined by '/')."""
    def joined(values: list[str]) -> str:
        return "/".join(sorted(set(values)))

    devices = joined([store.device_type(r.get("device")) for r in recs])
    precisions = joined([str(r.get("precision") or "?") for r in recs])
    commits = joined([((r.get("git") or {}).get("commit") or "unknown")[:7]
                      + ("+dirty" if (r.get("git") or {}).get("dirty") else "") for r in recs])
    return f"{devices} {precisions} @{commits}"


def harness_changes_since(commit: str | None, repo: Path = store.REPO_ROOT) -> list[str] | None:
    """Harness files (benchmark.codehash.HARNESS_CODE) whose code differs between `commit` and the working tree
    (docstrings, comments and layout ignored); None when git or the commit is not available."""
    from benchmark.codehash import harness_files, normalised_source, source_hash

    if not commit:
        return None
    try:
        listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", "benchmark"], cwd=repo,
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if listed.returncode != 0:
        return None
    current = harness_files()
    old_names = {n for n in listed.stdout.split() if n in current or _is_harness(n)}
    changed = sorted(set(current) ^ old_names)

    for name in sorted(set(current) & old_names):
        shown = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=repo, capture_output=True, text=True,
                               timeout=20)
        old = hashlib.sha256(normalised_source(shown.stdout).encode()).hexdigest()
        if shown.returncode != 0 or old != source_hash(current[name]):
            changed.append(name)
    return sorted(changed)


def _is_harness(name: str) -> bool:
    from benchmark.codehash import HARNESS_CODE

    rel = name.removeprefix("benchmark/")
    return name.endswith(".py") and any(rel == e or rel.startswith(e + "/") for e in HARNESS_CODE)


def majority_commit(recs: list[dict[str, Any]]) -> str | None:
    """The commit most of the records were written at."""
    counts = Counter((r.get("git") or {}).get("commit") for r in recs)
    counts.pop(None, None)
    return min(counts, key=lambda c: (-counts[c], c)) if counts else None
