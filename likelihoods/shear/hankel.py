"""Shear correlation functions xi+-(theta) from C_ell by the exact flat-sky Hankel transform.

    xi_+(theta) = int dl l / (2 pi) C(l) J_0(l theta),   xi_-(theta) = int dl l / (2 pi) C(l) J_4(l theta)

averaged over each angular bin with the pair-count weight theta d theta, in
closed form: the theta-integrals of the Bessel functions are exact,

    int x J_0(x) dx = x J_1(x),    int x J_4(x) dx = (x - 24/x) J_1(x) + 8 J_0(x),

so the bin-averaged kernels K_b(l) below contain no approximation.  The ell
integral acts on a cubic spline (in ln l) of f(l) = l^2 C(l) through its node
values, and is linear in them; it is therefore done once, on a fine ell grid
that resolves the oscillations of every kernel, and stored as a matrix:
xi_b = sum_m M_bm f(l_m).  Evaluating xi+- for all bin pairs is then one small
matrix product.

The transform is flat-sky, as CCL's (which has no curved-sky xi+-); the
ell integral starts at l = 1, below which shear spectra vanish (the spin-2
factor (l+2)!/(l-2)! is zero at l = 1).  Angles are in arcmin at the
interface and radians inside.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import j0, j1

__all__ = ["ARCMIN", "theta_edges", "theta_centres", "bin_averaged_j0", "bin_averaged_j4", "xi_transform_matrices",
           "spin2_limber_factor", "fine_ell_quadrature"]

ARCMIN = np.pi / 180.0 / 60.0  # radians per arcmin


def theta_edges(theta_min: float = 2.5, theta_max: float = 900.0, nbins: int = 26) -> np.ndarray:
    """Log-spaced bin edges [arcmin] (nbins + 1)."""
    if not (0 < theta_min < theta_max <= 180 * 60) or nbins < 1:
        raise ValueError(f"theta bins: need 0 < theta_min < theta_max <= 10800 arcmin and nbins >= 1, "
                         f"got theta_min={theta_min!r}, theta_max={theta_max!r}, nbins={nbins!r}")
    return np.geomspace(theta_min, theta_max, nbins + 1)


def theta_centres(edges: np.ndarray) -> np.ndarray:
    """Pair-weighted mean angle of each bin, (2/3)(t2^3 - t1^3)/(t2^2 - t1^2) [units of edges]."""
    lo, hi = edges[:-1], edges[1:]
    return 2.0 / 3.0 * (hi**3 - lo**3) / (hi**2 - lo**2)


def _j4_primitive(x: np.ndarray) -> np.ndarray:
    """Antiderivative of x J_4(x)."""
    return (x - 24.0 / x) * j1(x) + 8.0 * j0(x)


def bin_averaged_j0(ell: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """<J_0(l theta)> over theta in [lo, hi] [rad] with weight theta; ell > 0."""
    ell = np.asarray(ell, dtype=float)
    area = 0.5 * (hi**2 - lo**2)
    return (hi * j1(ell * hi) - lo * j1(ell * lo)) / ell / area


def bin_averaged_j4(ell: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """<J_4(l theta)> over theta in [lo, hi] [rad] with weight theta; ell > 0.

    For l theta < 1/2 the primitive is a difference of nearly equal terms;
    there the first four terms of the power series of J_4 are integrated
    instead (relative error < 1e-7)."""
    ell = np.asarray(ell, dtype=float)
    area = 0.5 * (hi**2 - lo**2)
    out = (_j4_primitive(ell * hi) - _j4_primitive(ell * lo)) / ell**2 / area
    small = ell * hi < 0.5
    if np.any(small):
        x = 0.5 * ell[small]
        series = np.zeros_like(x)
        for k in range(4):
            p = 2 * k + 6
            series += (-1) ** k * x ** (2 * k + 4) / (math.factorial(k) * math.factorial(k + 4)) * (hi**p - lo**p) / p
        out[small] = series / area
    return out


def spin2_limber_factor(ell) -> np.ndarray:
    """(l+2)!/(l-2)! / (l+1/2)^4: the exact spin-2 prefactor of the Limber shear
    spectra (Kilbinger et al. 2017, as in CCL); 0 for l <= 1."""
    ell = np.asarray(ell, dtype=float)
    out = (ell + 2.0) * (ell + 1.0) * ell * (ell - 1.0) / (ell + 0.5) ** 4
    return np.where(ell > 1.0, out, 0.0)


def _simpson(n_intervals: int) -> np.ndarray:
    w = np.full(n_intervals + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w / 3.0


def fine_ell_quadrature(ell_min: float, ell_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for int dl g(l) over [ell_min, ell_max]: Simpson's rule with
    step 1/4 up to l = 2000 (>= 100 points per oscillation period 2 pi / theta for
    theta <= 15 deg), then Simpson in ln l with step 2.5e-4 (>= 14 points per period
    2 pi / (l theta) for l theta <= 1800; beyond, the bin-averaged kernels have
    decayed as (l theta)^-1.5)."""
    l_join = min(2000.0, ell_max)
    n_lin = 2 * max(1, int(np.ceil((l_join - ell_min) / 0.5)))
    ell = np.linspace(ell_min, l_join, n_lin + 1)
    w = _simpson(n_lin) * (ell[1] - ell[0])
    if ell_max <= l_join:
        return ell, w
    n_log = 2 * max(1, int(np.ceil(np.log(ell_max / l_join) / 5e-4)))
    lnl = np.linspace(np.log(l_join), np.log(ell_max), n_log + 1)
    ell_log = np.exp(lnl)
    w_log = _simpson(n_log) * (lnl[1] - lnl[0]) * ell_log
    w[-1] += w_log[0]  # the shared node l_join
    return np.concatenate([ell, ell_log[1:]]), np.concatenate([w, w_log[1:]])


