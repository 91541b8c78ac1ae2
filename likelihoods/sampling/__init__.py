"""Ensemble MCMC with emcee: checkpointed chains, convergence tests, parallel evaluation, GetDist output.

Split along emcee's own seams: :mod:`.posterior` (what is sampled), :mod:`.pool`
(where it is evaluated), :mod:`.backend` (chain files), :mod:`.convergence`,
:mod:`.run` (the loop) and :mod:`.getdist_output`.

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
from .backend import ChainBackend, read_chain, read_chain_samples
from .convergence import Convergence, ConvergenceReport, autocorr_times, check_convergence, gelman_rubin, pooled_tau
from .getdist_output import write_getdist
from .pool import DaskPool, choose_parallel, dask_tasks
from .posterior import DERIVED_FORMULAS, DerivedParam, Posterior, SampledParam, SamplingError
from .run import MOVES, PARALLEL_MODES, ChainRun, SamplerSettings, advance_chain_file, emcee_moves, run_chains

__all__ = [
    "SampledParam", "DerivedParam", "Convergence", "dask_tasks", "SamplerSettings", "Posterior", "DaskPool",
    "ChainBackend", "ConvergenceReport", "SamplingError", "check_convergence", "autocorr_times", "pooled_tau",
    "gelman_rubin", "choose_parallel", "run_chains", "ChainRun", "write_getdist", "PARALLEL_MODES", "MOVES",
    "emcee_moves", "advance_chain_file",
    "DERIVED_FORMULAS", "read_chain", "read_chain_samples",
]
