"""How the evaluation heads of stored records stopped, and what another patience would have done (docs/cost.md).

Usage: python scripts/head_stopping.py RECORDS_DIR [RECORDS_DIR ...] [--patience 5,10,15,20,25,30,40,50]
       [--replay reference|ours] [--check]

Per head (protocol, or protocol/evaluator for semisup): heads, mean epochs run, mean best epoch (the selected
epoch on the validation main metric), its 50/90/95/99th percentile and maximum, and how many stopped early.
Records that hold the epochs where the selection metric improved (`improved_at`, recorded since the stopping
change) are replayed for each patience P of a stop on that metric: the run ends P epochs after the last
improvement that is not followed by another within P epochs. "best moved earlier" counts heads whose selected
epoch would be an earlier one (the run stops before its recorded best); a head whose recorded run had stopped
under the val_loss rule before the replay's window ended is "cut" (its later epochs, which might hold a later
best, are unknown). With `--replay ours`, the heads that stopped on the selection metric itself are replayed
instead, for every patience up to their own (a shorter patience only truncates their run), and a last table
projects the records' protocol seconds at each patience (seconds scaled with head epochs).

`--gaps`: per head, how many heads' longest gap between successive improvements falls in each band of epochs.
Under a stop after P epochs without improvement no gap above P can be seen, so heads whose longest gap lies just
under P say how often a later best comes close to the cap (and suggest that some longer ones were cut).

`--check`: every head must satisfy epochs_run <= best_epoch + patience + 1 and stop on its selection metric;
the heads that do not are listed and the exit status is 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def heads_of(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(head name, head_training summary) of every trained head in one record."""
    art = record.get("artifacts") or {}
    proto = record["cell"]["protocol"]
    out = []
    if "head_training" in art:
        out.append((proto, art["head_training"]))
    for name, ev in (art.get("evaluators") or {}).items():
        if "head_training" in ev:
            out.append((f"{proto}/{name}", ev["head_training"]))
    return out


def replay(improved_at: list[int], epochs_run: int, patience: int) -> tuple[int, int, int]:
    """(selected epoch, epochs run, last epoch the stop needs to see) under a stop after `patience` epochs
    without improvement of the selection metric."""
    for i, epoch in enumerate(improved_at):
        nxt = improved_at[i + 1] if i + 1 < len(improved_at) else None
        if nxt is None or nxt - epoch > patience:
            return epoch, min(epoch + patience + 1, epochs_run), epoch + patience
    return -1, epochs_run, epochs_run - 1


