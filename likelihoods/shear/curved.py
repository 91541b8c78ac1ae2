"""Curved-sky, bin-averaged shear correlation functions by Legendre sums.

On the sphere (no flat-sky approximation), with C_ell^BB = 0,

    xi_+(theta) = sum_l (2l+1)/(4 pi) d^l_{2,2}(theta)  C_l^EE
    xi_-(theta) = sum_l (2l+1)/(4 pi) d^l_{2,-2}(theta) C_l^EE

over integer l.  Averaged over a bin [theta_lo, theta_hi] with the area
weight d(cos theta), the Wigner functions integrate in closed form to
combinations of P_{l-1}, P_l, P_{l+1} and the derivatives P'_{l-1}, P'_l at
the two bin edges (Stebbins 1996, astro-ph/9609149; bin-averaged form in
Friedrich et al. 2021, arXiv:2012.08568, the form CosmoLike evaluates).  The
weights G+-_l(bin) below include (2l+1)/(4 pi), so xi+-_b = sum_l G+-_bl C_l.

CosmoLike's weights carry an extra factor (l-1)(l+2)/[l(l+1)] = 1 - 2/[l(l+1)]
relative to the exact Wigner-d sum: the G+-_l of Stebbins are written for the
convergence spectrum, C^EE = (l-1)(l+2)/[l(l+1)] C^kappa.  CosmoLike feeds them
its Limber C^EE: with the full spin-2 factor (l-1)l(l+1)(l+2)/(l+1/2)^4 for its
NLA models (IA 3, 4), without any l factor for its TATT models (IA 5, 6, the
LSST-Y1 choice; the ``limber_prefactor`` convention, ``prefactor`` below).
``weights='exact'`` (the default) divides the extra factor out;
``weights='cosmolike'`` keeps it (xi+ lower by 2e-4 at l = 100).

The sum runs over 2 <= l < lmax, as CosmoLike/Cocoa's does (l = 2 ... LMAX - 1,
LMAX = 100000, cosmo2D.c xi_pm_tomo).  The quadrupole is not negligible at
large angles: l = 2 alone is 2.6 % of xi+(1,1) at 4.4 deg and 6 % at 7.7 deg
for LSST-Y1.

C_l is a cubic spline in ln l through node values of f = l^2 C~ (C~ without
the spin-2 factor), so the whole transform is linear in the node values:
it is folded once into (ntheta, nnodes) matrices, and one evaluation costs
what the flat-sky transform does.  Angles in arcmin at the interface.
"""
from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
from scipy.interpolate import CubicSpline

from .hankel import ARCMIN, spin2_limber_factor

__all__ = ["COSMOLIKE_LMAX", "WEIGHTS", "PREFACTORS", "legendre_table", "bin_averaged_weights",
           "curved_transform_matrices"]

COSMOLIKE_LMAX = 100_000  # CosmoLike's limits.LMAX: the l sum stops at LMAX - 1
L_MIN = 2                 # first multipole of the sum (spin 2)
WEIGHTS = ("exact", "cosmolike")
PREFACTORS = ("spin2", "none")


@numba.njit(cache=True)
def legendre_table(x, lmax):
    """P_l(x) and P'_l(x) for l = 0 ... lmax + 1 at each x: arrays (nx, lmax + 2).

    Upward Bonnet recursion for P_l; P'_{l+1} = (l+1) P_l + x P'_l for the
    derivative, which stays accurate as x -> 1 (the (x^2 - 1) form cancels
    catastrophically at arcminute angles)."""
    nx = x.size
    P = np.empty((nx, lmax + 2))
    dP = np.empty((nx, lmax + 2))
    for a in range(nx):
        xa = x[a]
        P[a, 0] = 1.0
        P[a, 1] = xa
        dP[a, 0] = 0.0
        dP[a, 1] = 1.0
        for l in range(1, lmax + 1):
            P[a, l + 1] = ((2 * l + 1) * xa * P[a, l] - l * P[a, l - 1]) / (l + 1)
            dP[a, l + 1] = (l + 1) * P[a, l] + xa * dP[a, l]
    return P, dP


