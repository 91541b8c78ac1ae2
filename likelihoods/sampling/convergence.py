"""Convergence of the chains: autocorrelation length and stability, Gelman-Rubin R-1."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import emcee
import numpy as np
from scipy.linalg import solve_triangular

__all__ = ["Convergence", "ConvergenceReport", "autocorr_times", "pooled_tau", "gelman_rubin", "check_convergence"]


@dataclass(frozen=True)
class Convergence:
    tau_factor: float = 50.0    # chain length >= tau_factor * tau for every parameter
    tau_rtol: float = 0.01      # tau changed less than this (relative) since the previous check
    rminus1: float = 0.01       # Gelman-Rubin R-1 across chains



def autocorr_times(chain: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time [steps] per parameter of one ensemble chain (nsteps, nwalkers, ndim)."""
    return emcee.autocorr.integrated_time(chain, c=5, tol=0, quiet=True)


def pooled_tau(chains: Sequence[np.ndarray]) -> np.ndarray:
    """tau [steps] per parameter of equally long ensemble chains, each (nsteps, nwalkers, ndim),
    from the autocorrelation function averaged over the walkers of all of them.

    The chains sample one posterior, so their walkers are one larger ensemble for this
    estimate: the maximum of per-chain estimates is biased high and noisy.  In the EDE
    workflow (4 chains of 40 walkers, checks 500 steps apart, 60-85 tau) the per-chain
    maximum's largest change between checks kept scattering by 2.4-4 %, so a 2 % stability
    test failed on noise for 4000 steps past 50 tau; the pooled estimate moved by 1-2 %.
    Chains that disagree are caught by Gelman-Rubin, not by tau."""
    return autocorr_times(np.concatenate(list(chains), axis=1))


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
    tau = pooled_tau(chains)
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
    return pooled_tau([c[:steps] for c in chains])
