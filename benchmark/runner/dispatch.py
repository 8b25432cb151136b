"""Dispatch of work units: in-process (serial), joblib (loky processes) or dask.distributed."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from benchmark.runner.units import RunError, RunSettings, WorkUnit
from benchmark.runner.worker import run_work_unit

SCHEDULER_TIMEOUT_S = 5


def dispatch(payloads: list[WorkUnit], settings: RunSettings,
              on_cell: Callable[[str, dict[str, Any]], None] | None = None,
              ) -> Iterator[tuple[str, list[dict], str | None]]:
    """Run payloads with the chosen backend, yielding (unit key, cell outcomes, unit error) as they finish.

    In-process runs also report each cell to `on_cell` as soon as it is stored.
    """
    if not payloads:
        return
    if settings.backend == "dask":
        yield from _dispatch_dask(payloads, settings)
    elif settings.backend == "joblib" or settings.jobs > 1:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=settings.jobs, backend="loky", return_as="generator_unordered")
        yield from par(delayed(run_work_unit)(p) for p in payloads)
    else:
        for p in payloads:
            yield run_work_unit(p, on_cell=on_cell)


def _dispatch_dask(payloads: list[WorkUnit], settings: RunSettings) -> Iterator[tuple[str, list[dict], str | None]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise RunError("--backend dask needs dask.distributed: pip install 'dask[distributed]'") from exc
    cluster = None
    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:
            raise RunError(f"cannot reach the dask scheduler at {settings.scheduler} within {SCHEDULER_TIMEOUT_S} s "
                           f"({type(exc).__name__}); start it (dask scheduler) or run without --scheduler") from None
    else:
        cluster = LocalCluster(n_workers=settings.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(run_work_unit, payloads, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
