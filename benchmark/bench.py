"""Training-speed benchmark: `python -m benchmark.bench train [--baseline] [--json FILE] [--precision auto]`.

For every method variant at its paper batch size (the dataset's training profile) it measures, on the chosen device:
- the step time (data, augmentation, forward, backward, optimizer: the step `benchmark.pretrain` runs) and the
  throughput in clips per second;
- achieved GFLOP/s: FLOPs of one step (torch.utils.flop_counter.FlopCounterMode) / step time;
- the fraction of the step spent building the batch (indexing + augmentation);
- the n x n matmul GFLOP/s in fp32 and bf16 right before each row, as the device's yardsticks (n = 2048, smaller where one
  product would take over the time budget, as bf16 does on a CPU that emulates it).

`--baseline` also times the path as it was before the fast path existed (fp32, eager, `nn.Dropout` /
`nn.TransformerEncoderLayer`, the untuned allocator) on the same batches. The two paths run in two worker
processes (the allocator setting is per process) and take turns, a few steps each, for `--rounds` rounds, so
both see the same machine load; `speedup` is the baseline's step time over the fast path's.
"""
from __future__ import annotations

import os
import sys

# On a shared CPU, OpenMP threads that spin-wait at every barrier collapse when another process holds a core
# (measured here: a CMC step at 2 threads went from 4.3 s to 0.66 s with passive waiting). The policy is read
# when the OpenMP runtime loads with torch, so it is set before the first torch import (run as a script);
# an explicit OMP_WAIT_POLICY in the environment wins. Spawned workers inherit it.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

from benchmark import store
from benchmark.backbones.fast_ops import kernel_mode
from benchmark.contracts.method import DataInfo
from benchmark.data import default_dataset, load_dataset
from benchmark.engine import TrainConfig, autocast_for, make_optimizer, resolve_device, seed_everything
from benchmark.hardware import PRECISIONS, cpu_info, resolve_precision, set_precision, tune_allocator
from benchmark.pretrain import _BatchMaker, build_method
from benchmark.registry import METHODS
from benchmark.suites import expand_method, parse_variant

