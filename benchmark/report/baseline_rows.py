"""The comparable records of a folder's baselines (its `baselines.json`, written by a `--baselines` run), joined
to its own records for the report; each row is labelled with its provenance (benchmark.baselines)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark import store
from benchmark.baselines import harness_changes_since, majority_commit, provenance_label

Pair = tuple[str, dict[str, Any]]
PREFIX = "baseline:"  # names of baseline records in a ResultSet (`baseline:<file>`)


def _table(rec: dict[str, Any]) -> tuple[str, str, str]:
    c = rec["cell"]
    return (c["dataset"], c["split"], c.get("protocol_variant") or c["protocol"])


def comparable(base: dict[str, Any], own: list[dict[str, Any]]) -> str | None:
    """Why a baseline record cannot stand beside the folder's own records of its table, or None."""
    def one(values: set[str]) -> str:
        return values.pop() if len(values) == 1 else "/".join(sorted(values))

    why = []
    checks = [("data fingerprint", lambda r: str(r.get("data_fingerprint"))),
              ("dataset options", lambda r: store.canonical_json(r.get("dataset_options") or {})),
              ("protocol config", lambda r: store.canonical_json(r.get("protocol_resolved"))),
              ("code version", lambda r: str(r.get("code_version")))]
    for what, get in checks:
        mine = {get(r) for r in own}
        if get(base) not in mine:
            why.append(f"{what} {get(base)}, yours {one(mine)}")
    for part in ("harness", "dataset"):
        theirs = (base.get("code") or {}).get(part)
        mine = {str(v) for r in own if (v := (r.get("code") or {}).get(part)) is not None}
        if theirs and mine and theirs not in mine:
            why.append(f"{part} code {theirs}, yours {one(mine)}")
    return "; ".join(why) or None


def join(mark: dict[str, Any], own: list[Pair], base_kept: list[Pair]
         ) -> tuple[list[Pair], list[tuple[str, str]], dict[str, Any]]:
    """(baseline pairs to add, (name, why) of unusable baseline records, what the report says of them)."""
    mine: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for _, rec in own:
        mine[_table(rec)].append(rec)
    added: list[Pair] = []
    unusable: list[tuple[str, str]] = []
    not_run = 0
    for name, rec in base_kept:
        own_recs = mine.get(_table(rec))
        if not own_recs:
            not_run += 1
            continue
        why = comparable(rec, own_recs)
        if why:
            unusable.append((PREFIX + name, f"baseline record not comparable: {why}"))
        else:
            added.append((PREFIX + name, rec))
    used = [rec for _, rec in added]
    info = {"folder": mark["folder"], "anchor": mark.get("anchor"), "no_anchor": mark.get("no_anchor"),
            "used": len(added), "unusable": len(unusable),
            "not_run": not_run, "label": f"baseline: {provenance_label(used)}" if used else "baseline",
            "yours": f"yours: {provenance_label([r for _, r in own])}" if own else "yours",
            "harness_changes": harness_changes_since(majority_commit(used)) if used and not any(
                (r.get("code") or {}).get("harness") for r in used) else None}
    return added, unusable, info


def row_labels(labels: dict[int, str], kept: list[Pair]) -> dict[int, str]:
    """Each row label followed by its records' provenance: '<variant> (baseline: cpu bf16 @499c75a)'."""
    rows: dict[tuple[bool, str], list[int]] = defaultdict(list)
    for i, (name, _) in enumerate(kept):
        rows[(name.startswith(PREFIX), labels[i])].append(i)
    out = dict(labels)
    for (is_base, label), ids in rows.items():
        prov = provenance_label([kept[i][1] for i in ids])
        for i in ids:
            out[i] = f"{label} ({'baseline' if is_base else 'yours'}: {prov})"
    return out


def baseline_dir(mark: dict[str, Any]) -> Path:
    return Path(mark["path"])
