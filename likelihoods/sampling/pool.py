"""Where the posterior is evaluated: in this process (emcee's ``vectorize``) or on a Dask
cluster through :class:`DaskPool`; :func:`choose_parallel` (and, in a run, a
timed trial of both) picks one from the measured cost of one evaluation."""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from .posterior import Posterior, SamplingError

__all__ = ["DaskPool", "dask_tasks", "choose_parallel", "DASK_MAP_LATENCY_S", "DASK_TASK_OVERHEAD_S",
           "DASK_MIN_GAIN"]

# Cost model of one Dask map, from benchmarks/bench_sampling.py on the 2-core
# development machine (LocalCluster of 2 single-thread worker processes):
# DaskPool.map of a free function takes 10.8 ms with one task and 17.6 ms with
# two, i.e. about 4 ms fixed plus 7 ms per task (one task per worker thread).
# Measured per emcee step with 38 walkers: a 5 ms likelihood takes 0.196 s (sleep)
# / 0.227 s (busy CPU) in one process and 0.139 s / 0.183 s on Dask (1.41x / 1.24x);
# a 2 s likelihood (8 walkers) 16.0 s vs 8.06 s (1.99x); a 23 us one 0.67 ms vs 46 ms.
DASK_MAP_LATENCY_S = 0.004
DASK_TASK_OVERHEAD_S = 0.007
# Dask must promise at least this speed-up before it is used (the model is rough,
# and a CPU-bound likelihood shares the cores with the main process).
DASK_MIN_GAIN = 1.2



# -- parallel evaluation ------------------------------------------------------------
def _apply_chunk(fn: Callable, items: list) -> list:
    return [fn(x) for x in items]


class DaskPool:
    """A ``map`` emcee accepts, on a dask.distributed Client.

    The function (emcee's wrapper around the Posterior, the same object every
    step) is scattered to all workers once, not shipped with every task; the
    points are split into :func:`dask_tasks` tasks (given the cost of one
    evaluation [s], else one per worker thread).
    """

    def __init__(self, client, cost_s: float | None = None):
        self.client = client
        self.cost_s = cost_s
        self._scattered: dict[int, tuple[Callable, Any]] = {}
        self._lock = threading.Lock()

    def nthreads(self) -> int:
        return int(sum(self.client.nthreads().values()))

    def _remote(self, fn: Callable):
        with self._lock:
            entry = self._scattered.get(id(fn))
            if entry is None or entry[0] is not fn:
                entry = (fn, self.client.scatter(fn, broadcast=True, hash=False))
                self._scattered[id(fn)] = entry
            return entry[1]

    def map(self, fn: Callable, iterable) -> list:
        items = list(iterable)
        if not items:
            return []
        remote = self._remote(fn)
        nchunks = dask_tasks(len(items), self.nthreads(), self.cost_s)
        bounds = np.linspace(0, len(items), nchunks + 1).astype(int)
        chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        futures = self.client.map(_apply_chunk, [remote] * len(chunks), chunks, pure=False)
        return [r for chunk in self.client.gather(futures) for r in chunk]


def dask_tasks(n: int, nthreads: int, cost_s: float | None) -> int:
    """How many tasks to split n evaluations into: the k <= min(n, nthreads) minimising
    k * DASK_TASK_OVERHEAD_S + ceil(n / k) * cost (all threads when the cost is unknown)."""
    kmax = max(1, min(n, nthreads))
    if cost_s is None:
        return kmax
    return min(range(1, kmax + 1), key=lambda k: k * DASK_TASK_OVERHEAD_S + math.ceil(n / k) * cost_s)


