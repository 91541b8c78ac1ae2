"""Priors of sampled parameters: flat on [min, max], or Gaussian, optionally truncated.

A workflow gives a prior as a mapping (units are those of the parameter)::

    prior: {min: 0.24, max: 0.40}                        # flat (dist: flat implied)
    prior: {dist: gaussian, mean: 0, sigma: 0.002}       # Gaussian, unbounded
    prior: {dist: gaussian, mean: 0.5, sigma: 0.3, min: 0}   # truncated Gaussian

Likelihoods announce default priors of their nuisance parameters in the
format of ``cosmopipe.likelihoods.base.Likelihood.parameters()``, e.g.
``{'prior': 'gaussian', 'mean': 1, 'sigma': 0.0025}``; :func:`prior_from_default`
reads those with the same checks.  All densities are normalised over their
support, so ln prior is comparable between runs with different priors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from cosmopipe.schema import ConfigError, Section, choice, number, positive_number

__all__ = ["Prior", "PriorSet", "parse_prior", "prior_from_default", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("flat", "gaussian")
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Prior:
    """One parameter's prior.

    dist      'flat' or 'gaussian'
    lower, upper  support (may be -inf/+inf for a Gaussian), in the parameter's units
    mean, sigma   Gaussian centre and width (None for flat)
    """

    dist: str
    lower: float = -math.inf
    upper: float = math.inf
    mean: float | None = None
    sigma: float | None = None

    def __post_init__(self):
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"prior dist must be one of {', '.join(DISTRIBUTIONS)}, got {self.dist!r}")
        if not self.lower < self.upper:
            raise ValueError(f"prior needs min < max, got min={self.lower:g}, max={self.upper:g}")
        if self.dist == "flat" and not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError("a flat prior needs finite min and max")
        if self.dist == "gaussian" and not (self.sigma is not None and self.sigma > 0 and self.mean is not None):
            raise ValueError("a Gaussian prior needs a mean and a positive sigma")

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lower) or math.isfinite(self.upper)

    def _mass(self) -> float:
        """Probability of an untruncated Gaussian inside [lower, upper]."""
        a = (self.lower - self.mean) / self.sigma
        b = (self.upper - self.mean) / self.sigma
        return float(ndtr(b) - ndtr(a))

    def log_norm(self) -> float:
        """ln of the density's constant factor."""
        if self.dist == "flat":
            return -math.log(self.upper - self.lower)
        mass = self._mass()
        if not mass > 0:
            raise ValueError(f"Gaussian prior N({self.mean:g}, {self.sigma:g}) has no mass in "
                             f"[{self.lower:g}, {self.upper:g}]")
        return -math.log(self.sigma) - _LN_SQRT_2PI - math.log(mass)

    def centre(self) -> float:
        """A typical value: the flat midpoint or the Gaussian mean moved into the support."""
        if self.dist == "flat":
            return 0.5 * (self.lower + self.upper)
        return float(min(max(self.mean, self.lower), self.upper))

    def width(self) -> float:
        """The prior's scale: (max - min)/sqrt(12) for flat, sigma for Gaussian."""
        if self.dist == "flat":
            return (self.upper - self.lower) / math.sqrt(12.0)
        return float(self.sigma)

    def describe(self) -> str:
        if self.dist == "flat":
            return f"flat [{self.lower:g}, {self.upper:g}]"
        text = f"gaussian({self.mean:g}, {self.sigma:g})"
        if self.bounded:
            text += f" truncated to [{self.lower:g}, {self.upper:g}]"
        return text


