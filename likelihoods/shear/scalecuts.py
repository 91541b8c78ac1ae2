"""Angular scale cuts of the xi+- data vector from a maximum multipole.

A scale cut at l_max removes the angular bins whose pair-weighted mean angle
lies below theta_min = x0 / l_max, where x0 is the first zero of the Bessel
function of the estimator (J_0: 2.405 for xi+, J_4: 7.588 for xi-), as in the
COLA-emulator LSST-Y1 analysis (arXiv:2404.12344).  With the default 26 bins
over 2.5-900 arcmin the named cuts keep (xi+, xi-) bins per pair:
3000 -> (26, 21), 1500 -> (23, 17), 750 -> (19, 14), 375 -> (16, 11),
187.5 -> (13, 8); these are the M1..M5 masks of CoCoA's LSST-Y1 set-up.
"""
from __future__ import annotations

import numpy as np

from .hankel import ARCMIN, theta_centres

__all__ = ["X0_PLUS", "X0_MINUS", "NAMED_LMAX", "theta_min", "scale_cut_mask", "parse_scale_cut"]

X0_PLUS = 2.405  # first zero of J_0
X0_MINUS = 7.588  # first zero of J_4
NAMED_LMAX = (3000.0, 1500.0, 750.0, 375.0, 187.5)


def theta_min(lmax: float) -> tuple[float, float]:
    """Smallest kept angle (xi+, xi-) [arcmin] for a cut at multipole ``lmax``."""
    if not np.isfinite(lmax) or lmax <= 0:
        raise ValueError(f"scale cut: l_max must be a positive number, got {lmax!r}")
    return X0_PLUS / lmax / ARCMIN, X0_MINUS / lmax / ARCMIN


def scale_cut_mask(theta_edges_arcmin: np.ndarray, npairs: int, lmax: float | None) -> np.ndarray:
    """Boolean mask (True = keep) over the data vector [xi+ (pair, theta), xi- (pair, theta)];
    ``lmax`` None keeps everything."""
    nt = len(theta_edges_arcmin) - 1
    if lmax is None:
        return np.ones(2 * npairs * nt, dtype=bool)
    centres = theta_centres(np.asarray(theta_edges_arcmin, dtype=float))
    tp, tm = theta_min(lmax)
    plus = np.tile(centres >= tp, npairs)
    minus = np.tile(centres >= tm, npairs)
    return np.concatenate([plus, minus])


def parse_scale_cut(value) -> float | None:
    """Config value -> l_max: a number (one of :data:`NAMED_LMAX` or any positive
    l_max), ``none``/null for no cut.  ValueError names the allowed values."""
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str):
        try:
            value = float(value.lower().removeprefix("lmax"))
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        named = ", ".join(f"{v:g}" for v in NAMED_LMAX)
        raise ValueError(f"must be an l_max ({named}, or another positive number) or none")
    return float(value)
