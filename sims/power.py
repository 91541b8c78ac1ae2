"""Matter power spectrum of particles: assignment, interlacing, deconvolution, binning.

P(k) [(Mpc/h)^3] at k [h/Mpc] of N equal-mass particles in a periodic box of
side L: the density is assigned to an n^3 mesh, optionally interlaced with
a second mesh shifted by half a cell (Sefusatti et al. 2016), which cancels
the leading aliasing images, then divided by the assignment window and
averaged in spherical shells with the multiplicity of the r2c half space.
The Poisson shot noise L^3/N is subtracted on request.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .mesh import FFTMesh, deposit, window

__all__ = ["PowerSpectrum", "PowerMeter", "bin_modes"]


@dataclass(frozen=True)
class PowerSpectrum:
    """k (nk,) mode-weighted mean [h/Mpc]; pk (nk,) [(Mpc/h)^3]; nmodes (nk,)."""

    k: np.ndarray
    pk: np.ndarray
    nmodes: np.ndarray
    shot_noise: float


@njit(inline="always")
def _shell(kk, kmin, kmax, nb):
    """Index of the shell holding |k| = kk among nb equal shells on [kmin, kmax); -1 outside."""
    if kk < kmin or kk >= kmax:
        return -1
    b = int((kk - kmin) / ((kmax - kmin) / nb))
    return b if b < nb else -1


@njit(parallel=True, fastmath=True, cache=True)
def _bin(field_k, k_full, k_half, edges, wfull, whalf, phase_full, phase_half, other_k, sum_k, sum_p, count):
    """Accumulate |delta_k|^2 / W^2 into shells; r2c planes 0 and n/2 count once.

    With ``other_k`` given, delta_k is averaged with it after multiplying by
    phase_full[i] phase_full[j] phase_half[l] (the interlaced mesh's shift).  Each
    i-plane sums into its own row, and the rows are added in order afterwards, so the
    result does not depend on the thread count."""
    n0, n1, n2 = field_k.shape
    nb = edges.shape[0] - 1
    nyq = n2 - 1 if (n0 % 2 == 0) else -1
    interlaced = other_k.shape[0] == n0
    rows_k = np.zeros((n0, nb))
    rows_p = np.zeros((n0, nb))
    rows_n = np.zeros((n0, nb))
    for i in prange(n0):
        for j in range(n1):
            for l in range(n2):
                kk = np.sqrt(k_full[i] ** 2 + k_full[j] ** 2 + k_half[l] ** 2)
                b = _shell(kk, edges[0], edges[-1], nb)
                if b < 0:
                    continue
                v = field_k[i, j, l]
                if interlaced:
                    v = 0.5 * (v + other_k[i, j, l] * (phase_full[i] * phase_full[j] * phase_half[l]))
                w = wfull[i] * wfull[j] * whalf[l]
                p = (v.real * v.real + v.imag * v.imag) / (w * w)
                mult = 1.0 if (l == 0 or l == nyq) else 2.0
                rows_k[i, b] += mult * kk
                rows_p[i, b] += mult * p
                rows_n[i, b] += mult
    for i in range(n0):
        for b in range(nb):
            sum_k[b] += rows_k[i, b]
            sum_p[b] += rows_p[i, b]
            count[b] += rows_n[i, b]


@njit(parallel=True, cache=True)
def _bin_lattice(n, kf, edges, values, num, den):
    """num[b] += mult values[m], den[b] += mult over the r2c modes of an n^3 mesh,
    m = i^2 + j^2 + l^2 the squared integer wavevector, b its |k| shell (the
    estimator's _shell).  Per-plane rows keep the sums independent of the thread count."""
    nb = edges.shape[0] - 1
    n2 = n // 2 + 1
    nyq = n2 - 1 if n % 2 == 0 else -1
    rows_num = np.zeros((n, nb))
    rows_den = np.zeros((n, nb))
    for i in prange(n):
        fi = np.int64(i)  # prange indices may be unsigned
        fi = fi if fi < (n + 1) // 2 else fi - n
        for j in range(n):
            fj = j if j < (n + 1) // 2 else j - n
            for l in range(n2):
                b = _shell(np.sqrt((fi * kf) ** 2 + (fj * kf) ** 2 + (l * kf) ** 2), edges[0], edges[-1], nb)
                if b < 0:
                    continue
                mult = 1.0 if (l == 0 or l == nyq) else 2.0
                rows_num[i, b] += mult * values[fi * fi + fj * fj + l * l]
                rows_den[i, b] += mult
    for i in range(n):
        for b in range(nb):
            num[b] += rows_num[i, b]
            den[b] += rows_den[i, b]


def bin_modes(n: int, box: float, edges: np.ndarray, weights_of_k) -> np.ndarray:
    """Average of ``weights_of_k(|k|)`` over the modes of an n^3 mesh in each
    bin, with the same counting as the estimator (used for the linear
    spectrum at the binned k, so the boost has no binning bias).

    Modes with the same i^2 + j^2 + l^2 share |k|: ``weights_of_k`` is evaluated once
    per squared integer wavevector (at most 3 n^2 / 4 values), never per mode."""
    edges = np.asarray(edges, dtype=float)
    kf = 2.0 * np.pi / box
    m = np.arange(3 * (n // 2) ** 2 + 1)
    k_m = kf * np.sqrt(m)
    # Margins so that a mode whose float |k| rounds into a bin always has its value.
    inside = (k_m >= edges[0] * (1 - 1e-9)) & (k_m <= edges[-1] * (1 + 1e-9))
    values = np.zeros(m.size)
    values[inside] = weights_of_k(k_m[inside])
    num, den = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    _bin_lattice(n, kf, edges, values, num, den)
    with np.errstate(invalid="ignore"):
        return num / den


class PowerMeter:
    """Reusable P(k) estimator on an n^3 mesh (buffers and FFT plans made once).

    ``mesh`` lends an existing n^3 :class:`FFTMesh` (the force solver's, whose
    contents matter only inside a force evaluation) instead of allocating one."""

    def __init__(self, n: int, box: float, edges: np.ndarray, scheme: str = "cic", interlacing: bool = True,
                 threads: int = 1, mesh: FFTMesh | None = None):
        import pyfftw

        self.n, self.box, self.scheme, self.interlacing = n, float(box), scheme, interlacing
        self.edges = np.asarray(edges, dtype=float)
        if np.any(np.diff(self.edges) <= 0) or not np.allclose(np.diff(self.edges), self.edges[1] - self.edges[0]):
            raise ValueError("k bin edges must be increasing and evenly spaced")
        if mesh is not None and mesh.n != n:
            raise ValueError(f"mesh: the lent FFTMesh has n = {mesh.n}, the meter needs n = {n}")
        self.mesh = mesh if mesh is not None else FFTMesh(n, threads)
        self.other = pyfftw.empty_aligned(self.mesh.cplx.shape, dtype="complex64") if interlacing else None
        self.wfull, self.whalf = window(n, scheme)
        kf = 2.0 * np.pi / box
        self.k_full = np.fft.fftfreq(n, d=1.0 / n) * kf
        self.k_half = np.abs(self.k_full[: n // 2 + 1])
        # The shifted mesh sampled the density at x - dx/2: undo with exp(+i k . dx/2 (1,1,1)),
        # one factor per axis.
        dx = box / n
        self.phase_full = np.exp(0.5j * dx * self.k_full)
        self.phase_half = np.exp(0.5j * dx * self.k_half)
        self._no_other = np.zeros((0, 0, 0), np.complex64)

    def __call__(self, pos: np.ndarray, subtract_shot_noise: bool = True) -> PowerSpectrum:
        n, box = self.n, self.box
        npart = pos.shape[0]
        if self.interlacing:
            deposit(pos, box, self.mesh.real, self.scheme, shift=0.5)
            self.other[...] = self.mesh.forward()
        deposit(pos, box, self.mesh.real, self.scheme)
        field_k = self.mesh.forward()
        nb = len(self.edges) - 1
        sum_k, sum_p, count = np.zeros(nb), np.zeros(nb), np.zeros(nb)
        _bin(field_k, self.k_full, self.k_half, self.edges, self.wfull, self.whalf, self.phase_full,
             self.phase_half, self.other if self.interlacing else self._no_other, sum_k, sum_p, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            k_mean = sum_k / count
            # counts -> delta: divide by mean count per cell; DFT -> P: V / n^6.
            mean = npart / n**3
            pk = sum_p / count / mean**2 * box**3 / n**6
        shot = box**3 / npart
        if subtract_shot_noise:
            pk = pk - shot
        return PowerSpectrum(k=k_mean, pk=pk, nmodes=count, shot_noise=shot)