class PriorSet:
    """The joint prior of the sampled parameters (independent factors), vectorised.

    ``log_prior(theta)`` takes theta of shape (..., n) in the order of ``names``
    and returns (...,) with -inf outside the support.
    """

    def __init__(self, names: Sequence[str], priors: Sequence[Prior]):
        if len(names) != len(priors):
            raise ValueError("one prior per parameter name is needed")
        self.names = tuple(names)
        self.priors = tuple(priors)
        self.lower = np.array([p.lower for p in priors], dtype=float)
        self.upper = np.array([p.upper for p in priors], dtype=float)
        self._gauss = np.array([p.dist == "gaussian" for p in priors], dtype=bool)
        self._mean = np.array([p.mean if p.dist == "gaussian" else 0.0 for p in priors], dtype=float)
        self._sigma = np.array([p.sigma if p.dist == "gaussian" else 1.0 for p in priors], dtype=float)
        self._log_norm = float(sum(p.log_norm() for p in priors))

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self):
        return {"names": self.names, "priors": self.priors}

    def __setstate__(self, state):
        self.__init__(state["names"], state["priors"])

    def log_prior(self, theta) -> np.ndarray | float:
        """ln prior density at theta (..., n) [ln of 1/parameter units]."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape[-1:] != (len(self.names),):
            raise ValueError(f"log_prior: theta must have shape (..., {len(self.names)}), got {theta.shape}")
        inside = np.all((theta >= self.lower) & (theta <= self.upper), axis=-1)
        x = (theta - self._mean) / self._sigma
        chi2 = np.sum(np.where(self._gauss, x * x, 0.0), axis=-1)
        out = np.where(inside, self._log_norm - 0.5 * chi2, -np.inf)
        return float(out) if out.ndim == 0 else out

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws (size, n) from the prior (truncated Gaussians by inversion)."""
        u = rng.uniform(size=(size, len(self.names)))
        lo_cdf = np.where(self._gauss, ndtr((self.lower - self._mean) / self._sigma), 0.0)
        hi_cdf = np.where(self._gauss, ndtr((self.upper - self._mean) / self._sigma), 1.0)
        gauss = self._mean + self._sigma * ndtri(lo_cdf + u * (hi_cdf - lo_cdf))
        flat = np.where(np.isfinite(self.lower), self.lower, 0.0) + u * np.where(
            np.isfinite(self.upper - self.lower), self.upper - self.lower, 0.0)
        out = np.where(self._gauss, gauss, flat)
        # Inversion can land a hair outside [lower, upper] far in the tails.
        return np.clip(out, self.lower, self.upper)

    def describe(self) -> dict[str, str]:
        return {n: p.describe() for n, p in zip(self.names, self.priors)}


_PRIOR_KEYS = ("dist", "min", "max", "mean", "sigma")


def parse_prior(section: Section) -> Prior:
    """A prior from a workflow mapping (keys dist, min, max, mean, sigma); errors name the key path.

    ``dist`` defaults to gaussian when ``mean`` is given, else flat.
    """
    dist = section.take("dist", choice(*DISTRIBUTIONS), default="gaussian" if section.has("mean") else "flat")
    lower = section.take("min", number, default=-math.inf)
    upper = section.take("max", number, default=math.inf)
    if dist == "flat":
        for key in ("min", "max"):
            if not section.has(key):
                raise section.error(key, "is required for a flat prior (give min and max, or dist: gaussian "
                                         "with mean and sigma)")
        for key in ("mean", "sigma"):
            if section.has(key):
                raise section.error(key, "only a Gaussian prior takes mean and sigma; add dist: gaussian")
        mean = sigma = None
    else:
        mean = section.take("mean", number)
        sigma = section.take("sigma", positive_number)
    section.finish(allowed_hint=_PRIOR_KEYS)
    if not lower < upper:
        raise section.error("max", f"must be above min, got min={lower:g}, max={upper:g}")
    prior = Prior(dist, lower, upper, mean, sigma)
    if dist == "gaussian" and prior.bounded and not prior._mass() > 1e-12:
        raise section.error(None, f"the Gaussian N({mean:g}, {sigma:g}) has no probability inside "
                                  f"[{lower:g}, {upper:g}]")
    return prior


_DEFAULT_EXTRA = ("ref", "proposal", "latex")


def prior_from_default(spec: Mapping[str, Any], where: str) -> tuple[Prior, dict[str, Any]]:
    """A likelihood's default prior spec -> (Prior, extras with ref/proposal/latex when given).

    ``spec`` is ``{'prior': 'gaussian'|'flat', 'mean', 'sigma', 'min', 'max', 'ref', 'proposal',
    'latex'}`` or ``{'prior': {dist, min, max, mean, sigma}, ...}``; ``where`` names the
    likelihood for error messages.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(where, "", f"default prior must be a mapping, got {spec!r}")
    spec = dict(spec)
    extras = {k: spec.pop(k) for k in _DEFAULT_EXTRA if k in spec}
    inner = spec.pop("prior", None)
    if isinstance(inner, Mapping):
        if spec:
            raise ConfigError(where, next(iter(spec)), "unknown key next to a prior mapping")
        data = dict(inner)
    else:
        data = dict(spec)
        if inner is not None:
            data["dist"] = {"uniform": "flat", "normal": "gaussian"}.get(inner, inner)
    return parse_prior(Section(data, "prior", where)), extras
