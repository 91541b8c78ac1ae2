"""Design of an observables campaign: the EDE + binned w(z) box, a Latin hypercube of it,
and points drawn around a posterior (dimensionless parameters, Planck-style names)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_BOX", "latin_hypercube", "posterior_design"]

# EDE + 3-bin w(z) box: wide enough for the arXiv:2302.07333 posterior, narrow enough
# for a few hundred CAMB runs (f_EDE is capped at 0.2, well above its 95 % limit).  The
# emulator's inputs use 100 theta_* in place of H0: an H0 box lets the acoustic scale vary
# by +-8 % (measured over a first campaign: 100 theta_* = 0.963-1.123), which moves every
# peak and made ln C_ell strongly non-linear in the inputs (2.5 % median TT error at 60
# points); Planck pins 100 theta_* to 3e-4, so a +-0.3 % theta_* box covers any posterior.
DEFAULT_BOX: dict[str, tuple[float, float]] = {
    "ombh2": (0.0215, 0.0235), "omch2": (0.110, 0.140), "theta_star_100": (1.038, 1.044), "tau": (0.035, 0.080),
    "logA": (2.98, 3.12), "ns": (0.94, 1.00), "f_EDE": (0.0, 0.2), "log10_z_c": (3.0, 4.3),
    "theta_i": (0.1, 3.1), "w_1": (-1.5, -0.5), "w_2": (-1.5, -0.5), "w_3": (-1.5, -0.5),
}


def latin_hypercube(box: Mapping[str, tuple[float, float]], n: int, seed: int = 0) -> list[dict[str, float]]:
    """n parameter dicts on a Latin hypercube of ``box`` (name -> (lower, upper))."""
    from scipy.stats import qmc  # scipy.stats costs ~0.3 s to import

    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"latin_hypercube: n must be a positive integer, got {n!r}")
    names = list(box)
    lo = np.array([box[k][0] for k in names], float)
    hi = np.array([box[k][1] for k in names], float)
    if np.any(~(hi > lo)):
        bad = names[int(np.argmax(~(hi > lo)))]
        raise ValueError(f"latin_hypercube: box of {bad} must have lower < upper, got {box[bad]}")
    unit = qmc.LatinHypercube(d=len(names), seed=seed).random(int(n))
    return [dict(zip(names, map(float, row))) for row in lo + unit * (hi - lo)]


def posterior_design(names: Sequence[str], samples: np.ndarray, n: int,
                     box: Mapping[str, tuple[float, float]] = DEFAULT_BOX, seed: int = 0,
                     origin: str = "the chains") -> list[dict[str, float]]:
    """n design points around a posterior given as ``samples`` (m, p) of parameters ``names``
    (a converged sample-stage chain): random samples, each moved by a Gaussian step with the
    posterior covariance (a kernel density estimate twice as wide in variance as the
    posterior), redrawn until inside ``box``.

    A Latin hypercube spends most points where the data rule the model out; a second
    campaign drawn here makes the emulator dense where the posterior is (the training
    stays global: both campaigns are used)."""
    names = list(names)
    missing = [k for k in box if k not in names]
    if missing:
        raise ValueError(f"posterior_design: {origin} do not sample {', '.join(missing)}")
    keys = list(box)
    samples = np.asarray(samples, float)
    x = samples[:, [names.index(k) for k in keys]]
    lo = np.array([box[k][0] for k in keys])
    hi = np.array([box[k][1] for k in keys])
    chol = np.linalg.cholesky(np.cov(x, rowvar=False) + 1e-30 * np.eye(len(keys)))
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < n:
        trial = x[rng.integers(len(x), size=n)] + rng.standard_normal((n, len(keys))) @ chol.T
        out.extend(trial[np.all((trial >= lo) & (trial <= hi), axis=1)])
    return [dict(zip(keys, map(float, row))) for row in out[:n]]
