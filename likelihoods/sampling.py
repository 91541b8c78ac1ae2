"""Ensemble MCMC with emcee: checkpointed chains, convergence tests, parallel evaluation, GetDist output.

A run is ``chains`` independent emcee ensembles (the affine-invariant stretch
move, or differential evolution with ``moves: de``), each checkpointed step by
step to its own HDF5 file in emcee's ``HDFBackend`` layout
(``<out>/chain_<i>.h5``, readable with ``emcee.backends.HDFBackend``), so a
killed run continues with ``resume`` and loses no stored step; a resumed run repeats exactly the random numbers
the uninterrupted run would have drawn.

Convergence (checked every ``check_every`` steps):

* autocorrelation: for every parameter the chain is at least
  ``tau_factor`` integrated autocorrelation times tau long (tau from
  emcee's walker-averaged estimator, the largest over the chains), and every
  tau changed by less than ``tau_rtol`` (relative) since the previous check;
* Gelman-Rubin across the chains after discarding 2 tau of burn-in: R-1 is the
  largest eigenvalue of W^-1 B (B the covariance of the chain means, W the
  mean within-chain covariance), which bounds the per-parameter ratios; it must
  be below ``rminus1``.  With one chain this test cannot be made and is skipped
  (the summary says so).

The run stops on convergence or when every chain has ``max_steps`` steps,
and says which.  Derived parameters and each likelihood's ln L travel as
emcee blobs.  The likelihood is evaluated either in this process (emcee's
``vectorize``: one call per half-ensemble) or on a Dask cluster through
:class:`DaskPool`, a ``map`` over ``client.map``/``client.gather``;
:func:`choose_parallel` picks one from the measured cost of one evaluation.
``chains`` runs each chain, vectorised, as one Dask task from one convergence
check to the next (:func:`advance_chain_file`: the chain file carries the
walkers, blobs and random state, so the steps are those of an in-process run):
no per-step round trip, so it pays for likelihoods of a few milliseconds that
are too cheap for ``dask`` but leave the other cores idle in one process.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import emcee
import h5py
import numpy as np
from scipy.linalg import solve_triangular

from cosmopipe.integrity import CorruptFileError, attrs_digest, reading, row_checksums, text, warn_unverified

from .base import LikelihoodError
from .priors import Prior, PriorSet

__all__ = [
    "SampledParam", "DerivedParam", "Convergence", "dask_tasks", "SamplerSettings", "Posterior", "DaskPool",
    "ChainBackend", "ConvergenceReport", "SamplingError", "check_convergence", "autocorr_times",
    "gelman_rubin", "choose_parallel", "run_chains", "ChainRun", "write_getdist", "PARALLEL_MODES", "MOVES",
    "emcee_moves", "advance_chain_file",
    "DERIVED_FORMULAS", "read_chain",
]

log = logging.getLogger("cosmopipe.sampling")

PARALLEL_MODES = ("auto", "vectorize", "dask", "chains", "none")
MOVES = ("stretch", "de")
# A resumed run waits this long [s] for a worker of a killed run to finish its chain segment.
CHAIN_WRITER_TIMEOUT_S = 600.0


def emcee_moves(name: str):
    """emcee moves by name: 'stretch' (affine-invariant, a = 2) or 'de' (80 %
    differential evolution, 20 % DE snooker: ter Braak 2006 / ter Braak & Vrugt 2008),
    which decorrelates faster in ~20 correlated dimensions."""
    if name == "stretch":
        return emcee.moves.StretchMove()
    if name == "de":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    raise ValueError(f"moves must be one of {', '.join(MOVES)}, got {name!r}")

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

# Derived parameters computed from others when no theory or likelihood gives them.
DERIVED_FORMULAS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, float]], float]]] = {
    "S8": (("sigma8", "Omega_m"), lambda v: v["sigma8"] * math.sqrt(v["Omega_m"] / 0.3)),
    "H0": (("h",), lambda v: 100.0 * v["h"]),
}
_THEORY_FIELDS = ("sigma8", "S8", "H0", "rdrag", "theta_star")


class SamplingError(RuntimeError):
    """The run cannot go on (bad likelihood output, unusable chain files); says why."""


# -- parameters and the posterior ------------------------------------------------
@dataclass(frozen=True)
class SampledParam:
    """A sampled parameter: prior, start point ``ref`` and initial scatter ``proposal``
    (both in the parameter's units), and its LaTeX label (no dollars)."""

    name: str
    prior: Prior
    ref: float
    proposal: float
    latex: str = ""


@dataclass(frozen=True)
class DerivedParam:
    name: str
    latex: str = ""


class Posterior:
    """ln posterior(theta) = ln prior + sum_i ln L_i, with blobs [ln L_1..ln L_k, derived...].

    ``theory`` is called once per point (``params -> TheoryResult``) and its result
    shared by all likelihoods.  A ValueError from the theory or a likelihood (an
    unphysical point, e.g. no room for cold dark matter) counts as zero likelihood;
    a LikelihoodError (bad input) and a NaN ln L are errors.  Picklable when its
    likelihoods are.
    """

    def __init__(self, sampled: Sequence[SampledParam], fixed: Mapping[str, float],
                 derived: Sequence[DerivedParam], likelihoods: Sequence[Any], theory: Callable):
        self.sampled = tuple(sampled)
        self.names = tuple(p.name for p in self.sampled)
        self.priors = PriorSet(self.names, [p.prior for p in self.sampled])
        self.fixed = dict(fixed)
        self.derived = tuple(derived)
        self.likelihoods = tuple(likelihoods)
        self.theory = theory
        self.blob_names = tuple(f"lnL__{lik.name}" for lik in self.likelihoods) + tuple(d.name for d in self.derived)

    @property
    def ndim(self) -> int:
        return len(self.names)

    def params(self, theta) -> dict[str, float]:
        out = dict(self.fixed)
        out.update(zip(self.names, (float(x) for x in theta)))
        return out

    def _derived_values(self, theory, params: Mapping[str, float]) -> list[float]:
        if not self.derived:
            return []
        values: dict[str, float] = dict(params)
        for name in _THEORY_FIELDS:
            value = getattr(theory, name, None)
            if value is not None:
                values[name] = float(value)
        values.update(getattr(theory, "derived", None) or {})
        for lik in self.likelihoods:
            extra = getattr(lik, "derived", None)
            if callable(extra):
                values.update(extra(theory, params))
        out = []
        for d in self.derived:
            if d.name in values:
                out.append(float(values[d.name]))
                continue
            needs, formula = DERIVED_FORMULAS.get(d.name, ((), None))
            missing = [n for n in needs if n not in values]
            if formula is None or missing:
                why = (f"it needs {', '.join(missing)}" if formula is not None
                       else f"no formula is known (formulas: {', '.join(DERIVED_FORMULAS)})")
                raise SamplingError(f"derived parameter {d.name}: neither the theory nor a likelihood provides it, "
                                    f"and {why}")
            out.append(float(formula(values)))
        return out

    def evaluate(self, theta, lnprior: float | None = None, reject: bool = True) -> tuple[float, np.ndarray]:
        """(ln posterior, blob) at one point; ``reject=False`` lets ValueErrors through (diagnostics)."""
        theta = np.asarray(theta, dtype=float)
        if lnprior is None:
            lnprior = self.priors.log_prior(theta)
        blob = np.full(len(self.blob_names), np.nan)
        if not np.isfinite(lnprior):
            return -np.inf, blob
        params = self.params(theta)
        try:
            theory = self.theory(params)
            lnls = [float(lik.loglike(theory, params)) for lik in self.likelihoods]
        except LikelihoodError as exc:
            # Bad input to a likelihood is a bug to report, not a point to reject.
            shown = ", ".join(f"{k}={v:.6g}" for k, v in params.items())
            raise SamplingError(f"{exc} (at {shown})") from exc
        except ValueError as exc:
            if not reject:
                raise
            _note_rejection(exc)
            return -np.inf, blob
        for lik, lnl in zip(self.likelihoods, lnls):
            if math.isnan(lnl) or lnl == math.inf:
                shown = ", ".join(f"{k}={v:.6g}" for k, v in params.items())
                raise SamplingError(f"likelihood {lik.name} returned ln L = {lnl} at {shown}")
        blob[:len(lnls)] = lnls
        lnl_total = sum(lnls)
        if np.isfinite(lnl_total):
            blob[len(lnls):] = self._derived_values(theory, params)
        return float(lnprior + lnl_total), blob

    def __call__(self, theta) -> tuple[float, np.ndarray]:
        return self.evaluate(theta)

    def many(self, thetas) -> list[tuple[float, np.ndarray]]:
        """All points of a (n, ndim) array in this process (emcee's vectorize mode)."""
        thetas = np.asarray(thetas, dtype=float)
        lnprior = self.priors.log_prior(thetas)
        return [self.evaluate(t, lp) for t, lp in zip(thetas, np.atleast_1d(lnprior))]

    def explain(self, theta) -> str:
        """Why the posterior is zero at theta (prior bound or the error raised)."""
        theta = np.asarray(theta, dtype=float)
        outside = [f"{n}={x:.6g} outside {p.prior.describe()}" for n, x, p in zip(self.names, theta, self.sampled)
                   if not p.prior.lower <= x <= p.prior.upper]
        if outside:
            return "; ".join(outside)
        try:
            lnp, _ = self.evaluate(theta, reject=False)
        except ValueError as exc:
            return str(exc)
        return f"ln posterior = {lnp}"


_rejections = {"count": 0}


def _note_rejection(exc: Exception) -> None:
    _rejections["count"] += 1
    if _rejections["count"] <= 3:
        log.debug("point rejected (zero likelihood): %s", exc)


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


# -- chain files ----------------------------------------------------------------------
# Chain integrity: emcee appends one step at a time, so instead of one digest per array
# every step carries its own (the first 8 bytes of a sha256 over that step's coords,
# log_prob and blobs), and the few values rewritten at each step (iteration, accepted,
# random state, shape) carry one digest, rewritten with them.
_STEP_SUMS = "cosmopipe_step_sha256"
_STATE_DIGEST = "cosmopipe_state_sha256"
_CHAIN_HINT = "move it away (or set sample.sampler.restart: true) and run the chain again"


def _state_digest(nwalkers: int, ndim: int, has_blobs: bool, iteration: int, accepted: np.ndarray,
                  random_state: Sequence | None) -> str:
    values = {"nwalkers": int(nwalkers), "ndim": int(ndim), "has_blobs": bool(has_blobs),
              "iteration": int(iteration), "accepted": np.ascontiguousarray(accepted, dtype="<f8")}
    for i, v in enumerate(random_state or ()):
        values[f"random_state_{i}"] = v.decode() if isinstance(v, bytes) else v
    return attrs_digest(values)


class ChainBackend(emcee.backends.HDFBackend):
    """emcee's HDF5 layout, written without HDF5 file locks (a reader, e.g. a plot of a
    running chain, cannot make the writer fail; concurrent runs on one chain directory are
    excluded by :func:`_lock_dir` instead), with checksums.

    Inside :meth:`writing` the file stays open and is flushed after every step, which
    costs a fraction of emcee's open-write-close per step and is as safe against a kill:
    either way what a completed step wrote has reached the operating system.

    Integrity: ``mcmc/cosmopipe_step_sha256`` (uint64 per step) checks each step's coords,
    log_prob and blobs; the attr ``cosmopipe_state_sha256`` checks iteration, accepted,
    random state and shape.  Every read (chains, log_prob, blobs, last sample, iteration)
    verifies what it returns and raises :class:`cosmopipe.integrity.CorruptFileError` naming
    the file; chains written before (no checksums) are read with a warning.
    """

    _handle = None
    _datasets = None

    def open(self, mode="r"):
        if self._handle is not None:
            return contextlib.nullcontext(self._handle)
        if self.read_only and mode != "r":
            raise RuntimeError("chain file opened read-only")
        f = h5py.File(self.filename, mode, locking=False)
        if not self.dtype_set and self.name in f and "chain" in f[self.name]:
            self.dtype = f[self.name]["chain"].dtype
            self.dtype_set = True
        return f

    @contextlib.contextmanager
    def writing(self):
        """Keep the file open while a block of steps runs."""
        self._handle = h5py.File(self.filename, "a", locking=False)
        self._datasets = None
        try:
            yield self
        finally:
            handle, self._handle, self._datasets = self._handle, None, None
            handle.close()

    # -- writing ------------------------------------------------------------------------
    def reset(self, nwalkers, ndim):
        super().reset(nwalkers, ndim)
        with self.open("a") as f:
            g = f[self.name]
            g.attrs["version"] = text(g.attrs["version"])   # fixed-length: see sims.integrity.text
            g.create_dataset(_STEP_SUMS, (0,), maxshape=(None,), dtype="<u8")
            g.attrs[_STATE_DIGEST] = text(_state_digest(nwalkers, ndim, False, 0, np.zeros(nwalkers), None))

    def grow(self, ngrow, blobs):
        # A chain is verified before steps are appended to it; emcee may set has_blobs
        # here, so the state digest is renewed (a run stopped before its first step keeps
        # a consistent file).
        with self._group() as g:
            state = self._checked_state(g) if _STEP_SUMS in g else None
        super().grow(ngrow, blobs)
        self._datasets = None
        if state is not None:
            with self.open("a") as f:
                g = f[self.name]
                g[_STEP_SUMS].resize(g["chain"].shape[0], axis=0)
                state["has_blobs"] = bool(g.attrs["has_blobs"])
                g.attrs.modify(_STATE_DIGEST, text(_state_digest(**state)))

    def save_step(self, state, accepted):
        # emcee's datasets, attributes and order (iteration counter and state digest last,
        # so a step interrupted half-written is not counted), without its re-opens for
        # checks; attributes are modified in place rather than deleted and re-created.
        with self.open("a") as f:
            g = f[self.name]
            ds = self._datasets if self._handle is not None else None
            if ds is None:
                ds = {k: g[k] for k in ("chain", "log_prob", "blobs", "accepted", _STEP_SUMS) if k in g}
                ds["dtypes"] = {k: ds[k].dtype.base for k in ("chain", "log_prob", "blobs") if k in ds}
                if self._handle is not None:
                    self._datasets = ds
            iteration = g.attrs["iteration"]
            nwalkers, ndim = ds["chain"].shape[1:]
            if state.coords.shape != (nwalkers, ndim):
                raise ValueError(f"invalid coordinate dimensions {state.coords.shape}")
            rows = [np.asarray(state.coords, dtype=ds["dtypes"]["chain"]),
                    np.asarray(state.log_prob, dtype=ds["dtypes"]["log_prob"])]
            if state.blobs is not None:
                rows.append(np.asarray(state.blobs, dtype=ds["dtypes"]["blobs"]))
            ds["chain"][iteration, :, :] = rows[0]
            ds["log_prob"][iteration, :] = rows[1]
            if state.blobs is not None:
                ds["blobs"][iteration, :] = rows[2]
            if _STEP_SUMS in ds:
                ds[_STEP_SUMS][iteration] = row_checksums(*(r[None] for r in rows))[0]
            total = ds["accepted"][:] + accepted
            ds["accepted"][:] = total
            random_state = [text(v) if isinstance(v, str) else v for v in state.random_state]
            for i, v in enumerate(random_state):
                g.attrs.modify(f"random_state_{i}", v)
            g.attrs.modify("iteration", iteration + 1)
            if _STEP_SUMS in ds:
                g.attrs.modify(_STATE_DIGEST, text(_state_digest(nwalkers, ndim, "blobs" in ds, iteration + 1,
                                                                 total, random_state)))
            if self._handle is not None:
                f.flush()

    # -- reading (verified) ---------------------------------------------------------------
    @contextlib.contextmanager
    def _group(self):
        """The chain's group, with any damage turned into CorruptFileError naming the file."""
        with reading(self.filename, "chain content"):
            try:
                opened = self.open()
            except OSError as exc:
                raise CorruptFileError(self.filename, f"not a readable chain file ({exc}); {_CHAIN_HINT}") from None
            with opened as f:
                if self.name not in f:
                    raise CorruptFileError(self.filename, f"no group {self.name!r}: not a chain file; {_CHAIN_HINT}")
                yield f[self.name]

    def _checked_state(self, g) -> dict:
        """nwalkers, ndim, has_blobs, iteration, accepted, random_state, checked against the
        state digest and against the sizes of the datasets."""
        a = g.attrs
        rs = [a[k] for k in sorted(a) if k.startswith("random_state_")]
        state = {"nwalkers": int(a["nwalkers"]), "ndim": int(a["ndim"]), "has_blobs": bool(a["has_blobs"]),
                 "iteration": int(a["iteration"]), "accepted": g["accepted"][()],
                 "random_state": [v.decode() if isinstance(v, bytes) else v for v in rs] or None}
        if _STEP_SUMS in g:
            stored = a.get(_STATE_DIGEST, b"")
            stored = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else str(stored)
            computed = _state_digest(**state)
            if stored != computed:
                raise CorruptFileError(self.filename, f"the chain state (iteration, acceptance, random state) fails "
                                                      f"its sha256 check (stored {stored[:12]}…, computed "
                                                      f"{computed[:12]}…): the file is damaged; {_CHAIN_HINT}")
        else:
            warn_unverified("chain", self.filename)
        n, shape = state["iteration"], (state["nwalkers"], state["ndim"])
        sizes = {"chain": (g["chain"].shape[0], g["chain"].shape[1:] == shape),
                 "log_prob": (g["log_prob"].shape[0], g["log_prob"].shape[1:] == shape[:1]),
                 "accepted": (n, g["accepted"].shape == shape[:1])}
        if state["has_blobs"]:
            sizes["blobs"] = (g["blobs"].shape[0], g["blobs"].shape[1:] == shape[:1])
        if _STEP_SUMS in g:
            sizes[_STEP_SUMS] = (g[_STEP_SUMS].shape[0], True)
        for name, (rows, shape_ok) in sizes.items():
            if n < 0 or rows < n or not shape_ok:
                raise CorruptFileError(self.filename, f"iteration {n} with {state['nwalkers']} walkers x "
                                                      f"{state['ndim']} parameters does not fit dataset {name!r} "
                                                      f"of shape {g[name].shape}: the file is damaged; {_CHAIN_HINT}")
        return state

    def read_steps(self, discard: int = 0, thin: int = 1) -> tuple[dict[str, np.ndarray], dict]:
        """({'chain': (n, nwalkers, ndim), 'log_prob': (n, nwalkers), 'blobs': ... if any}, state)
        of the steps discard + thin - 1, ..., iteration - 1 (every thin-th), each step checked."""
        with self._group() as g:
            state = self._checked_state(g)
            sel = slice(discard + thin - 1, state["iteration"], thin)
            names = ("chain", "log_prob", "blobs") if state["has_blobs"] else ("chain", "log_prob")
            rows = {name: g[name][sel] for name in names}
            if _STEP_SUMS in g:
                stored = g[_STEP_SUMS][sel]
                computed = row_checksums(*rows.values())
                bad = np.flatnonzero(stored != computed)
                if bad.size:
                    step = range(state["iteration"])[sel][bad[0]]
                    raise CorruptFileError(self.filename, f"step {step} fails its sha256 check (stored "
                                                          f"{int(stored[bad[0]]):016x}, computed "
                                                          f"{int(computed[bad[0]]):016x}; {bad.size} damaged "
                                                          f"step(s)): the file is damaged; {_CHAIN_HINT}")
        return rows, state

    def get_value(self, name, flat=False, thin=1, discard=0):
        rows, state = self.read_steps(discard, thin)
        if state["iteration"] <= 0:
            raise AttributeError("You must run the sampler with 'store == True' before accessing the results")
        if name == "blobs" and not state["has_blobs"]:
            return None
        v = rows[name]
        if flat:
            s = list(v.shape[1:])
            s[0] = np.prod(v.shape[:2])
            return v.reshape(s)
        return v

    def _state(self) -> dict:
        with self._group() as g:
            return self._checked_state(g)

    @property
    def iteration(self):
        return self._state()["iteration"]

    @property
    def shape(self):
        state = self._state()
        return state["nwalkers"], state["ndim"]

    @property
    def accepted(self):
        return self._state()["accepted"]

    @property
    def random_state(self):
        return self._state()["random_state"]

    def has_blobs(self):
        return self._state()["has_blobs"]


def _lock_dir(out_dir: Path):
    """An exclusive lock on the chain directory (released by the kernel if the process dies)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = open(out_dir / ".sample.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise SamplingError(f"the chains in {out_dir} are being written by {owner}; wait for it or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {os.uname().nodename}")
    handle.flush()
    return handle


def _chain_lock(path: Path, timeout: float | None = None):
    """Exclusive lock on ``<chain>.lock``, held while a ``parallel: chains`` task writes the
    chain.  Waits for it (``timeout`` seconds at most; None: forever)."""
    handle = open(Path(path).with_suffix(".lock"), "a+")
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if timeout is not None and time.monotonic() - t0 >= timeout:
                handle.close()
                raise SamplingError(f"chain {path} is still being written by another process after {timeout:g} s "
                                    "(a worker of a killed run?); stop it or wait, then resume") from None
            time.sleep(0.2)


def _wait_for_chain_writers(paths: Sequence[Path], timeout: float, log_: logging.Logger) -> None:
    """Wait until no process writes any of these chains: a worker of a killed driver may
    finish its segment after the driver died; its steps are complete and kept."""
    for path in paths:
        try:
            _chain_lock(path, timeout=0.0).close()
        except SamplingError:
            log_.info("waiting for another process to finish writing %s", path)
            _chain_lock(path, timeout=timeout).close()


# -- settings -------------------------------------------------------------------------
@dataclass(frozen=True)
class Convergence:
    tau_factor: float = 50.0    # chain length >= tau_factor * tau for every parameter
    tau_rtol: float = 0.01      # tau changed less than this (relative) since the previous check
    rminus1: float = 0.01       # Gelman-Rubin R-1 across chains


@dataclass(frozen=True)
class SamplerSettings:
    walkers: int | None = None      # default 2*ndim + 2, rounded up to even
    seed: int = 1
    chains: int = 4
    max_steps: int = 20000          # budget per chain [steps]
    check_every: int = 200          # [steps]
    convergence: Convergence = field(default_factory=Convergence)
    parallel: str = "auto"
    moves: str = "stretch"
    restart: bool = False           # delete existing chains instead of refusing them

    def nwalkers(self, ndim: int) -> int:
        if self.walkers is not None:
            return self.walkers
        n = 2 * ndim + 2
        return n + (n % 2)


# -- convergence ------------------------------------------------------------------------
def autocorr_times(chain: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time [steps] per parameter of one ensemble chain (nsteps, nwalkers, ndim)."""
    return emcee.autocorr.integrated_time(chain, c=5, tol=0, quiet=True)


def gelman_rubin(samples: Sequence[np.ndarray]) -> tuple[float, np.ndarray]:
    """(R-1 multivariate, R-1 per parameter) of several chains, each (n_i, ndim).

    Per parameter: var(chain means) / mean(within-chain variance); multivariate:
    the largest eigenvalue of the same ratio of covariance matrices.
    """
    if len(samples) < 2:
        raise ValueError("Gelman-Rubin needs at least two chains")
    means = np.array([s.mean(axis=0) for s in samples])
    within = np.mean([np.atleast_2d(np.cov(s, rowvar=False)) for s in samples], axis=0)
    between = np.atleast_2d(np.cov(means, rowvar=False))
    per_param = np.diag(between) / np.diag(within)
    chol = np.linalg.cholesky(within)
    m = solve_triangular(chol, solve_triangular(chol, between, lower=True).T, lower=True)
    return float(np.max(np.linalg.eigvalsh(0.5 * (m + m.T)))), per_param


@dataclass(frozen=True)
class ConvergenceReport:
    """The state of the convergence tests at one check (tau in steps)."""

    steps: int
    tau: tuple[float, ...]
    tau_change: float               # max relative change since the previous check (inf at first)
    tau_ok: bool                    # steps >= tau_factor * tau for every parameter
    tau_stable: bool
    rminus1: float | None           # None with one chain
    rminus1_params: tuple[float, ...] | None
    rminus1_ok: bool
    burn: int                       # steps discarded as burn-in (2 tau)

    @property
    def converged(self) -> bool:
        return self.tau_ok and self.tau_stable and self.rminus1_ok

    def line(self) -> str:
        tau_max = max(self.tau) if self.tau else float("nan")
        gr = "n/a" if self.rminus1 is None else f"{self.rminus1:.3g}"
        change = "n/a" if not math.isfinite(self.tau_change) else f"{self.tau_change:.2%}"
        return (f"{self.steps} steps, tau_max={tau_max:.3g} ({self.steps / tau_max if tau_max > 0 else 0:.3g} tau), "
                f"tau change {change}, R-1={gr}")


def check_convergence(chains: Sequence[np.ndarray], conv: Convergence,
                      previous_tau: np.ndarray | None) -> ConvergenceReport:
    """Convergence tests on equally long chains, each (nsteps, nwalkers, ndim)."""
    steps = min(c.shape[0] for c in chains)
    chains = [c[:steps] for c in chains]
    tau = np.max([autocorr_times(c) for c in chains], axis=0)
    finite = bool(np.all(np.isfinite(tau)) and np.all(tau > 0))
    tau_ok = finite and bool(np.all(steps >= conv.tau_factor * tau))
    if previous_tau is None or not finite:
        change = math.inf
    else:
        change = float(np.max(np.abs(tau - previous_tau) / tau))
    burn = int(math.ceil(2 * np.max(tau))) if finite else steps // 2
    burn = min(burn, steps // 2)
    if len(chains) > 1:
        flat = [c[burn:].reshape(-1, c.shape[-1]) for c in chains]
        try:
            r_multi, r_params = gelman_rubin(flat)
        except np.linalg.LinAlgError:
            r_multi, r_params = math.inf, np.full(chains[0].shape[-1], math.inf)
        rminus1, rminus1_params, r_ok = r_multi, tuple(map(float, r_params)), r_multi < conv.rminus1
    else:
        rminus1, rminus1_params, r_ok = None, None, True
    return ConvergenceReport(steps=steps, tau=tuple(map(float, tau)), tau_change=change, tau_ok=tau_ok,
                             tau_stable=change < conv.tau_rtol, rminus1=rminus1, rminus1_params=rminus1_params,
                             rminus1_ok=r_ok, burn=burn)


# -- the run -------------------------------------------------------------------------------
@dataclass
class _Chain:
    index: int
    path: Path
    backend: ChainBackend
    sampler: emcee.EnsembleSampler | None = None
    state: Any = None
    steps: int = 0


@dataclass(frozen=True)
class ChainRun:
    """What :func:`run_chains` did."""

    status: str                     # 'converged' or 'budget'
    report: ConvergenceReport
    chain_files: tuple[Path, ...]
    nwalkers: int
    parallel: str
    parallel_reason: str
    eval_cost_s: float | None       # measured cost of one posterior evaluation
    wall_s: float
    steps_this_run: int
    resumed_from: tuple[int, ...]   # steps each chain had before this run
    acceptance: tuple[float, ...]


def _emcee_blobs(blobs: Sequence[np.ndarray]) -> np.ndarray:
    """Blobs as emcee stores them: (nwalkers, nblob), or (nwalkers,) for a single blob."""
    arr = np.array(blobs, dtype=float)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def _fingerprint_diff(stored: dict, current: dict) -> list[str]:
    return sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))