def bin_averaged_weights(edges_arcmin, lmax: int = COSMOLIKE_LMAX,
                         weights: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """G+ and G-, each (nbins, lmax): xi+-_b = sum_l G+-[b, l] C_l^EE, averaged over each
    bin [arcmin edges] with weight d(cos theta).  Columns l < 2 are zero; ``weights``
    'exact' or 'cosmolike' (module doc)."""
    if weights not in WEIGHTS:
        raise ValueError(f"curved-sky weights: must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    edges = np.asarray(edges_arcmin, dtype=float) * ARCMIN
    x = np.cos(edges)
    P, dP = legendre_table(x, int(lmax))
    l = np.arange(L_MIN, int(lmax), dtype=float)
    li = l.astype(int)
    lo, hi = slice(0, -1), slice(1, None)  # x_lo = cos(theta_lo) > x_hi

    def diff(a):
        return a[lo] - a[hi]  # value at the small-angle edge minus at the large-angle edge

    xc = x[:, None]
    d_pm1, d_p, d_pp1 = diff(P[:, li - 1]), diff(P[:, li]), diff(P[:, li + 1])
    d_xp = diff(xc * P[:, li])
    d_dp, d_dpm1 = diff(dP[:, li]), diff(dP[:, li - 1])
    d_xdpm1, d_xdp = diff(xc * dP[:, li - 1]), diff(xc * dP[:, li])
    common = (-l * (l - 1) / 2 * (l + 2 / (2 * l + 1)) * d_pm1
              - l * (l - 1) * (2 - l) / 2 * d_xp
              + l * (l - 1) / (2 * l + 1) * d_pp1
              + (4 - l) * d_dp
              + (l + 2) * (d_xdpm1 - d_pm1))
    # the two terms whose sign distinguishes d_{2,2} (xi+) from d_{2,-2} (xi-)
    odd = 2 * (l - 1) * (d_xdp - d_p) - 2 * (l + 2) * d_dpm1
    norm = (2 * l + 1) / (2 * np.pi * l**2 * (l + 1) ** 2) / diff(x)[:, None]
    if weights == "exact":
        norm = norm * (l * (l + 1) / ((l - 1) * (l + 2)))
    gp = np.zeros((edges.size - 1, int(lmax)))
    gm = np.zeros_like(gp)
    gp[:, L_MIN:] = norm * (common + odd)
    gm[:, L_MIN:] = norm * (common - odd)
    return gp, gm


@lru_cache(maxsize=8)
def _matrices(edges_arcmin: tuple, ell_nodes: tuple, lmax: int, weights: str,
              prefactor: str = "spin2") -> tuple[np.ndarray, np.ndarray]:
    nodes = np.asarray(ell_nodes)
    gp, gm = bin_averaged_weights(np.asarray(edges_arcmin), lmax, weights)
    spline = CubicSpline(np.log(nodes), np.eye(nodes.size), axis=0)
    mp = np.zeros((gp.shape[0], nodes.size))
    mm = np.zeros_like(mp)
    # C_l = T(l) f(l) / l^2 at every integer l (T = 1 for prefactor 'none'); chunked so the
    # (nl, nnodes) basis stays small
    for start in range(L_MIN, int(lmax), 20_000):
        l = np.arange(start, min(start + 20_000, int(lmax)), dtype=float)
        factor = spin2_limber_factor(l) if prefactor == "spin2" else np.ones_like(l)
        basis = spline(np.log(np.minimum(l, nodes[-1]))) * (factor / l**2)[:, None]
        basis[l > nodes[-1]] = 0.0
        mp += gp[:, start:start + l.size] @ basis
        mm += gm[:, start:start + l.size] @ basis
    return mp, mm


def curved_transform_matrices(edges_arcmin, ell_nodes, lmax: int = COSMOLIKE_LMAX,
                              weights: str = "exact", prefactor: str = "spin2") -> tuple[np.ndarray, np.ndarray]:
    """Matrices (M+, M-), each (ntheta, nnodes), with xi+-_b = sum_m M_bm f_m where
    f_m = l_m^2 C~(l_m) at the spline nodes (the interface of
    :func:`cosmopipe.likelihoods.shear.hankel.xi_transform_matrices`), summing the curved-sky
    series over integer 2 <= l < lmax with ``weights`` (module doc) and C_l = T(l) C~(l),
    T the spin-2 Limber factor for ``prefactor`` 'spin2', 1 for 'none' (CosmoLike's TATT
    path).  Cached for repeated (edges, nodes, lmax)."""
    edges = tuple(float(v) for v in np.asarray(edges_arcmin, dtype=float))
    nodes = tuple(float(v) for v in np.asarray(ell_nodes, dtype=float))
    if nodes[0] > L_MIN or np.any(np.diff(nodes) <= 0):
        raise ValueError(f"ell nodes must increase and start at l <= {L_MIN}")
    if not 4 <= int(lmax) <= 1_000_000:
        raise ValueError(f"curved-sky lmax must lie in [4, 1e6], got {lmax!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"curved-sky weights: must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if prefactor not in PREFACTORS:
        raise ValueError(f"curved-sky prefactor: must be one of {', '.join(PREFACTORS)}, got {prefactor!r}")
    plus, minus = _matrices(edges, nodes, int(lmax), weights, prefactor)
    return plus.copy(), minus.copy()
