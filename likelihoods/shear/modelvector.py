"""CosmoLike's ``.modelvector`` text format for xi+- data vectors, and Delta chi^2 per scale cut.

A modelvector has one row ``index value`` per entry, index 0, 1, 2, ... in
order: xi+ of the pairs (1,1), (1,2), ... (1,n), (2,2), ... (n,n) with theta
running fastest, then xi- likewise (the layout of
:meth:`cosmopipe.likelihoods.shear.limber.ShearModel.data_vector`).  CosmoLike's 3x2pt
vectors continue with gamma_t and w(theta); a file of exactly that length
(``3x2pt_size``) is accepted and its first 2 npairs ntheta entries used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmopipe.likelihoods.base import LikelihoodError

from .scalecuts import NAMED_LMAX, scale_cut_mask

__all__ = ["write_modelvector", "read_modelvector", "delta_chi2_by_cut", "cosmolike_3x2pt_size"]


def cosmolike_3x2pt_size(nbins: int = 5, ntheta: int = 26, nlens: int = 5) -> int:
    """Entries of a CosmoLike 3x2pt vector: xi+-, gamma_t of every lens-source pair, w of each lens bin."""
    npairs = nbins * (nbins + 1) // 2
    return (2 * npairs + nlens * nbins + nlens) * ntheta


def write_modelvector(path: str | Path, vector: np.ndarray) -> Path:
    """Write ``vector`` as rows ``index value`` (%.8e, CosmoLike's precision is 9 digits)."""
    path = Path(path)
    vector = np.asarray(vector, dtype=float)
    np.savetxt(path, np.column_stack([np.arange(vector.size), vector]), fmt=["%d", "%.10e"])
    return path


def read_modelvector(path: str | Path, expected: int, full_size: int | None = None) -> np.ndarray:
    """The first ``expected`` entries of a modelvector file.  The file must hold exactly
    ``expected`` rows, or ``full_size`` (a CosmoLike 3x2pt vector); rows must be
    numbered 0, 1, 2, ... in order.  Errors name the file and the lengths."""
    path = Path(path)
    if not path.is_file():
        raise LikelihoodError(f"data-vector file {path}: not found")
    try:
        table = np.loadtxt(path, dtype=float, comments="#", ndmin=2)
    except ValueError as exc:
        raise LikelihoodError(f"data-vector file {path}: unreadable as 'index value' rows ({exc})") from None
    if table.shape[1] != 2:
        raise LikelihoodError(f"data-vector file {path}: expected 2 columns (index value), found {table.shape[1]}")
    allowed = [expected] + ([full_size] if full_size and full_size != expected else [])
    if table.shape[0] not in allowed:
        also = f" (or {full_size}, a CosmoLike 3x2pt vector)" if len(allowed) > 1 else ""
        raise LikelihoodError(f"data-vector file {path}: expected length {expected}{also}, found {table.shape[0]}")
    wrong = np.flatnonzero(table[:, 0] != np.arange(table.shape[0]))
    if wrong.size:
        row = int(wrong[0])
        raise LikelihoodError(f"data-vector file {path}: rows must be numbered 0..{table.shape[0] - 1} in order "
                              f"(xi+ then xi-, theta fastest); row {row + 1} has index {table[row, 0]:g}")
    values = table[:expected, 1]
    if not np.all(np.isfinite(values)):
        raise LikelihoodError(f"data-vector file {path}: non-finite values")
    return values


def delta_chi2_by_cut(a: np.ndarray, b: np.ndarray, cov: np.ndarray, theta_edges_arcmin: np.ndarray,
                      npairs: int, cuts=(None,) + NAMED_LMAX) -> dict[str, tuple[int, float]]:
    """Delta chi^2 = (a - b)^T C^-1 (a - b) over the points each scale cut keeps:
    {'all' | 'lmax=3000' | ...: (points, Delta chi^2)} (C restricted, then inverted)."""
    out = {}
    diff = np.asarray(a, float) - np.asarray(b, float)
    for lmax in cuts:
        mask = scale_cut_mask(theta_edges_arcmin, npairs, lmax)
        d = diff[mask]
        chi2 = float(d @ np.linalg.solve(cov[np.ix_(mask, mask)], d))
        out["all" if lmax is None else f"lmax={lmax:g}"] = (int(mask.sum()), chi2)
    return out
