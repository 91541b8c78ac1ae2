"""Particle-mesh gravity: density on the mesh -> Fourier-space Poisson -> force at particles.

The PM force returned is the dimensionless field

    g(x) = -grad nabla^-2 delta(x)      [Mpc/h]

so that the comoving equation of motion reads dp/da = 3/2 Omega_cb0 g / (a^2 E(a))
(see sims/cola.py).  For a linear field g equals the Zel'dovich displacement
D1 psi1, which is what makes the COLA residual force small.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .mesh import FFTMesh, interpolate, deposit, plan_fft, window

__all__ = ["PMForce", "apply_kernel"]


@njit(parallel=True, fastmath=True, cache=True)
def _gradient_inverse_laplacian(delta_k, out_k, comp, k_full, k_half, kd_full, kd_half, w_full, w_half, scale):
    """out_k = scale * i k_comp delta_k / (k^2 W(k)^2): the Fourier transform of
    -grad nabla^-2 delta, deconvolved for assignment and interpolation."""
    n0, n1, n2 = delta_k.shape
    for i in prange(n0):
        for j in range(n1):
            for l in range(n2):
                k2 = k_full[i] * k_full[i] + k_full[j] * k_full[j] + k_half[l] * k_half[l]
                if k2 == 0.0:
                    out_k[i, j, l] = 0.0
                    continue
                if comp == 0:
                    kd = kd_full[i]
                elif comp == 1:
                    kd = kd_full[j]
                else:
                    kd = kd_half[l]
                w = w_full[i] * w_full[j] * w_half[l]
                fac = scale * kd / (k2 * w * w)
                v = delta_k[i, j, l]
                out_k[i, j, l] = complex(-fac * v.imag, fac * v.real)


GRADIENTS = ("exact", "fd2", "fd4")


def derivative_kernel(n: int, box: float, gradient: str = "fd4") -> np.ndarray:
    """Effective wavenumber of the gradient along one axis [h/Mpc], fftfreq order.

    'exact' is i k (zero at Nyquist); 'fd2' and 'fd4' are the 2- and 4-point
    central differences, sin(k h)/h and (8 sin(k h) - sin(2 k h)) / (6 h),
    which vanish smoothly at the Nyquist frequency.  On a mesh finer than the
    particle lattice, near-Nyquist density modes are lattice aliases, and an
    exact gradient turns them into O(1) force errors on the lattice sites;
    the finite-difference kernels suppress them (as in FastPM)."""
    h = box / n
    k = np.fft.fftfreq(n, d=1.0 / n) * (2.0 * np.pi / box)
    if gradient == "exact":
        kd = k.copy()
        if n % 2 == 0:
            kd[n // 2] = 0.0
        return kd
    if gradient == "fd2":
        return np.sin(k * h) / h
    if gradient == "fd4":
        return (8.0 * np.sin(k * h) - np.sin(2.0 * k * h)) / (6.0 * h)
    raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")


def apply_kernel(delta_k, out_k, comp, box, n, w_full=None, w_half=None, scale=1.0, gradient="fd4"):
    """Fill ``out_k`` with component ``comp`` of -grad nabla^-2 applied to ``delta_k``."""
    kf = 2.0 * np.pi / box
    k_full = np.fft.fftfreq(n, d=1.0 / n) * kf
    k_half = np.abs(k_full[: n // 2 + 1])
    kd_full = derivative_kernel(n, box, gradient)
    kd_half = kd_full[: n // 2 + 1].copy()
    if n % 2 == 0:
        kd_half[n // 2] = abs(kd_half[n // 2])
    if w_full is None:
        w_full = np.ones(n)
        w_half = np.ones(n // 2 + 1)
    _gradient_inverse_laplacian(delta_k, out_k, comp, k_full, k_half, kd_full, kd_half, w_full, w_half, scale)
    return out_k


def capped_window(n: int, scheme: str, kmax_frac: float = 0.5):
    """Assignment window per axis, held constant beyond ``kmax_frac`` of the mesh Nyquist.

    Dividing by the full window (twice: deposit and interpolation) restores
    the force on resolved scales but multiplies near-Nyquist modes by up to
    (pi/2)^(2p) per axis; on a mesh finer than the particle lattice those
    modes are lattice aliases, so the correction is frozen past kmax_frac."""
    w_full, _ = window(n, scheme)
    freq = np.abs(np.fft.fftfreq(n))  # in units of the sampling frequency; Nyquist = 0.5
    w_cap = np.sinc(kmax_frac * 0.5) ** (len(scheme) and {"ngp": 1, "cic": 2, "tsc": 3, "pcs": 4}[scheme])
    w_full = np.where(freq <= kmax_frac * 0.5, w_full, w_cap)
    return w_full, w_full[: n // 2 + 1].copy()


class PMForce:
    """Reusable PM force solver on an ``n^3`` mesh for ``n_particles`` unit masses.

    Buffers (one real mesh, two complex meshes, three force meshes) and FFT
    plans are made once; each call costs one deposit, one r2c FFT, three c2r
    FFTs and one three-component interpolation.
    """

    def __init__(self, n: int, box: float, n_particles: int, scheme: str = "cic", threads: int = 1,
                 deconvolve: bool = True, gradient: str = "fd4", deconvolve_kmax: float = 0.5):
        import pyfftw

        self.n, self.box, self.scheme, self.n_particles = n, float(box), scheme, int(n_particles)
        self.gradient = gradient
        self.mesh = FFTMesh(n, threads)
        self.delta_k = pyfftw.empty_aligned(self.mesh.cplx.shape, dtype="complex64")
        self.g = pyfftw.empty_aligned((3, n, n, n), dtype="float32")
        self._bwd = [plan_fft(self.mesh.cplx, self.g[d], threads, backward=True) for d in range(3)]
        if deconvolve:
            self.w_full, self.w_half = capped_window(n, scheme, deconvolve_kmax)
        else:
            self.w_full, self.w_half = np.ones(n), np.ones(n // 2 + 1)

    def density_k(self, pos: np.ndarray) -> np.ndarray:
        """FFT of the particle number per cell (unnormalised); kept in ``delta_k``."""
        deposit(pos, self.box, self.mesh.real, self.scheme)
        self.delta_k[...] = self.mesh.forward()
        return self.delta_k

    def __call__(self, pos: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """g = -grad nabla^-2 delta at each particle, shape (N, 3) [Mpc/h]."""
        self.density_k(pos)
        # delta = counts * n^3 / N - 1 and the c2r transform is unnormalised (x n^3).
        scale = 1.0 / self.n_particles
        for d in range(3):
            apply_kernel(self.delta_k, self.mesh.cplx, d, self.box, self.n, self.w_full, self.w_half, scale,
                         self.gradient)
            self._bwd[d].execute()
        return interpolate(self.g, pos, self.box, self.scheme, out)
