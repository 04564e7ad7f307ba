"""Where tasks run: in-process, a local process pool, or a Dask cluster.

Every engine yields task results as they finish (in any order); the caller stores them by key,
so the order of completion never reaches the outputs. At most a few tasks per worker are in
flight, so pending results never pile up in memory.
"""
from __future__ import annotations

import logging
import time
import multiprocessing as mp
import os
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator

IN_FLIGHT_PER_WORKER = 2


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_workers(engine: str, workers: int | None, n_tasks: int) -> int:
    """Default: all cores; never more local workers than tasks (idle processes cost start-up)."""
    n = workers or available_cores()
    return max(1, min(n, n_tasks)) if engine == "local" else n


def execute(fn: Callable[[dict], dict], specs: list[dict], *, engine: str, workers: int,
            scheduler: str | None = None) -> Iterator[dict]:
    if not specs:
        return iter(())
    if engine == "dask":
        return _dask(fn, specs, workers, scheduler)
    if workers == 1:
        return (fn(s) for s in specs)
    return _pool(fn, specs, workers)


def _pool(fn, specs: Iterable[dict], workers: int) -> Iterator[dict]:
    # forkserver: children start from a clean process, not a fork of one running threads
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["abm._warm"])   # workers fork with the model already imported
    pending_specs = iter(specs)
    lifeline, keep_alive = ctx.Pipe(duplex=False)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_orphan_guard,
                                 initargs=(lifeline,)) as pool:
            running = set()
            try:
                while True:
                    while len(running) < workers * IN_FLIGHT_PER_WORKER:
                        spec = next(pending_specs, None)
                        if spec is None:
                            break
                        running.add(pool.submit(fn, spec))
                    if not running:
                        return
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        yield fut.result()
            except BaseException:
                for fut in running:
                    fut.cancel()
                raise
    finally:
        keep_alive.close()
        lifeline.close()


def _orphan_guard(lifeline) -> None:
    """Workers exit when the main process dies (even by SIGKILL) instead of idling forever:
    they wait on a pipe whose only writer is the main process, which the OS closes at death."""
    import threading

    def watch():
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="abm-orphan-guard").start()


def _dask(fn, specs: list[dict], workers: int, scheduler: str | None) -> Iterator[dict]:
    from distributed import Client, LocalCluster
    from distributed import wait as dask_wait
    try:
        from distributed.utils import TimeoutError as dask_timeout
    except ImportError:           # pragma: no cover - older distributed
        dask_timeout = TimeoutError

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="15s")
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        raise RuntimeError(f"cannot connect to Dask scheduler {scheduler}: {exc}") from None
    try:
        n = max(1, len(client.scheduler_info().get("workers", {})) or workers)
        queue, token = iter(specs), uuid.uuid4().hex[:8]
        first = [client.submit(fn, s, pure=False, key=f"abm-{s['key']}-{token}")
                 for _, s in zip(range(n * IN_FLIGHT_PER_WORKER), queue)]
        pending = set(first)
        grace = float(os.environ.get("ABM_DASK_NO_WORKER_SECONDS", "120"))
        alone_since = None
        while pending:
            try:
                finished, _ = dask_wait(list(pending), timeout=2, return_when="FIRST_COMPLETED")
            except (TimeoutError, dask_timeout):
                # no task finished: are there still workers to run them?
                if client.scheduler_info().get("workers"):
                    alone_since = None
                    continue
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > grace:
                    raise RuntimeError(f"every Dask worker has gone for {grace:.0f} s with {len(pending)} tasks "
                                       "unfinished; start workers and rerun with --resume") from None
                continue
            alone_since = None
            for fut in finished:
                pending.discard(fut)
                result = fut.result()
                fut.release()
                spec = next(queue, None)
                if spec is not None:
                    pending.add(client.submit(fn, spec, pure=False, key=f"abm-{spec['key']}-{token}"))
                yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
