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
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # head_stopping.replay

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
        d = new - old
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        sd = _seed_sd(pairs, m)
        print(f"| {label} | {m} | {len(d)} | {new.mean():.2f} | {old.mean():.2f} | {d.mean():+.2f} "
              f"[{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] | {sd:.2f} | {ep_new} / {ep_old} | "
              f"{t_new:.0f} / {t_old:.0f} ({t_new / t_old:.2f}) | {replayed} |")


def main(argv: list[str]) -> int:
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
