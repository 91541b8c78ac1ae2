"""The sampling loop: independent emcee ensembles run to convergence or budget, checkpointed
step by step, resumable to the identical chains (see the package docstring for the tests)."""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import emcee
import h5py
import numpy as np

from cosmopipe.provenance import describe_diff, fingerprint_diff

from .backend import ChainBackend, _atomic_text, _chain_lock, _lock_dir, _wait_for_chain_writers
from .convergence import Convergence, ConvergenceReport, _previous_check, _tau_at, check_convergence
from .pool import _decide_parallel, _measure_cost
from .posterior import Posterior, SamplingError

__all__ = ["SamplerSettings", "ChainRun", "run_chains", "advance_chain_file", "emcee_moves", "PARALLEL_MODES",
           "MOVES"]

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
            diff = fingerprint_diff(stored, json.loads(text))
            if diff:
                raise SamplingError(
                    f"chain file {path} was made with a different configuration (differs in: {describe_diff(diff)}); "
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