def _open_chains(out_dir: Path, n: int, nwalkers: int, ndim: int, fingerprint: dict, resume: bool,
                 restart: bool, log_: logging.Logger) -> list[_Chain]:
    paths = [out_dir / f"chain_{i + 1}.h5" for i in range(n)]
    existing = sorted(out_dir.glob("chain_*.h5"))
    if existing and not resume:
        if not restart:
            raise SamplingError(
                f"{len(existing)} chain file(s) already exist in {out_dir}; continue them with --resume, "
                "or set sample.sampler.restart: true to delete them and start afresh")
        for p in existing:
            p.unlink()
        (out_dir / _PROGRESS).unlink(missing_ok=True)
        log_.info("restart: deleted %d existing chain file(s) in %s", len(existing), out_dir)
    chains = []
    text = json.dumps(fingerprint, sort_keys=True)
    for i, path in enumerate(paths):
        backend = ChainBackend(str(path))
        if path.exists():
            try:
                with h5py.File(path, "r", locking=False) as f:
                    stored = json.loads(f.attrs["cosmopipe_config"])
                    has_run = "mcmc" in f and "iteration" in f["mcmc"].attrs
            except (OSError, KeyError, ValueError) as exc:
                raise SamplingError(f"chain file {path} cannot be read ({exc}); it was not written by this "
                                    "sampler or is damaged: move it away or set sample.sampler.restart: true") from None
            diff = _fingerprint_diff(stored, fingerprint)
            if diff:
                raise SamplingError(
                    f"chain file {path} was made with a different configuration (differs in: {', '.join(diff)}); "
                    "it cannot be continued: set sample.sampler.restart: true or use another sample.out")
            if not has_run:
                path.unlink()
        if not path.exists():
            with h5py.File(path, "w", locking=False) as f:
                f.attrs["cosmopipe_config"] = text
            backend.reset(nwalkers, ndim)
        chains.append(_Chain(i, path, backend, steps=int(backend.iteration)))
    return chains