@lru_cache(maxsize=8)
def _matrices(edges_arcmin: tuple, ell_nodes: tuple, spin2: bool) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.asarray(ell_nodes)
    edges = np.asarray(edges_arcmin) * ARCMIN
    ell, w = fine_ell_quadrature(nodes[0], nodes[-1])
    # times the measure dl / (2 pi l) of f = l^2 C and the spin-2 factor
    w = w * (spin2_limber_factor(ell) if spin2 else 1.0) / (2.0 * np.pi * ell)
    basis = CubicSpline(np.log(nodes), np.eye(nodes.size), axis=0)(np.log(ell))  # (n_fine, n_nodes)
    plus = np.stack([bin_averaged_j0(ell, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])
    minus = np.stack([bin_averaged_j4(ell, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])
    return (plus * w) @ basis, (minus * w) @ basis


def xi_transform_matrices(edges_arcmin: np.ndarray, ell_nodes: np.ndarray,
                          spin2: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Matrices (M+, M-), each (ntheta, nnodes), with xi+-_b = sum_m M_bm f_m where
    f_m = l_m^2 C~(l_m) at the spline nodes ``ell_nodes`` (increasing, log-spaced,
    first node >= 1), C~ the Limber spectrum *without* the spin-2 factor (it is
    applied here unless ``spin2`` is False), and xi averaged over the bins with
    edges ``edges_arcmin``.
    Contributions beyond the last node are dropped: put it where l^2 C has fallen.
    Cached for repeated (edges, nodes)."""
    edges = tuple(float(x) for x in np.asarray(edges_arcmin, dtype=float))
    nodes = tuple(float(x) for x in np.asarray(ell_nodes, dtype=float))
    if nodes[0] < 1.0 or np.any(np.diff(nodes) <= 0):
        raise ValueError("ell nodes must increase and start at l >= 1")
    plus, minus = _matrices(edges, nodes, bool(spin2))
    return plus.copy(), minus.copy()
