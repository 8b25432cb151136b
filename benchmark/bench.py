"""Training-speed benchmark: `python -m benchmark.bench train [--device auto] [--dataset synthetic] [--steps N]`.

For every method at its paper batch size (UTD-MHAD profile) it measures, on the chosen device:
- throughput in clips per second (batch size / full step time, data and augmentation included);
- achieved GFLOP/s: FLOPs of one forward + backward step (torch.utils.flop_counter.FlopCounterMode) / step time;
- the fraction of the step spent building the batch (indexing + augmentation);
and, in the same run, the GFLOP/s of a 2048 x 2048 fp32 matmul (plus bf16 on CUDA) as the device's yardstick:
once at the start (header) and again right before each row ("matmul GFLOP/s"; "of matmul" divides by this
local value, so a shared CPU whose load changes during the run still gives a fair ratio).
The training step is the one `benchmark.pretrain` runs (same batch builder, autocast, optimizer, hooks).
"""
from __future__ import annotations

import os
import sys

# On a shared CPU, OpenMP threads that spin-wait at every barrier collapse when another process holds a core
# (measured here: a CMC step at 2 threads went from 4.3 s to 0.66 s with passive waiting). The policy is read
# when the OpenMP runtime loads with torch, so it is set before the first torch import (run as a script);
# an explicit OMP_WAIT_POLICY in the environment wins.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmark.data import load_dataset  # noqa: E402
from benchmark.engine import TrainConfig, autocast_for, make_optimizer, resolve_device, seed_everything  # noqa: E402
from benchmark.pretrain import _BatchMaker, build_method  # noqa: E402
from methods.base import DataInfo  # noqa: E402

# (method, overrides) in table order; batch sizes come from each method's UTD-MHAD paper config.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("supervised", {"modality": "inertial"}),
    ("supervised", {"modality": "skeleton"}),
    ("supervised", {"modality": "all"}),
    ("simclr", {"modality": "inertial"}),
    ("simclr", {"modality": "skeleton"}),
    ("moco", {"modality": "inertial"}),
    ("moco", {"modality": "skeleton"}),
    ("cmc", {}),
    ("cmc_moco", {}),
    ("cmc_cmkm", {}),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                  min_seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of an n x n matmul (2 n^3 FLOPs each) on `device`."""
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


def _make_step(method: Any, opt: torch.optim.Optimizer, device: torch.device) -> Callable[[dict], float]:
    def step(batch: dict) -> float:
        with autocast_for(device):
            loss = method.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
        method.after_step()
        return float(loss.detach())

    return step


def bench_variant(name: str, overrides: dict[str, Any], data: Any, train_idx: np.ndarray, device: torch.device,
                  steps: int, warmup: int = 2) -> dict[str, Any]:
    """Time `steps` training steps of one method variant and count the FLOPs of one step."""
    seed_everything(0)
    info = DataInfo.from_data(data)
    deps = None
    if name == "cmc_cmkm":  # untrained teachers cost the same forward FLOPs as trained ones
        deps = {f"teacher_{m}": build_method("simclr", info, {"modality": m}) for m in ("inertial", "skeleton")}
    method = build_method(name, info, overrides, deps).to(device).train()
    cfg = method.cfg
    batch_size = cfg["batch_size"]
    if batch_size > len(train_idx):
        raise ValueError(f"{name}: batch size {batch_size} exceeds the dataset's {len(train_idx)} clips")
    opt = make_optimizer([p for p in method.parameters() if p.requires_grad], TrainConfig.from_dict(cfg))
    make = _BatchMaker(method, data, device, seed=0)
    step = _make_step(method, opt, device)
    index = torch.as_tensor(train_idx, device=device)
    gen = torch.Generator().manual_seed(0)

    def next_index() -> torch.Tensor:
        return index[torch.randperm(len(index), generator=gen)[:batch_size].to(device)]

    for _ in range(warmup):
        step(make(next_index()))
    batch = make(next_index())
    with FlopCounterMode(display=False) as counter:
        step(batch)
    flops = counter.get_total_flops()
    data_s = compute_s = 0.0
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        batch = make(next_index())
        _sync(device)
        t1 = time.perf_counter()
        step(batch)
        _sync(device)
        t2 = time.perf_counter()
        data_s += t1 - t0
        compute_s += t2 - t1
    step_s = (data_s + compute_s) / steps
    return {"variant": method.variant_name(cfg), "batch": batch_size, "step_ms": 1e3 * step_s,
            "clips_per_s": batch_size / step_s, "gflop_per_step": flops / 1e9,
            "gflops": flops / step_s / 1e9, "data_frac": data_s / (data_s + compute_s)}


def run_train_bench(device: str = "auto", dataset: str = "synthetic", steps: int = 5,
                    methods: list[str] | None = None, root: str | None = None,
                    threads: int | None = None) -> list[dict[str, Any]]:
    """Measure every method variant (or those named in `methods`); the first row describes the device."""
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    data = load_dataset(dataset, root=root)
    clips = np.arange(len(data))  # a speed benchmark: batches are drawn from every clip (no labels used)
    ref = {"fp32": matmul_gflops(dev)}
    if dev.type == "cuda":
        ref["bf16"] = matmul_gflops(dev, torch.bfloat16)
    rows = []
    for name, overrides in VARIANTS:
        if methods and name not in methods:
            continue
        local = matmul_gflops(dev, min_seconds=0.5)  # right before the row: robust to load changes on shared CPUs
        row = bench_variant(name, overrides, data, clips, dev, steps)
        row["matmul_gflops"] = local
        row["matmul_frac"] = row["gflops"] / local
        rows.append(row)
    head = {"device": str(dev), "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), **{f"matmul_{k}_gflops": v for k, v in ref.items()}}
    return [head, *rows]


def format_table(result: list[dict[str, Any]]) -> str:
    """The header line (device, matmul yardstick) and a tabulate table of the variants."""
    head, rows = result[0], result[1:]
    ref = ", ".join(f"{k.split('_')[1]} matmul 2048^2: {v:.1f} GFLOP/s"
                    for k, v in head.items() if k.startswith("matmul"))
    table = tabulate(
        [[r["variant"], r["batch"], f"{r['step_ms']:.0f}", f"{r['clips_per_s']:.1f}", f"{r['gflop_per_step']:.1f}",
          f"{r['gflops']:.1f}", f"{r['matmul_gflops']:.0f}", f"{100 * r['matmul_frac']:.0f}%",
          f"{100 * r['data_frac']:.1f}%"] for r in rows],
        headers=["method", "batch", "step ms", "clips/s", "GFLOP/step", "GFLOP/s", "matmul GFLOP/s", "of matmul",
                 "data+aug"],
        tablefmt="github",
    )
    policy = f", OMP_WAIT_POLICY={head['omp_wait_policy']}" if head.get("omp_wait_policy") else ""
    return f"device {head['device']} ({head['threads']} threads{policy}); {ref}\n{table}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="pretraining throughput, GFLOP/s and data fraction per method")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1")
    train.add_argument("--dataset", default="synthetic", help="synthetic (default) or utd_mhad")
    train.add_argument("--data-root", default=None, help="data root for real datasets (else $MMHAR_DATA, ./data)")
    train.add_argument("--steps", type=int, default=5, help="timed steps per method (after 2 warm-up steps)")
    train.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    methods = args.methods.split(",") if args.methods else None
    print(format_table(run_train_bench(args.device, args.dataset, args.steps, methods, args.data_root, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
