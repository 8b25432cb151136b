"""Paired comparison of two stopping rules on the same encoders (docs/cost.md).

Usage: python scripts/paired_stopping.py [--pool] RECORDS_DIR [RECORDS_DIR ...]

Pairs every cell run with the reference rule (`early_stop_on=val_loss`, in the protocol's or semisup's
config: "old") with the cell of the same method variant, seed and otherwise equal protocol config that stops
on the main metric with patience P ("new, P"), and prints per accuracy metric: n pairs, mean new and old, the
paired difference new - old with a 95% t interval, the seed SD of the old rule (the noise a change must stay
inside), epochs run and protocol seconds of each rule (summed over the pairs) and their ratio, and for how
many heads the replay of the old run's improvement epochs at the new patience (scripts/head_stopping.py)
predicts the new run's best epoch and epochs run exactly.

`--pool`: one row per protocol config over all method variants (pairs of every variant and seed; the seed SD
is then the root mean square of the variants' own seed SDs, so differences between variants do not count as
noise).

`--across OLD_DIR NEW_DIR`: pairs two whole runs instead (e.g. a suite before and after a code change): every
cell of NEW_DIR with the cell of OLD_DIR of the same dataset, split, method variant, protocol variant and seed,
one row per protocol variant pooled over method variants, on the main metric (and on each semisup evaluator's):
mean difference with a 95% t interval over the pairs, the old seed SD (as for `--pool`), how many pairs scored
exactly the same, and how many ran on the same CPU model (only those can score bit-identically; the
seconds ratio is over those pairs alone). A second table pools each protocol's main metric per method kind
(supervised or self-supervised, from the method registry) with the method variant as the unit: each variant's
mean difference over its seeds and budgets, a t interval over the variants (their cells share encoders, so
pairs are not independent), and how many variants moved down.
"""
from __future__ import annotations

import functools
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # head_stopping.replay
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmark (method kinds)

STOP_KEYS = ("early_stop_on", "early_stop_patience")


def _heads(rec: dict[str, Any]) -> list[dict[str, Any]]:
    from head_stopping import heads_of

    return [h for _, h in heads_of(rec)]


def _epochs(rec: dict[str, Any]) -> int:
    return sum(int(h["epochs_run"]) for h in _heads(rec))


def _replay_agrees(new: dict[str, Any], old: dict[str, Any]) -> tuple[int, int]:
    """(heads whose best epoch and epochs run the replay of the old run at the new patience predicts, heads
    the replay can predict: not those whose old run stopped before the new rule's window ended)."""
    from head_stopping import replay

    ok = n = 0
    for hn, ho in zip(_heads(new), _heads(old)):
        if "improved_at" not in ho or "patience" not in hn:
            continue
        sel, run, last = replay(ho["improved_at"], ho["epochs_run"], int(hn["patience"]))
        if last >= ho["epochs_run"] and ho["stopped_early"]:
            continue  # the old run stopped (val_loss rule) before the new rule's window ended: not predictable
        n += 1
        ok += (sel, run) == (hn["best_epoch"], hn["epochs_run"])
    return ok, n


def _seed_sd(pairs: list[tuple[dict[str, Any], dict[str, Any]]], metric: str) -> float:
    """The old rule's seed SD of `metric` (in points): per variant, then the root mean square over variants."""
    by_variant: dict[str, list[float]] = defaultdict(list)
    for _, o in pairs:
        by_variant[o["cell"]["variant"]].append(o["metrics"][metric] * 100)
    var = [np.var(v, ddof=1) for v in by_variant.values() if len(v) > 1]
    return float(np.sqrt(np.mean(var))) if var else float("nan")


def _ci(values: np.ndarray) -> str:
    """'mean [95% t interval]' of the values, in points."""
    if len(values) < 2:
        return f"{values.mean():+.2f} (one value)"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():+.2f} [{values.mean() - half:+.2f}, {values.mean() + half:+.2f}]"


@functools.cache
def _kind(method: str) -> str:
    """'supervised' or 'self-supervised' from the method registry ('unknown' for a method no longer there)."""
    from benchmark.registry import METHODS

    if method not in METHODS:
        return "unknown"
    return "supervised" if METHODS.get(method).kind == "supervised" else "self-supervised"


