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
from numba import njit

from .mesh import FFTMesh, deposit, window

__all__ = ["PowerSpectrum", "PowerMeter", "bin_modes"]


@dataclass(frozen=True)
class PowerSpectrum:
    """k (nk,) mode-weighted mean [h/Mpc]; pk (nk,) [(Mpc/h)^3]; nmodes (nk,)."""

    k: np.ndarray
    pk: np.ndarray
    nmodes: np.ndarray
    shot_noise: float


@njit(cache=True)
def _bin(field_k, k_full, k_half, edges, wfull, whalf, shift_phase, other_k, sum_k, sum_p, count):
    """Accumulate |delta_k|^2 / W^2 into shells; r2c planes 0 and n/2 count once."""
    n0, n1, n2 = field_k.shape
    nb = edges.shape[0] - 1
    kmin, kmax = edges[0], edges[-1]
    dk = (kmax - kmin) / nb
    nyq = n2 - 1 if (n0 % 2 == 0) else -1
    for i in range(n0):
        for j in range(n1):
            for l in range(n2):
                kk = np.sqrt(k_full[i] ** 2 + k_full[j] ** 2 + k_half[l] ** 2)
                if kk < kmin or kk >= kmax:
                    continue
                b = int((kk - kmin) / dk)
                if b >= nb:
                    continue
                v = field_k[i, j, l]
                if shift_phase:
                    # Average with the half-cell-shifted mesh, phase-corrected.
                    ph = 0.5 * (k_full[i] + k_full[j] + k_half[l]) * shift_phase
                    c, s = np.cos(ph), np.sin(ph)
                    o = other_k[i, j, l]
                    v = 0.5 * (v + complex(o.real * c - o.imag * s, o.real * s + o.imag * c))
                w = wfull[i] * wfull[j] * whalf[l]
                p = (v.real * v.real + v.imag * v.imag) / (w * w)
                mult = 1.0 if (l == 0 or l == nyq) else 2.0
                sum_k[b] += mult * kk
                sum_p[b] += mult * p
                count[b] += mult


def bin_modes(n: int, box: float, edges: np.ndarray, weights_of_k) -> np.ndarray:
    """Average of ``weights_of_k(|k|)`` over the modes of an n^3 mesh in each
    bin, with the same counting as the estimator (used for the linear
    spectrum at the binned k, so the boost has no binning bias)."""
    kf = 2.0 * np.pi / box
    k = np.fft.fftfreq(n, d=1.0 / n) * kf
    kz = np.abs(k[: n // 2 + 1])
    kk = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kz[None, None, :] ** 2)
    mult = np.full(kz.shape, 2.0)
    mult[0] = 1.0
    if n % 2 == 0:
        mult[-1] = 1.0
    mult = np.broadcast_to(mult, kk.shape)
    sel = (kk >= edges[0]) & (kk < edges[-1])
    kk, mult = kk[sel], mult[sel]
    idx = np.minimum(((kk - edges[0]) / (edges[1] - edges[0])).astype(np.int64), len(edges) - 2)
    # Many modes share |k|: evaluate the weight function on unique values only.
    uk, inv = np.unique(kk, return_inverse=True)
    vals = weights_of_k(uk)[inv]
    num = np.bincount(idx, weights=mult * vals, minlength=len(edges) - 1)
    den = np.bincount(idx, weights=mult, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore"):
        return num / den


class PowerMeter:
    """Reusable P(k) estimator on an n^3 mesh (buffers and FFT plans made once)."""

    def __init__(self, n: int, box: float, edges: np.ndarray, scheme: str = "cic", interlacing: bool = True,
                 threads: int = 1):
        import pyfftw

        self.n, self.box, self.scheme, self.interlacing = n, float(box), scheme, interlacing
        self.edges = np.asarray(edges, dtype=float)
        if np.any(np.diff(self.edges) <= 0) or not np.allclose(np.diff(self.edges), self.edges[1] - self.edges[0]):
            raise ValueError("k bin edges must be increasing and evenly spaced")
        self.mesh = FFTMesh(n, threads)
        self.other = pyfftw.empty_aligned(self.mesh.cplx.shape, dtype="complex64") if interlacing else None
        self.wfull, self.whalf = window(n, scheme)
        kf = 2.0 * np.pi / box
        self.k_full = np.fft.fftfreq(n, d=1.0 / n) * kf
        self.k_half = np.abs(self.k_full[: n // 2 + 1])

    def __call__(self, pos: np.ndarray, subtract_shot_noise: bool = True) -> PowerSpectrum:
        n, box = self.n, self.box
        npart = pos.shape[0]
        dx = box / n
        if self.interlacing:
            deposit(pos, box, self.mesh.real, self.scheme, shift=0.5)
            self.other[...] = self.mesh.forward()
        deposit(pos, box, self.mesh.real, self.scheme)
        field_k = self.mesh.forward()
        nb = len(self.edges) - 1
        sum_k, sum_p, count = np.zeros(nb), np.zeros(nb), np.zeros(nb)
        other = self.other if self.interlacing else field_k
        # The shifted mesh sampled the density at x - dx/2: undo with exp(+i k . dx/2 (1,1,1)).
        _bin(field_k, self.k_full, self.k_half, self.edges, self.wfull, self.whalf,
             dx if self.interlacing else 0.0, other, sum_k, sum_p, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            k_mean = sum_k / count
            # counts -> delta: divide by mean count per cell; DFT -> P: V / n^6.
            mean = npart / n**3
            pk = sum_p / count / mean**2 * box**3 / n**6
        shot = box**3 / npart
        if subtract_shot_noise:
            pk = pk - shot
        return PowerSpectrum(k=k_mean, pk=pk, nmodes=count, shot_noise=shot)