def _start_points(posterior: Posterior, nwalkers: int, rng: np.random.Generator) -> np.ndarray:
    """Walker starts: ref + proposal * N(0, 1), redrawn until inside the prior."""
    ref = np.array([p.ref for p in posterior.sampled])
    scale = np.array([p.proposal for p in posterior.sampled])
    p0 = ref + scale * rng.standard_normal((nwalkers, posterior.ndim))
    for _ in range(1000):
        bad = ~np.isfinite(posterior.priors.log_prior(p0))
        if not bad.any():
            return p0
        p0[bad] = ref + scale * rng.standard_normal((int(bad.sum()), posterior.ndim))
    raise SamplingError("cannot place walkers inside the prior around ref with the given proposal widths: "
                        + posterior.explain(ref))


def _initial_state(posterior: Posterior, chain: _Chain, nwalkers: int, seed: int, mapper: Callable):
    rng = np.random.default_rng([seed, chain.index])
    p0 = _start_points(posterior, nwalkers, rng)
    results = mapper(p0)
    for _ in range(50):
        lnp = np.array([r[0] for r in results])
        bad = np.flatnonzero(~np.isfinite(lnp))
        if bad.size == 0:
            break
        p0[bad] = _start_points(posterior, bad.size, rng)
        for i, r in zip(bad, mapper(p0[bad])):
            results[i] = r
    else:
        raise SamplingError("no finite posterior around the start point after 50 redraws: "
                            + posterior.explain(p0[bad[0]]))
    random_state = np.random.RandomState(np.random.SeedSequence([seed, chain.index, 1]).generate_state(4))
    return emcee.State(p0, log_prob=np.array([r[0] for r in results]),
                       blobs=_emcee_blobs([r[1] for r in results]), random_state=random_state.get_state())