def replay_heads(heads: list[dict[str, Any]], patience: int) -> tuple[list[tuple[int, int, int]], int]:
    """`replay` of each head at `patience`, and how many of them would select an earlier epoch than recorded."""
    res = [replay(h["improved_at"], h["epochs_run"], patience) for h in heads]
    return res, sum(sel != h["best_epoch"] for (sel, _, _), h in zip(res, heads))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--patience", default="5,10,15,20,25,30,40,50")
    ap.add_argument("--variant", default=None, help="only records whose protocol variant contains this text")
    ap.add_argument("--replay", choices=("reference", "ours"), default="reference",
                    help="replay the heads run under the reference's val_loss rule (default) or under ours")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every head ran at most best_epoch + patience + 1 epochs on its selection metric")
    ap.add_argument("--gaps", action="store_true",
                    help="also tabulate each head's longest gap between improvements (heads that record improved_at)")
    args = ap.parse_args(argv)
    patiences = [int(p) for p in args.patience.split(",")]
    heads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    protocol_s: dict[str, float] = {}
    for folder in args.records:
        files = sorted(folder.glob("*.json"))
        if not files:
            print(f"error: no records (*.json) in {folder}", file=sys.stderr)
            return 2
        for f in files:
            rec = json.loads(f.read_text())
            if args.variant and args.variant not in rec["cell"].get("protocol_variant", ""):
                continue
            for name, h in heads_of(rec):
                heads[name].append({**h, "_record": f.name})
            protocol_s[f.name] = float((rec.get("timings") or {}).get("protocol_s") or 0.0)
    print("| head | heads | mean epochs run | mean best epoch | best epoch p50 / p90 / p95 / p99 / max | stopped early |")
    print("|---|---:|---:|---:|---|---:|")
    for name, hs in sorted(heads.items()):
        best = np.array([h["best_epoch"] for h in hs])
        run = np.array([h["epochs_run"] for h in hs])
        q = " / ".join(f"{v:.0f}" for v in np.percentile(best, [50, 90, 95, 99, 100]))
        print(f"| {name} | {len(hs)} | {run.mean():.1f} | {best.mean():.1f} | {q} | "
              f"{sum(bool(h['stopped_early']) for h in hs)} |")
    if args.check:
        return check(heads)
    if args.gaps:
        print_gaps(heads)
    # replayable: heads that recorded their improvement epochs and ran under the reference's val_loss rule, or
    # (--replay ours) under a stop on the selection metric, replayed at patiences up to their own
    ours = args.replay == "ours"
    replayable = {n: [h for h in hs if "improved_at" in h and (
        h.get("early_stop") == h.get("select") if ours else h.get("early_stop") == "val_loss")]
        for n, hs in heads.items()}
    if any(replayable.values()):
        print("\nReplay of a stop on the validation main metric (heads that record `improved_at`, run under "
              + ("a stop on that metric" if ours else "the val_loss rule") + "):\n")
        print("| head | heads | patience | best moved earlier | cut | mean epochs run | epochs run / recorded | "
              "max gap between improvements |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, pool in sorted(replayable.items()):
            if not pool:
                continue
            widest = max(longest_gap(h["improved_at"]) for h in pool)
            for p in patiences:
                hs = [h for h in pool if h.get("early_stop") == "val_loss" or p <= h["patience"]]
                if not hs:
                    continue
                res, moved = replay_heads(hs, p)
                # cut: the recorded run stopped (val_loss rule) before the replay could see its whole window
                cut = sum(last >= h["epochs_run"] and h["stopped_early"] for (_, _, last), h in zip(res, hs))
                ratio = sum(r for _, r, _ in res) / max(1, sum(h["epochs_run"] for h in hs))
                print(f"| {name} | {len(hs)} | {p} | {moved} | {cut} | "
                      f"{np.mean([r for _, r, _ in res]):.1f} | {ratio:.2f} | {widest} |")
        if ours:
            print_projection(replayable, protocol_s, patiences)
    return 0


def print_projection(replayable: dict[str, list[dict[str, Any]]], protocol_s: dict[str, float],
                     patiences: list[int]) -> None:
    """Per patience: the records' protocol seconds if each record's seconds scaled with its heads' epochs run
    (a projection: encoding and scoring do not scale), over the records whose every head is replayable there, and
    over all records read (the others' seconds unchanged)."""
    by_record: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hs in replayable.values():
        for h in hs:
            by_record[h["_record"]].append(h)
    print("\nProjected protocol seconds (each record's seconds scaled by its heads' replayed / recorded epochs):\n")
    print("| patience | records | heads | best moved earlier | head epochs / recorded | protocol s / recorded | "
          "all records' protocol s / recorded |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    total = sum(protocol_s.values())
    for p in patiences:
        recs = {r: hs for r, hs in by_record.items() if all(p <= h["patience"] for h in hs)}
        if not recs:
            continue
        ran = rec_ep = moved = 0
        secs = rec_secs = 0.0
        for r, hs in recs.items():
            res, n_moved = replay_heads(hs, p)
            new, old = sum(e for _, e, _ in res), sum(h["epochs_run"] for h in hs)
            ran, rec_ep, moved = ran + new, rec_ep + old, moved + n_moved
            secs += protocol_s.get(r, 0.0) * new / max(1, old)
            rec_secs += protocol_s.get(r, 0.0)
        n_heads = sum(len(hs) for hs in recs.values())
        print(f"| {p} | {len(recs)} | {n_heads} | {moved} | {ran / max(1, rec_ep):.2f} | "
              f"{secs / rec_secs if rec_secs else float('nan'):.2f} | "
              f"{(total - rec_secs + secs) / total if total else float('nan'):.2f} |")


GAP_BANDS = ((0, 9), (10, 14), (15, 19), (20, 22), (23, 25), (26, 50), (51, 10**6))


def longest_gap(improved_at: list[int]) -> int:
    """The most epochs between two successive improvements of the selection metric (0 for fewer than two)."""
    return max((b - a for a, b in zip(improved_at, improved_at[1:])), default=0)


def print_gaps(heads: dict[str, list[dict[str, Any]]]) -> None:
    """| head | heads | patience | count per band of longest gap |, for heads that record improved_at."""
    labels = [f"{lo}-{hi}" if hi < 10**6 else f"{lo}+" for lo, hi in GAP_BANDS]
    print("\nLongest gap between successive improvements (heads that record `improved_at`):\n")
    print("| head | heads | patience | " + " | ".join(labels) + " |")
    print("|---|---:|---|" + "---:|" * len(labels))
    for name, hs in sorted(heads.items()):
        pool = [h for h in hs if "improved_at" in h]
        if not pool:
            continue
        gaps = [longest_gap(h["improved_at"]) for h in pool]
        counts = [sum(lo <= g <= hi for g in gaps) for lo, hi in GAP_BANDS]
        pats = "/".join(str(p) for p in sorted({h.get("patience") for h in pool}, key=lambda p: -1 if p is None else int(p)))
        print(f"| {name} | {len(pool)} | {pats} | " + " | ".join(str(c) for c in counts) + " |")


def check(heads: dict[str, list[dict[str, Any]]]) -> int:
    """0 when every head stopped on its selection metric within best_epoch + patience + 1 epochs, else 1."""
    bad = []
    for name, hs in sorted(heads.items()):
        for h in hs:
            rule_ok = h.get("early_stop") is not None and h.get("early_stop") == h.get("select")
            if not rule_ok or h["epochs_run"] > h["best_epoch"] + int(h.get("patience", 0)) + 1:
                bad.append((name, h))
    total = sum(len(hs) for hs in heads.values())
    for name, h in bad[:20]:
        print(f"  {h['_record']}: {name} ran {h['epochs_run']} epochs, best {h['best_epoch']}, stop on "
              f"{h.get('early_stop')} with patience {h.get('patience')} (selects on {h.get('select')})")
    if bad:
        print(f"check: {len(bad)} of {total} heads break epochs_run <= best_epoch + patience + 1 on the selection "
              f"metric" + (" (first 20 listed)" if len(bad) > 20 else ""))
        return 1
    print(f"check: all {total} heads ran at most best_epoch + patience + 1 epochs, stopping on their selection metric")
    return 0


if __name__ == "__main__":
    sys.exit(main())