def choose_parallel(cost_s: float, n_half: int, nthreads: int | None) -> tuple[str, str]:
    """('vectorize'|'dask', why) from the cost of one evaluation [s].

    One emcee step evaluates two half-ensembles of ``n_half`` walkers.  In one
    process a half-step takes n_half*cost; on Dask it takes the map latency plus
    k task overheads plus ceil(n_half/k)*cost for the best k (:func:`dask_tasks`).
    ``nthreads`` None means the cluster is not started yet: only the in-process
    time is known, and a cluster is worth starting only when that time clearly
    exceeds the smallest Dask round trip.
    """
    serial = n_half * cost_s
    if nthreads is None:
        floor = DASK_MAP_LATENCY_S + 2 * DASK_TASK_OVERHEAD_S
        if serial < DASK_MIN_GAIN * floor:
            return "vectorize", (f"a half-ensemble takes {serial * 1e3:.3g} ms in one process, below a Dask "
                                 f"round trip (~{floor * 1e3:.3g} ms)")
        return "dask", f"a half-ensemble takes {serial * 1e3:.3g} ms in one process"
    k = dask_tasks(n_half, nthreads, cost_s)
    dask = DASK_MAP_LATENCY_S + k * DASK_TASK_OVERHEAD_S + math.ceil(n_half / k) * cost_s
    why = (f"one evaluation {cost_s * 1e3:.3g} ms, {n_half} walkers per half-step: {serial * 1e3:.3g} ms in one "
           f"process vs about {dask * 1e3:.3g} ms in {k} tasks on {nthreads} Dask threads")
    return ("dask" if serial > DASK_MIN_GAIN * dask else "vectorize"), why




def _measure_cost(posterior: Posterior, points: np.ndarray) -> float:
    """Median wall time [s] of one posterior evaluation at the given points (one process),
    after one untimed evaluation: the first call loads emulators and compiles kernels, and
    timed in it reports a ~2 ms likelihood as ~90 ms."""
    posterior.evaluate(points[0])
    times = []
    for theta in points:
        t0 = time.perf_counter()
        posterior.evaluate(theta)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# An in-run trial of both modes is skipped when it would cost more than this [s] ...
_TRIAL_MAX_S = 60.0
# ... or when the cost model predicts at least this speed-up from Dask.
_TRIAL_SKIP_GAIN = 3.0


def _time_min(fn, repeat: int = 2) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _decide_parallel(posterior: Posterior, parallel: str, cost: float, n_half: int, client, probe: np.ndarray,
                     log_: logging.Logger) -> tuple[str, str, DaskPool | None]:
    """(mode, reason, pool).  ``auto``: the cost model decides whether a cluster is worth
    starting; then, unless the model is clear or a trial too costly, one half-ensemble is
    evaluated both ways (twice each, best kept) and the faster mode wins (Dask by >= 10%)."""
    if parallel in ("vectorize", "none"):
        return parallel, "set in the workflow", None
    if parallel == "auto":
        mode, reason = choose_parallel(cost, n_half, None)
        if mode == "vectorize":
            return mode, f"{reason} (one evaluation {cost * 1e3:.3g} ms)", None
    if client is None:
        if parallel == "dask":
            raise SamplingError("parallel: dask needs a Dask cluster, and none is configured")
        return "vectorize", "no Dask cluster configured", None
    try:
        pool = DaskPool(client(), cost)
    except Exception as exc:  # noqa: BLE001 - any failure to start a cluster
        if parallel == "dask":
            raise
        log_.warning("could not start the Dask cluster (%s: %s); evaluating in this process",
                     type(exc).__name__, exc)
        return "vectorize", f"Dask cluster unavailable ({type(exc).__name__})", None
    nthreads = pool.nthreads()
    log_.info("Dask cluster with %d worker threads", nthreads)
    if parallel == "dask":
        return "dask", f"set in the workflow ({nthreads} Dask threads)", pool
    mode, reason = choose_parallel(cost, n_half, nthreads)
    k = dask_tasks(n_half, nthreads, cost)
    predicted = n_half * cost / (DASK_MAP_LATENCY_S + k * DASK_TASK_OVERHEAD_S + math.ceil(n_half / k) * cost)
    trial_cost = 2 * n_half * cost * (1 + 1 / max(k, 1)) + DASK_MAP_LATENCY_S
    if predicted >= _TRIAL_SKIP_GAIN or trial_cost > _TRIAL_MAX_S or nthreads < 2:
        return mode, reason, (pool if mode == "dask" else None)
    points = np.resize(probe, (n_half, probe.shape[1]))
    pool.map(posterior, list(points[:1]))          # ships the posterior to the workers
    t_here = _time_min(lambda: posterior.many(points))
    t_dask = _time_min(lambda: pool.map(posterior, list(points)))
    mode = "dask" if t_here > 1.1 * t_dask else "vectorize"
    reason = (f"trial with {n_half} walkers: {t_here * 1e3:.4g} ms in this process, {t_dask * 1e3:.4g} ms on "
              f"{nthreads} Dask threads ({k} tasks); one evaluation {cost * 1e3:.3g} ms")
    return mode, reason, (pool if mode == "dask" else None)