FAST = {"precision": "auto", "kernels": "fast", "tune_allocator": True}
BASELINE = {"precision": "fp32", "kernels": "reference", "tune_allocator": False}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                  min_seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of an n x n matmul (2 n^3 FLOPs each) on `device`.

    Where one n x n product would itself take longer than `min_seconds` (bf16 emulated on a CPU without native
    bf16: 0.7 GFLOP/s, 26 s for n = 2048 on an AVX2 EPYC), n is halved, down to 256, so the yardstick costs
    seconds, not minutes.
    """
    small = 256
    a = torch.randn(small, small, device=device, dtype=dtype)
    for _ in range(2):
        a @ a
    _sync(device)
    t0 = time.perf_counter()
    a @ a
    _sync(device)
    t_small = time.perf_counter() - t0
    while n > small and t_small * (n / small) ** 3 > min_seconds:
        n //= 2
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        if reps % 4 == 0:
            _sync(device)
            if time.perf_counter() - t0 >= min_seconds:
                break
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _untrained_deps(name: str, cfg: dict[str, Any], info: DataInfo) -> dict[str, Any]:
    """The method's declared dependencies, built untrained (a teacher's forward costs the same either way)."""
    out = {}
    for dep in METHODS.get(name).dependencies(cfg, info):
        dep_cfg = METHODS.get(dep.method).resolve_config(info, dep.overrides)
        out[dep.key] = build_method(dep.method, info, dep.overrides, _untrained_deps(dep.method, dep_cfg, info))
    return out


class _Runner:
    """One method variant set up to train: method, optimizer, batch maker and a seeded index stream."""

    def __init__(self, name: str, overrides: dict[str, Any], data: Any, clips: np.ndarray,
                 device: torch.device) -> None:
        seed_everything(0)
        info = DataInfo.from_data(data)
        cfg = METHODS.get(name).resolve_config(info, overrides)
        self.method = build_method(name, info, overrides, _untrained_deps(name, cfg, info)).to(device).train()
        self.batch_size = int(self.method.cfg["batch_size"])
        if self.batch_size > len(clips):
            raise ValueError(f"{name}: batch size {self.batch_size} exceeds the dataset's {len(clips)} clips")
        self.opt = make_optimizer([p for p in self.method.parameters() if p.requires_grad],
                                  TrainConfig.from_dict(self.method.cfg))
        self.make = _BatchMaker(self.method, data, device, seed=0)
        self.device = device
        self.index = torch.as_tensor(clips, device=device)
        self.gen = torch.Generator().manual_seed(0)
        self.variant = self.method.variant_name(self.method.cfg)

    def batch(self) -> dict[str, Any]:
        pick = torch.randperm(len(self.index), generator=self.gen)[: self.batch_size]
        return self.make(self.index[pick.to(self.device)])

    def step(self, batch: dict[str, Any]) -> float:
        with autocast_for(self.device):
            loss = self.method.loss(batch)
        self.opt.zero_grad(set_to_none=True)
        loss.float().backward()
        self.opt.step()
        self.method.after_step()
        return float(loss.detach())

    def flops(self) -> float:
        with FlopCounterMode(display=False) as counter:
            self.step(self.batch())
        return float(counter.get_total_flops())

    def timed(self, steps: int) -> tuple[list[float], float]:
        """Per-step times (data + compute) and the summed data time of `steps` steps."""
        times, data_s = [], 0.0
        for _ in range(steps):
            _sync(self.device)
            t0 = time.perf_counter()
            batch = self.batch()
            _sync(self.device)
            t1 = time.perf_counter()
            self.step(batch)
            _sync(self.device)
            times.append(time.perf_counter() - t0)
            data_s += t1 - t0
        return times, data_s


def _serve(conn: Any, mode: dict[str, Any], dataset: str, root: str | None, threads: int | None,
           device: str) -> None:
    """Worker process: answer ('measure', name, overrides, steps, first) requests until 'stop'."""
    try:
        dev = resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        if mode["tune_allocator"]:
            tune_allocator()
        precision = resolve_precision(mode["precision"], dev)
        set_precision(precision)
        data = load_dataset(dataset, root=root)
        clips = np.arange(len(data))  # a speed benchmark: batches are drawn from every clip (no labels used)
        runners: dict[str, _Runner] = {}
        conn.send({"ready": True, "precision": precision, "threads": torch.get_num_threads()})
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            _, name, overrides, steps, first = msg
            key = json.dumps([name, overrides], sort_keys=True)
            out: dict[str, Any] = {}
            if key not in runners:
                with kernel_mode(mode["kernels"]):
                    runners[key] = _Runner(name, overrides, data, clips, dev)
            r = runners[key]
            if first:  # warm-up, FLOPs and the yardsticks once per variant
                for _ in range(2):
                    r.step(r.batch())
                out["flops"] = r.flops()
                out["fp32_matmul_gflops"] = matmul_gflops(dev, min_seconds=0.5)
                out["bf16_matmul_gflops"] = matmul_gflops(dev, torch.bfloat16, min_seconds=0.5)
            times, data_s = r.timed(steps)
            out.update(variant=r.variant, batch=r.batch_size, times=times, data_s=data_s)
            conn.send(out)
    except Exception as exc:  # report to the parent instead of dying silently
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


class _Worker:
    def __init__(self, mode: dict[str, Any], dataset: str, root: str | None, threads: int | None,
                 device: str) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, mode, dataset, root, threads, device), daemon=True)
        self.proc.start()
        self.info = self._recv()

    def _recv(self) -> dict[str, Any]:
        msg = self.conn.recv()
        if "error" in msg:
            raise RuntimeError(f"benchmark worker failed: {msg['error']}")
        return msg

    def measure(self, name: str, overrides: dict[str, Any], steps: int, first: bool) -> dict[str, Any]:
        self.conn.send(("measure", name, overrides, steps, first))
        return self._recv()

    def close(self) -> None:
        try:
            self.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()


def _row(fast: dict[str, Any], times: list[float], data_s: float, precision: str) -> dict[str, Any]:
    step_s = statistics.median(times)
    return {"method": fast["variant"], "batch": fast["batch"], "step_ms": 1e3 * step_s,
            "clips_per_s": fast["batch"] / step_s, "gflop_per_step": fast["flops"] / 1e9,
            "gflops": fast["flops"] / step_s / 1e9, "fp32_matmul_gflops": fast["fp32_matmul_gflops"],
            "bf16_matmul_gflops": fast["bf16_matmul_gflops"], "precision": precision,
            "data_fraction": data_s / sum(times)}


def nothing_to_train(name: str, info: DataInfo, overrides: dict[str, Any]) -> str | None:
    """Why method `name` has no training step to time (no loss of its own, or 0 epochs), else None."""
    from benchmark.contracts.method import Method

    cls = METHODS.get(name)
    if cls.loss is Method.loss:
        return "it defines no training loss"
    if cls.resolve_config(info, overrides).get("epochs") == 0:
        return "it trains for 0 epochs"
    return None


def bench_variants(dataset: str, root: str | None = None,
                   log: Callable[[str], None] = lambda s: None) -> list[tuple[str, dict[str, Any]]]:
    """(method, overrides) of every registered method's variants on `dataset` that train, in registry order;
    those with nothing to train are skipped with a note."""
    info = DataInfo.from_data(load_dataset(dataset, root))
    out: list[tuple[str, dict[str, Any]]] = []
    for name in METHODS.names():
        if METHODS.get(name).applicability(info) is None:
            why = nothing_to_train(name, info, {})
            if why:
                log(f"note: skipped {name}: nothing to train ({why})")
                continue
            out.extend(parse_variant(v) for v in expand_method(name, info))
    return out


def run_train_bench(device: str = "auto", dataset: str | None = None, steps: int = 5,
                    methods: list[str] | None = None, root: str | None = None, threads: int | None = None,
                    baseline: bool = False, precision: str = "auto", rounds: int = 3,
                    log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Measure every method variant (or those named in `methods`); the first row describes the machine.

    Each round times `steps` steps of the fast path and, with `baseline`, `steps` of the baseline (the order
    alternates between rounds); step times are medians over all timed steps.
    """
    dataset = dataset or default_dataset()
    unknown = sorted(set(methods or []) - set(METHODS.names()))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS.names())}")
    variants = bench_variants(dataset, root, log)
    idle = sorted(set(methods or []) - {name for name, _ in variants})
    if idle:
        raise ValueError(f"nothing to time for {', '.join(idle)} on {dataset}: nothing to train, or not applicable")
    fast_mode = {**FAST, "precision": precision}
    fast = _Worker(fast_mode, dataset, root, threads, device)
    base = _Worker(BASELINE, dataset, root, threads, device) if baseline else None
    rows = []
    try:
        for name, overrides in variants:
            if methods and name not in methods:
                continue
            log(f"timing {name} {overrides or ''}")
            f_times: list[float] = []
            b_times: list[float] = []
            f_data = b_data = 0.0
            first_fast: dict[str, Any] = {}
            for r in range(rounds):
                order = [("f", fast), ("b", base)] if r % 2 == 0 else [("b", base), ("f", fast)]
                for tag, w in order:
                    if w is None:
                        continue
                    out = w.measure(name, overrides, steps, first=(r == 0))
                    if tag == "f":
                        first_fast = first_fast or out
                        f_times += out["times"]
                        f_data += out["data_s"]
                    else:
                        b_times += out["times"]
                        b_data += out["data_s"]
            row = _row(first_fast, f_times, f_data, fast.info["precision"])
            if base is not None:
                row["baseline_step_ms"] = 1e3 * statistics.median(b_times)
                row["speedup"] = row["baseline_step_ms"] / row["step_ms"]
                row["baseline_data_fraction"] = b_data / sum(b_times)
            rows.append(row)
    finally:
        fast.close()
        if base is not None:
            base.close()
    cpu = cpu_info()
    head = {"device": str(resolve_device(device)), "threads": fast.info["threads"], "precision": fast.info["precision"],
            "cpu": cpu["model"], "cpu_flags": cpu["flags"], "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "baseline": baseline, "rounds": rounds,
            "steps_per_round": steps, "git": store.git_info()}
    return [head, *rows]


