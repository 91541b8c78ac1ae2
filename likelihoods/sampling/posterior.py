"""The posterior emcee samples: sampled, fixed and derived parameters, one theory call per
point shared by all likelihoods, each likelihood's ln L and the derived parameters as blobs."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..base import LikelihoodError
from ..priors import Prior, PriorSet

__all__ = ["SampledParam", "DerivedParam", "Posterior", "SamplingError", "DERIVED_FORMULAS"]

log = logging.getLogger("cosmopipe.sampling")

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

