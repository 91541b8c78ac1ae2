"""Gaussian covariance of the bin-averaged shear correlations, and external covariance files.

For pairs (ij), (kl), kernels a, c in {+: J_0, -: J_4} and angular bins b, d
(flat sky, survey area Omega_s [sr]; Joachimi et al. 2008, Eq. 23 ff.):

    Cov = 1/(2 pi Omega_s) int dl l  K_a(l; b) K_c(l; d)
              [C^ik C^jl + C^il C^jk + C^ik N^jl + N^ik C^jl + C^il N^jk + N^il C^jk]
        + delta_ac delta_bd (delta^ik delta^jl + delta^il delta^jk) 2 sigma_e^4 / (n_i n_j Omega_s A_b)

The first line is cosmic variance and the mixed signal-noise term, with the
bin-averaged Hankel kernels K of :mod:`cosmopipe.likelihoods.shear.hankel` and the
noise power N^ij = delta^ij sigma_e^2 / n_i.  The second is the pure shape
noise: it is diagonal in angle, so it is written with the exact pair count
of each bin, n_i n_j Omega_s A_b / (1 + delta_ij), A_b = pi (t_hi^2 - t_lo^2)
the bin's area; the factor 2 is E- plus B-mode noise, and it cancels between
xi+ and xi- so their noise-noise cross term vanishes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.interpolate import CubicSpline

from cosmopipe.likelihoods.base import LikelihoodError

from .hankel import ARCMIN, bin_averaged_j0, bin_averaged_j4, spin2_limber_factor

__all__ = ["gaussian_covariance", "load_covariance", "check_covariance"]


def _ell_grid(ell_max: float) -> np.ndarray:
    """Step 1 up to l = 5000 (resolves the product of two large-angle kernels), then
    log steps of 2e-3 (kernels at large l matter only for small angles)."""
    lin = np.arange(1.0, 5000.0, 1.0)
    return np.concatenate([lin, np.geomspace(5000.0, ell_max, int(np.log(ell_max / 5000.0) / 2e-3) + 2)])


def gaussian_covariance(model, params: Mapping[str, float]) -> np.ndarray:
    """Gaussian covariance (size x size) of ``model``'s data vector at ``params``.

    ``model`` is a :class:`cosmopipe.likelihoods.shear.limber.ShearModel`; its survey gives
    the area, densities and shape noise; C_ell comes from its own Limber spectra
    (shear bias included) interpolated like the xi transform."""
    cosmo, nuis = model.split(params)
    survey = model.survey
    nodes = model.ell_nodes
    f = model._cl_tilde(cosmo, nuis, nodes) * (nodes**2 * model._bias(nuis)[:, None])  # l^2 C~, (npairs, nnodes)
    ell = _ell_grid(nodes[-1])
    cl_pairs = CubicSpline(np.log(nodes), f, axis=1)(np.log(ell)) * spin2_limber_factor(ell) / ell**2
    nb = survey.nbins
    pairs = model.pairs
    cl = np.zeros((nb, nb, ell.size))
    for p, (i, j) in enumerate(pairs):
        cl[i, j] = cl[j, i] = cl_pairs[p]
    noise = survey.noise_power()
    # G_pq(l): everything but the noise-noise product, for each pair of pairs
    G = np.empty((len(pairs), len(pairs), ell.size))
    for p, (i, j) in enumerate(pairs):
        for q, (k, l) in enumerate(pairs):
            t = cl[i, k] * cl[j, l] + cl[i, l] * cl[j, k]
            t = t + (cl[i, k] * noise[j] * (j == l) + noise[i] * (i == k) * cl[j, l]
                     + cl[i, l] * noise[j] * (j == k) + noise[i] * (i == l) * cl[j, k])
            G[p, q] = t
    # trapezoid weights of int dl l / (2 pi Omega_s)
    w = np.zeros_like(ell)
    d = np.diff(ell)
    w[:-1] += 0.5 * d
    w[1:] += 0.5 * d
    w *= ell / (2.0 * np.pi * survey.area_sr)
    edges = model.theta_edges * ARCMIN
    K = np.concatenate([np.stack([bin_averaged_j0(ell, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]),
                        np.stack([bin_averaged_j4(ell, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])])
    nk, npair, nt = K.shape[0], len(pairs), model.ntheta
    # cov[x, y, p, q] = sum_l w K_x K_y G_pq, accumulated over l-chunks to bound memory
    cov = np.zeros((nk, nk, npair, npair))
    Gw = (G * w).reshape(npair * npair, ell.size)
    for start in range(0, ell.size, 2000):
        sl = slice(start, start + 2000)
        KK = (K[:, None, sl] * K[None, :, sl]).reshape(nk * nk, -1)
        cov += (KK @ Gw[:, sl].T).reshape(nk, nk, npair, npair)
    # shape noise: diagonal in angle, zero between xi+ and xi-
    area = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    n_sr = survey.n_eff_sr
    for p, (i, j) in enumerate(pairs):
        for q, (k, l) in enumerate(pairs):
            delta = float(i == k and j == l) + float(i == l and j == k)
            if delta:
                sn = delta * 2.0 * survey.sigma_e**4 / (n_sr[i] * n_sr[j] * survey.area_sr * area)
                for a in range(2):
                    idx = a * nt + np.arange(nt)
                    cov[idx, idx, p, q] += sn
    # reorder to the data vector: (kernel a, pair p, theta b)
    cov = cov.reshape(2, nt, 2, nt, npair, npair).transpose(0, 4, 1, 2, 5, 3)
    size = 2 * npair * nt
    out = cov.reshape(size, size)
    return 0.5 * (out + out.T)


def check_covariance(cov: np.ndarray, size: int, where: str) -> np.ndarray:
    """Raise LikelihoodError unless ``cov`` is a finite, symmetric, positive-definite
    (size x size) matrix; ``where`` names its origin in the message."""
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (size, size):
        raise LikelihoodError(f"{where}: covariance must be {size} x {size} (the xi+- data vector), got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        bad = np.argwhere(~np.isfinite(cov))[0]
        raise LikelihoodError(f"{where}: covariance has a non-finite entry at ({bad[0]}, {bad[1]})")
    scale = np.max(np.abs(np.diag(cov)))
    asym = np.abs(cov - cov.T)
    if asym.max() > 1e-8 * scale:
        i, j = np.unravel_index(np.argmax(asym), asym.shape)
        raise LikelihoodError(f"{where}: covariance is not symmetric: C[{i},{j}] = {cov[i, j]:.6g} but "
                              f"C[{j},{i}] = {cov[j, i]:.6g}")
    if np.any(np.diag(cov) <= 0):
        i = int(np.argmin(np.diag(cov)))
        raise LikelihoodError(f"{where}: covariance is not positive definite: diagonal entry {i} is {cov[i, i]:.6g}")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        lam = np.linalg.eigvalsh(cov)
        raise LikelihoodError(f"{where}: covariance is not positive definite: smallest eigenvalue {lam[0]:.6g} "
                              f"(largest {lam[-1]:.6g}); {int(np.sum(lam <= 0))} non-positive") from None
    return cov


def load_covariance(path: str | Path, size: int) -> np.ndarray:
    """Read a covariance file and check it (:func:`check_covariance`).

    Formats: ``.npy`` (the matrix); ``.npz`` (array ``cov``, or its only array);
    text, either the square matrix or three columns ``i j value`` (0-based
    indices; each listed entry is mirrored, so one triangle is enough)."""
    path = Path(path)
    where = f"covariance file {path}"
    if not path.is_file():
        raise LikelihoodError(f"{where}: not found")
    try:
        if path.suffix == ".npy":
            cov = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                names = list(f.keys())
                if "cov" in names:
                    cov = f["cov"]
                elif len(names) == 1:
                    cov = f[names[0]]
                else:
                    raise LikelihoodError(f"{where}: holds arrays {', '.join(names)}; name the covariance 'cov'")
        else:
            table = np.loadtxt(path, dtype=float, comments="#", ndmin=2)
            if table.shape[1] == 3 and table.shape[0] != 3:
                cov = _from_triplets(table, size, where)
            else:
                cov = table
    except ValueError as exc:
        raise LikelihoodError(f"{where}: unreadable ({exc})") from None
    return check_covariance(cov, size, where)


def _from_triplets(table: np.ndarray, size: int, where: str) -> np.ndarray:
    i, j = table[:, 0], table[:, 1]
    if np.any(i != np.round(i)) or np.any(j != np.round(j)) or i.min() < 0 or j.min() < 0 \
            or i.max() >= size or j.max() >= size:
        raise LikelihoodError(f"{where}: 'i j value' rows need integer indices in [0, {size - 1}]")
    cov = np.full((size, size), np.nan)
    i, j = i.astype(int), j.astype(int)
    cov[i, j] = table[:, 2]
    cov[j, i] = table[:, 2]
    if np.isnan(cov).any():
        a, b = np.argwhere(np.isnan(cov))[0]
        raise LikelihoodError(f"{where}: entry ({a}, {b}) is missing from the 'i j value' list")
    return cov