_PROGRESS = "progress.json"


def _save_progress(out_dir: Path, report: ConvergenceReport) -> None:
    """The latest check, so that a resumed run compares its first tau with the last one."""
    _atomic_text(out_dir / _PROGRESS, json.dumps({"steps": report.steps, "tau": report.tau,
                                                   "rminus1": report.rminus1}, indent=1))


def _previous_check(steps: int, check_every: int) -> int:
    """The step count of the check before the one at ``steps`` (0: none).

    Checks fall on multiples of ``check_every`` (and at max_steps), so this is
    fixed by the schedule, not by where a killed run happened to stop.
    """
    return ((steps - 1) // check_every) * check_every


def _tau_at(chains: Sequence[np.ndarray], steps: int) -> np.ndarray | None:
    """tau [steps] of the check at ``steps``, recomputed from the stored chains.

    A resumed run must compare its first check with the check before it, as an
    uninterrupted run does; the saved progress would be the same check again
    (change 0 %, a stability test passed that was never passed).
    """
    if steps <= 0:
        return None
    return np.max([autocorr_times(c[:steps]) for c in chains], axis=0)


def _measure_cost(posterior: Posterior, points: np.ndarray) -> float:
    """Median wall time [s] of one posterior evaluation at the given points (one process)."""
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


def advance_chain_file(posterior: Posterior, path: str, target: int, start=None, moves: str = "stretch") -> int:
    """Continue the chain in ``path`` to ``target`` steps, vectorised in this process
    (a Dask task of ``parallel: chains``), holding the chain's lock; ``start``: the
    initial emcee.State of a chain with no step yet.  Returns its step count."""
    with contextlib.closing(_chain_lock(path)):
        backend = ChainBackend(str(path))
        nwalkers, ndim = backend.shape
        sampler = emcee.EnsembleSampler(nwalkers, ndim, posterior.many, vectorize=True, backend=backend,
                                        moves=emcee_moves(moves))
        state = start if int(backend.iteration) == 0 else backend.get_last_sample()
        n = target - int(backend.iteration)
        if n > 0:
            with backend.writing():
                for state in sampler.sample(state, iterations=n, store=True):
                    pass
        return int(backend.iteration)


def run_chains(posterior: Posterior, settings: SamplerSettings, out_dir: Path, *, fingerprint: Mapping,
               resume: bool = False, progress: bool = True, client: Callable[[], Any] | None = None,
               log_: logging.Logger = log) -> ChainRun:
    """Run (or continue) the chains in ``out_dir`` until convergence or budget.

    ``client`` is a function returning a dask.distributed Client (called only if
    Dask is used); ``fingerprint`` describes the configuration and must match
    that of chains being resumed.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    ndim = posterior.ndim
    nwalkers = settings.nwalkers(ndim)
    if nwalkers < 2 * ndim:
        raise SamplingError(f"sample.sampler.walkers: {nwalkers} walkers are too few for {ndim} sampled "
                            f"parameters; use at least {2 * ndim}")
    fingerprint = dict(fingerprint, nwalkers=nwalkers, seed=settings.seed, ndim=ndim,
                       **({"moves": settings.moves} if settings.moves != "stretch" else {}),
                       params=list(posterior.names), blobs=list(posterior.blob_names))
    lock = _lock_dir(out_dir)
    try:
        _wait_for_chain_writers([out_dir / f"chain_{i + 1}.h5" for i in range(settings.chains)],
                                CHAIN_WRITER_TIMEOUT_S, log_)
        chains = _open_chains(out_dir, settings.chains, nwalkers, ndim, fingerprint, resume, settings.restart, log_)
        resumed_from = tuple(c.steps for c in chains)
        if any(resumed_from):
            log_.info("resuming chains at %s steps", ", ".join(map(str, resumed_from)))

        # Cost of one evaluation, from three start-ball points (or last positions).
        rng = np.random.default_rng([settings.seed, 999])
        probe = (_start_points(posterior, 3, rng) if not all(resumed_from)
                 else chains[0].backend.get_last_sample().coords[:3])
        try:
            cost = _measure_cost(posterior, probe)
        except TypeError as exc:
            # A theory provider's setup error (e.g. a parameter it needs is neither sampled nor fixed).
            raise SamplingError(f"the first posterior evaluation failed: {exc}") from exc
        chain_client = None
        if settings.parallel == "chains":
            if client is None:
                raise SamplingError("parallel: chains needs a Dask cluster, and none is configured")
            chain_client = client()
            nthreads = sum(chain_client.nthreads().values())
            mode, pool = "chains", None
            reason = (f"set in the workflow: {len(chains)} chain(s) as Dask tasks on {nthreads} worker threads "
                      f"(one evaluation {cost * 1e3:.3g} ms)")
            if settings.chains < 2:
                log_.warning("parallel: chains with a single chain uses one worker only")
            remote_posterior = chain_client.scatter(posterior, broadcast=True)
        else:
            mode, reason, pool = _decide_parallel(posterior, settings.parallel, cost, nwalkers // 2, client, probe,
                                                  log_)
        log_.info("parallel mode %s: %s", mode, reason)

        if mode == "dask":
            mapper = lambda pts: pool.map(posterior, list(pts))  # noqa: E731
        else:
            mapper = posterior.many
        for chain in chains:
            chain.sampler = emcee.EnsembleSampler(
                nwalkers, ndim, posterior if mode == "dask" else posterior.many,
                pool=pool, vectorize=(mode != "dask"), backend=chain.backend, moves=emcee_moves(settings.moves))
            if chain.steps == 0:
                chain.state = _initial_state(posterior, chain, nwalkers, settings.seed, mapper)
            else:
                chain.state = chain.backend.get_last_sample()

        report, status = None, None
        previous_tau = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=settings.max_steps * len(chains), initial=sum(c.steps for c in chains),
                       unit="step", desc="sampling", dynamic_ncols=True)
        bar_lock = threading.Lock()

        def advance(chain: _Chain, nsteps: int) -> None:
            with chain.backend.writing():
                for state in chain.sampler.sample(chain.state, iterations=nsteps, store=True):
                    chain.state = state
                    chain.steps += 1
                    if bar is not None:
                        with bar_lock:
                            bar.update(1)

        executor = ThreadPoolExecutor(len(chains)) if mode == "dask" and len(chains) > 1 else None
        try:
            while True:
                steps = min(c.steps for c in chains)
                if steps > 0 and (steps % settings.check_every == 0 or steps >= settings.max_steps):
                    # Chains may stand past `steps` after a kill: the check sees what an
                    # uninterrupted run saw at this point, no more.
                    stored = [c.backend.get_chain()[:steps] for c in chains]
                    if previous_tau is None:
                        previous_tau = _tau_at(stored, _previous_check(steps, settings.check_every))
                    report = check_convergence(stored, settings.convergence, previous_tau)
                    previous_tau = np.array(report.tau)
                    _save_progress(out_dir, report)
                    log_.info("convergence check: %s", report.line())
                    if bar is not None:
                        bar.set_postfix_str(f"tau={max(report.tau):.3g} R-1="
                                            + ("n/a" if report.rminus1 is None else f"{report.rminus1:.3g}"))
                    if report.converged:
                        status = "converged"
                        break
                    if steps >= settings.max_steps:
                        status = "budget"
                        break
                # Run every chain to the next check point (chains may stand at different steps after a kill).
                target = min(settings.max_steps, (steps // settings.check_every + 1) * settings.check_every)
                work = [(c, target - c.steps) for c in chains if c.steps < target]
                if chain_client is not None and work:
                    _advance_on_dask(chain_client, remote_posterior, work, target, bar, settings.moves)
                elif executor is not None:
                    for f in [executor.submit(advance, c, n) for c, n in work]:
                        f.result()
                else:
                    for c, n in work:
                        advance(c, n)
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        acceptance = tuple(float(np.mean(c.backend.accepted) / max(c.steps, 1)) for c in chains)
        steps_run = sum(c.steps for c in chains) - sum(resumed_from)
        wall = time.perf_counter() - t_start
        log_.info("sampling stopped: %s after %d steps per chain (%d steps in this run, %.1f s)",
                  "converged" if status == "converged" else "budget of max_steps used up without convergence",
                  report.steps, steps_run, wall)
        return ChainRun(status=status, report=report, chain_files=tuple(c.path for c in chains), nwalkers=nwalkers,
                        parallel=mode, parallel_reason=reason, eval_cost_s=cost, wall_s=wall,
                        steps_this_run=steps_run, resumed_from=resumed_from, acceptance=acceptance)
    finally:
        lock.close()


def _advance_on_dask(client, remote, work: list, target: int, bar, moves: str) -> None:
    """``parallel: chains``: every chain of ``work`` to ``target`` steps, one Dask task
    each; ``remote`` the posterior scattered to the workers.  The chain file is the
    state: the worker writes it, and it is re-read here."""
    from dask.distributed import as_completed

    futures = {client.submit(advance_chain_file, remote, str(c.path), target, c.state if c.steps == 0 else None,
                             moves, pure=False): c for c, _ in work}
    for future in as_completed(futures):
        c = futures[future]
        steps = future.result()
        if bar is not None:
            bar.update(steps - c.steps)
        c.steps = steps
        c.state = c.backend.get_last_sample()


# -- outputs ---------------------------------------------------------------------------------
def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_chain(path: Path, discard: int = 0, thin: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(samples (n, ndim), ln posterior (n,), blobs (n, nblob) or None) of one chain file, step-major."""
    # One verified read of all three (each step's checksum covers coords, ln p and blobs).
    rows, _ = ChainBackend(str(path), read_only=True).read_steps(discard, thin)
    samples = rows["chain"].reshape(-1, rows["chain"].shape[-1])
    lnp = rows["log_prob"].reshape(-1)
    blobs = rows.get("blobs")
    if blobs is not None:
        blobs = np.asarray(blobs, dtype=float).reshape(samples.shape[0], -1)
    return samples, lnp, blobs


def write_getdist(root: Path, posterior: Posterior, chain_files: Sequence[Path], discard: int, thin: int) -> list[Path]:
    """GetDist text chains ``<root>_<i>.txt`` (weight, -ln posterior, parameters, derived),
    ``<root>.paramnames`` (derived names end in '*') and ``<root>.ranges`` (prior bounds, N = none).

    Derived columns: each derived parameter and ``chi2__<likelihood>`` = -2 ln L.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    nlik = len(posterior.likelihoods)
    written = []
    for i, path in enumerate(chain_files):
        samples, lnp, blobs = read_chain(path, discard, thin)
        derived = blobs[:, nlik:] if blobs is not None else np.empty((len(samples), 0))
        chi2 = -2.0 * blobs[:, :nlik] if blobs is not None else np.empty((len(samples), 0))
        table = np.column_stack([np.ones(len(samples)), -lnp, samples, derived, chi2])
        target = root.parent / f"{root.name}_{i + 1}.txt"
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        np.savetxt(tmp, table, fmt="%.12e")
        os.replace(tmp, target)
        written.append(target)
    lines = [f"{p.name}\t{p.latex or p.name}" for p in posterior.sampled]
    lines += [f"{d.name}*\t{d.latex or d.name}" for d in posterior.derived]
    lines += [f"chi2__{lik.name}*\t\\chi^2_{{\\rm {lik.name.replace('_', '-')}}}" for lik in posterior.likelihoods]
    paramnames, ranges_file = root.parent / f"{root.name}.paramnames", root.parent / f"{root.name}.ranges"
    _atomic_text(paramnames, "\n".join(lines) + "\n")
    fmt = lambda x: repr(float(x)) if math.isfinite(x) else "N"  # noqa: E731
    ranges = [f"{p.name} {fmt(p.prior.lower)} {fmt(p.prior.upper)}" for p in posterior.sampled]
    _atomic_text(ranges_file, "\n".join(ranges) + "\n")
    return written + [paramnames, ranges_file]