def _rows(label: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """One table row per accuracy metric of paired (new, old) records."""
    metrics = sorted(k for k in pairs[0][0]["metrics"] if k.endswith("accuracy"))
    ep_new, ep_old = sum(_epochs(n) for n, _ in pairs), sum(_epochs(o) for _, o in pairs)
    t_new = sum(n["timings"]["protocol_s"] for n, _ in pairs)
    t_old = sum(o["timings"]["protocol_s"] for _, o in pairs)
    agree = [_replay_agrees(n, o) for n, o in pairs]
    replayed = f"{sum(a for a, _ in agree)}/{sum(b for _, b in agree)}"
    for m in metrics:
        new = np.array([n["metrics"][m] for n, _ in pairs]) * 100
        old = np.array([o["metrics"][m] for _, o in pairs]) * 100
        sd = _seed_sd(pairs, m)
        print(f"| {label} | {m} | {len(new)} | {new.mean():.2f} | {old.mean():.2f} | {_ci(new - old)} | "
              f"{sd:.2f} | {ep_new} / {ep_old} | "
              f"{t_new:.0f} / {t_old:.0f} ({t_new / t_old:.2f}) | {replayed} |")


def _across_metrics(rec: dict[str, Any]) -> list[str]:
    """The main metric and, for protocols with evaluators, each evaluator's main metric."""
    main_m = rec["main_metric"]
    evaluators = ((rec.get("artifacts") or {}).get("evaluators") or {}).keys()
    return [main_m] + [f"{e}/{main_m}" for e in sorted(evaluators) if f"{e}/{main_m}" in rec["metrics"]]


def _cell_id(rec: dict[str, Any]) -> tuple:
    c = rec["cell"]
    return c["dataset"], c["split"], c["variant"], c["protocol_variant"], c["seed"]


def across(old_dir: Path, new_dir: Path) -> int:
    """Print the `--across` table: every cell of `new_dir` against the same cell of `old_dir`."""
    old = {_cell_id(r): r for r in (json.loads(f.read_text()) for f in sorted(old_dir.glob("*.json")))}
    groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for f in sorted(new_dir.glob("*.json")):
        rec = json.loads(f.read_text())
        cid, c = _cell_id(rec), rec["cell"]
        if cid in old:
            groups[(c["dataset"], c["split"], c["protocol_variant"])].append((rec, old[cid]))
    if not groups:
        print(f"error: no cell of {new_dir} has a counterpart in {old_dir}", file=sys.stderr)
        return 2
    print("| dataset/split | protocol | metric | pairs | seeds | new (mean) | old (mean) | new - old [95% CI] | "
          "old seed SD | equal scores | same CPU | protocol s new / old, same CPU (ratio) |")
    print("|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---|")
    for (ds, split, pv), pairs in sorted(groups.items()):
        same = [(n, o) for n, o in pairs if n["cpu"].get("model") == o["cpu"].get("model")]
        t_new = sum(n["timings"]["protocol_s"] for n, _ in same)
        t_old = sum(o["timings"]["protocol_s"] for _, o in same)
        secs = f"{t_new:.0f} / {t_old:.0f} ({t_new / t_old:.2f})" if same and t_old else "-"
        seeds = ",".join(str(s) for s in sorted({n["cell"]["seed"] for n, _ in pairs}))
        for m in _across_metrics(pairs[0][0]):
            ps = [(n, o) for n, o in pairs if m in n["metrics"] and m in o["metrics"]]
            new = np.array([n["metrics"][m] for n, _ in ps]) * 100
            old_v = np.array([o["metrics"][m] for _, o in ps]) * 100
            d = new - old_v
            print(f"| {ds}/{split} | {pv} | {m} | {len(d)} | {seeds} | {new.mean():.2f} | {old_v.mean():.2f} | "
                  f"{_ci(d)} | {_seed_sd(ps, m):.2f} | {int((d == 0).sum())} | {len(same)} | {secs} |")
    _by_kind(groups)
    return 0


def _by_kind(groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]]) -> None:
    """The per-kind table of `--across`: each protocol's main metric, one unit per method variant."""
    per: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (ds, split, _), pairs in groups.items():
        for n, o in pairs:
            c, m = n["cell"], n["main_metric"]
            diff = (n["metrics"][m] - o["metrics"][m]) * 100
            per[(ds, split, c["protocol"], _kind(c["method"]))][c["variant"]].append(diff)
    print("\n| dataset/split | protocol | method kind | variants | pairs | new - old, per variant [95% CI] | "
          "variants down / up |")
    print("|---|---|---|---:|---:|---|---|")
    for (ds, split, proto, kind), by_var in sorted(per.items()):
        v = np.array([np.mean(x) for x in by_var.values()])
        print(f"| {ds}/{split} | {proto} | {kind} | {len(v)} | {sum(len(x) for x in by_var.values())} | {_ci(v)} | "
              f"{int((v < 0).sum())} / {int((v > 0).sum())} |")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--across"]:
        if len(argv) != 3:
            print(__doc__, file=sys.stderr)
            return 2
        return across(Path(argv[1]), Path(argv[2]))
    pool = "--pool" in argv
    argv = [a for a in argv if a != "--pool"]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    files = [f for d in argv for f in sorted(Path(d).glob("*.json"))]
    if not files:
        print(f"error: no records (*.json) in {' '.join(argv)}", file=sys.stderr)
        return 2
    cells: dict[tuple, dict[tuple, dict[str, Any]]] = defaultdict(dict)
    for f in files:
        rec = json.loads(f.read_text())
        cfg, res = rec["cell"]["protocol_cfg"], rec["protocol_resolved"]
        rule = "old" if res.get("early_stop_on") == "val_loss" else f"new, {res.get('early_stop_patience')}"
        rest = json.dumps({k: v for k, v in cfg.items() if k not in STOP_KEYS}, sort_keys=True)
        variant = rec["cell"]["variant"]
        group = "all variants" if pool else variant
        cells[(group, rec["cell"]["protocol"], rest)][(rule, rec["cell"]["seed"], variant)] = rec
    print("| protocol | metric | pairs | new (mean) | old (mean) | new - old [95% CI] | old seed SD | "
          "epochs run new / old | protocol s new / old (ratio) | replay = run |")
    print("|---|---|---:|---:|---:|---|---:|---|---|---|")
    for (variant, proto, rest), recs in sorted(cells.items()):
        for rule in sorted({r for r, _, _ in recs if r != "old"}):
            ids = sorted((s, v) for r, s, v in recs if r == rule and ("old", s, v) in recs)
            if ids:
                _rows(f"{proto}{' ' + rest if rest != '{}' else ''} ({variant}; {rule})",
                      [(recs[(rule, s, v)], recs[("old", s, v)]) for s, v in ids])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
