"""Gaussian initial conditions and Lagrangian perturbation theory displacements.

The linear density is drawn on the particle lattice (n^3 points, spacing
box/n) from real-space white noise, so a seed gives the same field on any
machine and thread count and the large-scale modes do not change when the
resolution changes.  Conventions (Scoccimarro 1998)::

    x = q + D1 psi1 + D2 psi2,   psi1 = -grad phi1,  nabla^2 phi1 = delta_L(q, z=0)
    psi2 = grad phi2,  nabla^2 phi2 = sum_{i>j} [phi1,ii phi1,jj - (phi1,ij)^2],  D2 ~ -3/7 D1^2

All displacements are in Mpc/h and refer to z = 0 linear amplitude (D1 = 1).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.fft as sfft

__all__ = ["white_noise", "linear_density_k", "lpt_displacements", "lattice"]


def white_noise(n: int, seed: int) -> np.ndarray:
    """Unit-variance Gaussian white noise on an n^3 grid (float64), PCG64(seed)."""
    return np.random.default_rng(seed).standard_normal((n, n, n))


def _kgrid(n: int, box: float):
    kf = 2.0 * np.pi / box
    k = np.fft.fftfreq(n, d=1.0 / n) * kf
    kz = np.fft.rfftfreq(n, d=1.0 / n) * kf
    return k[:, None, None], k[None, :, None], kz[None, None, :]


def linear_density_k(noise: np.ndarray, box: float, power: Callable[[np.ndarray], np.ndarray],
                     fixed_amplitude: bool = False, flip: bool = False, threads: int = 1) -> np.ndarray:
    """Fourier modes of the linear density (r2c layout, DFT normalisation).

    With the DFT delta_k = sum_x delta(x) exp(-ikx), <|delta_k|^2> = n^6 P(k) / V.
    ``power(k)`` is P(k) [(Mpc/h)^3] at k [h/Mpc].  ``fixed_amplitude`` sets
    |delta_k| to its rms (Angulo & Pontzen 2016); ``flip`` multiplies by -1
    (the paired realisation of Pontzen et al. 2016).
    """
    n = noise.shape[0]
    volume = box**3
    wk = sfft.rfftn(noise, workers=threads)
    kx, ky, kz = _kgrid(n, box)
    kmag = np.sqrt(kx**2 + ky**2 + kz**2)
    amp = np.zeros_like(kmag)
    nz = kmag > 0
    amp[nz] = np.sqrt(power(kmag[nz]) * n**3 / volume)
    if fixed_amplitude:
        mod = np.abs(wk)
        mod[mod == 0] = 1.0
        # |W_k|^2 has mean n^3 for unit white noise; fix it to exactly that.
        wk = wk / mod * np.sqrt(n**3)
    delta_k = wk * amp
    delta_k[0, 0, 0] = 0.0
    if flip:
        delta_k = -delta_k
    return delta_k


def _irfft(field_k: np.ndarray, n: int, threads: int) -> np.ndarray:
    return sfft.irfftn(field_k, s=(n, n, n), workers=threads)


def lpt_displacements(delta_k: np.ndarray, box: float, order: int = 2, threads: int = 1):
    """First- and second-order LPT displacement fields on the lattice.

    Returns (psi1, psi2), each (n^3, 3) float32 [Mpc/h] in lattice order
    (psi2 is all zeros for ``order`` = 1).  The Nyquist planes get no
    derivative, as in the force solver.
    """
    n = delta_k.shape[0]
    kx, ky, kz = _kgrid(n, box)
    kd = [kx.copy(), ky.copy(), kz.copy()]
    if n % 2 == 0:
        kd[0][n // 2] = 0.0
        kd[1][:, n // 2] = 0.0
        kd[2][..., n // 2] = 0.0
    k2 = kx**2 + ky**2 + kz**2
    k2[0, 0, 0] = 1.0
    phi1_k = -delta_k / k2  # nabla^2 phi1 = delta
    psi1 = np.empty((n**3, 3), np.float32)
    for d in range(3):
        psi1[:, d] = _irfft(-1j * kd[d] * phi1_k, n, threads).ravel()
    psi2 = np.zeros((n**3, 3), np.float32)
    if order >= 2:
        # phi1,ij in real space; the source is sum_{i>j} phi_ii phi_jj - phi_ij^2.
        kk = [kx, ky, kz]
        diag = [_irfft(-kk[i] * kk[i] * phi1_k, n, threads) for i in range(3)]
        source = diag[0] * diag[1] + diag[0] * diag[2] + diag[1] * diag[2]
        del diag
        for i, j in ((0, 1), (0, 2), (1, 2)):
            source -= _irfft(-kd[i] * kd[j] * phi1_k, n, threads) ** 2
        source_k = sfft.rfftn(source, workers=threads)
        del source
        phi2_k = -source_k / k2
        phi2_k[0, 0, 0] = 0.0
        for d in range(3):
            psi2[:, d] = _irfft(1j * kd[d] * phi2_k, n, threads).ravel()
    return psi1, psi2


def lattice(n: int, box: float) -> np.ndarray:
    """Unperturbed particle positions q on the n^3 lattice [Mpc/h], (n^3, 3), C order."""
    i = np.arange(n, dtype=np.float64) * (box / n)
    q = np.empty((n, n, n, 3))
    q[..., 0] = i[:, None, None]
    q[..., 1] = i[None, :, None]
    q[..., 2] = i[None, None, :]
    return q.reshape(-1, 3)
