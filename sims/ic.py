"""Gaussian initial conditions and Lagrangian perturbation theory displacements.

The linear density is drawn on the particle lattice (n^3 points, spacing
box/n) from white noise that a seed fixes on any machine and thread count.
'lattice' noise (the default, and the campaigns') is drawn point by point, so
another n gives another realisation; 'nested' noise is drawn in Fourier space
shell by shell, so grids of any n share every mode below the smaller one's
Nyquist frequency, which a resolution study needs.  Conventions (Scoccimarro 1998)::

    x = q + D1 psi1 + D2 psi2,   psi1 = -grad phi1,  nabla^2 phi1 = delta_L(q, z=0)
    psi2 = grad phi2,  nabla^2 phi2 = sum_{i>j} [phi1,ii phi1,jj - (phi1,ij)^2],  D2 ~ -3/7 D1^2

All displacements are in Mpc/h and refer to z = 0 linear amplitude (D1 = 1).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.fft as sfft

from .config import NOISE_KINDS

__all__ = ["white_noise", "linear_density_k", "lpt_displacements", "lattice"]


def white_noise(n: int, seed: int, kind: str = "lattice") -> np.ndarray:
    """Unit-variance Gaussian white noise on an n^3 grid (float64).

    'lattice': PCG64(seed) in lattice order.  'nested': the Fourier modes of
    each cube shell max(|i|, |j|, |l|) = s (integer wavevector) come from their
    own stream PCG64([seed, s]) in a fixed order, so every shell below n/2 is
    the same on any grid that holds it (:func:`_nested_modes`)."""
    if kind == "lattice":
        return np.random.default_rng(seed).standard_normal((n, n, n))
    if kind == "nested":
        return sfft.irfftn(_nested_modes(n, seed), s=(n, n, n))
    raise ValueError(f"white noise: kind must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")


def _nested_modes(n: int, seed: int) -> np.ndarray:
    """The r2c modes W_k of unit white noise (<|W_k|^2> = n^3), drawn shell by shell.

    Within shell s the modes are ordered by their integer wavevector (i, j, l),
    l >= 0, so the draws do not depend on n for s < n/2.  The l = 0 and l = n/2
    planes are then made Hermitian, W(-i, -j) = W(i, j)*, keeping the mode with
    i > 0 (or i = 0, j > 0): a rule that does not depend on n either.  (Odd n has
    no Nyquist plane.)"""
    f = np.rint(np.fft.fftfreq(n, d=1.0 / n)).astype(np.int64)
    i, j, l = np.meshgrid(f, f, np.arange(n // 2 + 1), indexing="ij", sparse=True)
    shell = np.maximum(np.maximum(np.abs(i), np.abs(j)), l)
    shape = shell.shape
    order = np.lexsort(tuple(np.broadcast_to(a, shape).ravel() for a in (l, j, i, shell)))
    sizes = np.bincount(shell.ravel())
    draws = np.empty(order.size, dtype=np.complex128)
    start = 0
    for s, size in enumerate(sizes):
        z = np.random.default_rng([seed, s]).standard_normal(2 * size)
        draws[start:start + size] = z[:size] + 1j * z[size:]
        start += size
    modes = np.empty(order.size, dtype=np.complex128)
    modes[order] = draws * np.sqrt(0.5 * n**3)
    modes = modes.reshape(shape)
    for plane in {0, n // 2} if n % 2 == 0 else {0}:
        modes[:, :, plane] = _hermitian(modes[:, :, plane])
    return modes


def _hermitian(plane: np.ndarray) -> np.ndarray:
    """A (n, n) plane of modes with W(-a, -b) = W(a, b)* (indices mod n): each pair
    keeps the value at the smaller (a, b); self-conjugate modes keep sqrt(2) Re W,
    which leaves <|W|^2> unchanged."""
    n = plane.shape[0]
    a = np.arange(n)[:, None]
    b = np.arange(n)[None, :]
    pa, pb = (-a) % n, (-b) % n
    keep = (a < pa) | ((a == pa) & (b < pb))
    out = np.where(keep, plane, np.conj(plane[pa, pb]))
    self_conj = (a == pa) & (b == pb)
    out[self_conj] = np.sqrt(2.0) * plane[self_conj].real
    return out


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