def format_table(result: list[dict[str, Any]]) -> str:
    """The header line (machine, precision) and a tabulate table of the variants."""
    head, rows = result[0], result[1:]
    base = bool(head.get("baseline"))
    headers = ["method", "batch", "step ms", *(["baseline ms", "speedup"] if base else []), "clips/s",
               "GFLOP/step", "GFLOP/s", "fp32 matmul", "bf16 matmul", "of fp32 matmul", "data+aug"]
    table = tabulate(
        [[r["method"], r["batch"], f"{r['step_ms']:.0f}",
          *([f"{r['baseline_step_ms']:.0f}", f"{r['speedup']:.2f}x"] if base else []),
          f"{r['clips_per_s']:.1f}", f"{r['gflop_per_step']:.1f}", f"{r['gflops']:.1f}",
          f"{r['fp32_matmul_gflops']:.0f}", f"{r['bf16_matmul_gflops']:.0f}",
          f"{100 * r['gflops'] / r['fp32_matmul_gflops']:.0f}%", f"{100 * r['data_fraction']:.1f}%"] for r in rows],
        headers=headers, tablefmt="github",
    )
    policy = f", OMP_WAIT_POLICY={head['omp_wait_policy']}" if head.get("omp_wait_policy") else ""
    vs = " vs baseline fp32/reference kernels" if base else ""
    return (f"device {head['device']} ({head['cpu']}, {head['threads']} threads{policy}, torch {head['torch']}); "
            f"fast path precision {head['precision']}{vs}; matmul columns: n x n GFLOP/s, n = 2048 or less"
            f" where one product is too slow\n{table}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="training step time, speedup over the baseline, GFLOP/s per method")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1")
    train.add_argument("--dataset", default=None,
                       help="a registered dataset (default: the embedded one, which needs no raw files)")
    train.add_argument("--data-root", default=None, help="data root for real datasets (else $MMHAR_DATA, ./data)")
    train.add_argument("--steps", type=int, default=5, help="timed steps per round and path (after 2 warm-up steps)")
    train.add_argument("--rounds", type=int, default=3, help="rounds in which the two paths take turns")
    train.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="the fast path's precision (default auto: bf16 where the device has it natively)")
    train.add_argument("--baseline", action="store_true",
                       help="also time the pre-fast-path step (fp32, reference kernels, untuned allocator)")
    train.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")
    methods = args.methods.split(",") if args.methods else None
    try:
        result = run_train_bench(args.device, args.dataset, args.steps, methods, args.data_root, args.threads,
                                 args.baseline, args.precision, args.rounds,
                                 log=lambda s: print(s, file=sys.stderr, flush=True))
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        head, rows = result[0], result[1:]
        args.json.write_text(json.dumps([{**r, "machine": head} for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
