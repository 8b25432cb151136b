"""Dispatch of work units: in-process (serial), joblib (loky processes) or dask.distributed.

`dispatch_graph` starts each unit as soon as its dependencies have finished, taking the ready units in the
given priority order (the runner passes seed-major order), so parallel workers stay busy across dependency
levels and a run stopped part-way has finished whole seeds, not one dependency level of every seed: a
resumed run (often on another machine, without the checkpoints) then retrains at most the dependencies of the
seeds in flight.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from benchmark.runner import stop
from benchmark.runner.units import RunError, RunSettings, WorkUnit
from benchmark.runner.worker import run_work_unit

SCHEDULER_TIMEOUT_S = 5
POLL_S = 0.5  # how often the dispatcher looks for a stop that was asked (see runner.stop)
WORKER_EXIT_S = 10.0  # after a kill, how long a worker may take to exit before SIGKILL


def _dask_client(settings: RunSettings) -> tuple[Any, Any]:
    """A dask client for the given scheduler, or for a local cluster of `jobs` one-thread processes."""
    try:
        from distributed import Client, LocalCluster
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
    return client, cluster


def dispatch_graph(order: list[str], deps: Mapping[str, set[str]], payload_for: Callable[[str], WorkUnit | None],
                   settings: RunSettings, on_cell: Callable[[str, dict[str, Any]], None] | None = None,
                   ) -> Generator[tuple[str, list[dict], str | None], None, None]:
    """Run the units of `order` (a priority order) once their `deps` have finished; yield as `dispatch` does.

    `payload_for(key)` is asked when a unit becomes ready (after the results of its dependencies were
    yielded) and returns None for a unit that must not run (a dependency failed): it counts as finished.
    """
    pending = list(order)
    finished: set[str] = set()

    def ready() -> list[str]:
        return [k for k in pending if deps.get(k, set()) <= finished]

    if settings.backend == "local" and settings.jobs == 1:
        while pending:
            stop.check()
            k = ready()[0]  # a dependency order always has a ready unit
            pending.remove(k)
            p = payload_for(k)
            if p is not None:
                yield run_work_unit(p, on_cell=on_cell)
            finished.add(k)
        return
    limit = len(order) if settings.backend == "dask" else settings.jobs  # dask's scheduler balances its cluster
    running: dict[Any, str] = {}
    completed = False
    close: Callable[[bool], None] | None = None
    try:
        submit, wait_first, close = _pool(settings)
        while pending or running:
            stop.check()
            for k in ready():
                if len(running) >= limit:
                    break
                pending.remove(k)
                p = payload_for(k)
                if p is None:
                    finished.add(k)
                    continue
                running[submit(p)] = k
            if not running:
                continue  # units were skipped: more may be ready now
            for fut in wait_first(list(running)):
                k = running.pop(fut)
                finished.add(k)
                yield fut.result()
        completed = True
    finally:
        if close is not None:  # (a stop while the pool starts: runner.execute ends its workers, end_started_pool)
            close(not completed)  # stopped (signal, error, generator closed): the workers end before this returns


def _kill(p: Any) -> None:
    """SIGKILL a worker process (loky's Popen has no kill())."""
    try:
        os.kill(p.pid, signal.SIGKILL)
    except (ProcessLookupError, TypeError):
        pass


def end_started_pool(graceful: bool = False) -> None:
    """End the workers of loky's reusable executor, if one was started, so that none outlives the results
    folder's lock: `graceful` (a run that ended normally) shuts the idle pool down; otherwise (a stop, which can
    land between the pool's start and the moment `_pool` hands back its `close`, or after the last unit) the
    workers still alive are killed (not ex.shutdown(): a pool shut down already by `close` would block)."""
    from joblib.externals.loky import reusable_executor

    ex = getattr(reusable_executor, "_executor", None)
    if ex is None:
        return
    procs = list(getattr(ex, "_processes", {}).values())  # shutdown() forgets them before they have exited
    flags = getattr(ex, "_flags", None)
    try:
        if graceful and flags is not None and not (flags.shutdown or flags.broken):
            ex.shutdown(wait=True)
            for p in procs:
                p.join(timeout=WORKER_EXIT_S)
    finally:  # a stop during the graceful end, or a stopped run: kill what is left, and wait for it
        for p in [p for p in procs if p.is_alive()]:
            _kill(p)
            p.join(timeout=WORKER_EXIT_S)


def _pool(settings: RunSettings) -> tuple[Callable[[WorkUnit], Any], Callable[[list[Any]], list[Any]],
                                          Callable[[bool], None]]:
    """(submit, wait up to POLL_S for at least one, close(aborted)) of the backend's process pool; close(True)
    ends the workers and returns once they are gone."""
    if settings.backend == "dask":
        client, cluster = _dask_client(settings)
        from distributed import wait

        submitted: list[Any] = []

        def submit(p: WorkUnit) -> Any:
            submitted.append(client.submit(run_work_unit, p, pure=False))
            return submitted[-1]

        def close(aborted: bool) -> None:
            if aborted and submitted:  # cancel what this run submitted (an outside cluster lives on)
                client.cancel(submitted)
            client.close()
            if cluster is not None:
                cluster.close()

        def wait_dask(fs: list[Any]) -> list[Any]:
            try:
                return list(wait(fs, timeout=POLL_S, return_when="FIRST_COMPLETED").done)
            except TimeoutError:
                return []

        return submit, wait_dask, close
    from joblib.externals.loky import get_reusable_executor

    with _workers_ignore_sigint():
        ex = get_reusable_executor(max_workers=settings.jobs)
        ex.submit(int)  # starts every worker now, inside the block (a no-op task)

    def close_loky(aborted: bool) -> None:
        if aborted:
            _end_workers(ex)

    return (lambda p: ex.submit(run_work_unit, p),
            lambda fs: list(cf.wait(fs, timeout=POLL_S, return_when=cf.FIRST_COMPLETED).done), close_loky)


@contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Processes started in the block ignore SIGINT for life (an ignored signal stays ignored across exec).

    Ctrl-C signals the whole process group: a worker that took it would print a traceback from wherever it was
    (even while importing) and end its unit half-way. Workers never see it; the dispatching process ends them
    (`_end_workers`) before the results folder is unlocked. The block lasts while the workers are forked (a
    few milliseconds); only the main thread may change signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.default_int_handler)


def _end_workers(ex: Any) -> None:
    """Kill the loky executor's workers and wait until every one has exited (they may be writing records)."""
    procs = list(getattr(ex, "_processes", {}).values())
    try:
        ex.shutdown(wait=True, kill_workers=True)
    finally:
        for p in procs:
            p.join(timeout=WORKER_EXIT_S)
            if p.is_alive():
                _kill(p)
                p.join()
