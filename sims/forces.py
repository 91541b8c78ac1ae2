"""Particle-mesh gravity: density on the mesh -> potential by a Fourier-space Poisson solve ->
finite-difference gradient in real space -> force at particles.

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


@njit(parallel=True, fastmath=True, cache=True)
def _inverse_laplacian(field_k, k_full, k_half, w_full, w_half, scale):
    """In place: field_k <- scale * field_k / (k^2 W(k)^2), the Fourier transform of
    the potential -nabla^-2 delta [(Mpc/h)^2], deconvolved for assignment and
    interpolation; zero at k = 0."""
    n0, n1, n2 = field_k.shape
    tiny = 1e-300
    for i in prange(n0):
        for j in range(n1):
            kij = k_full[i] * k_full[i] + k_full[j] * k_full[j]
            wij = w_full[i] * w_full[j]
            # Branch-free inner loop (it vectorises); the k = 0 mode is zeroed below.
            for l in range(n2):
                w = wij * w_half[l]
                field_k[i, j, l] *= scale / (max(kij + k_half[l] * k_half[l], tiny) * w * w)
    field_k[0, 0, 0] = 0.0


@njit(parallel=True, fastmath=True, cache=True)
def _difference_gradient(phi, g, c1, c2, up1, dn1, up2, dn2):
    """g[d] = c1 (phi(x + h e_d) - phi(x - h e_d)) + c2 (phi(x + 2h e_d) - phi(x - 2h e_d))
    on the periodic mesh (up1[i] = (i + 1) % n, ...): the real-space form of
    derivative_kernel's 'fd2' (c2 = 0) and 'fd4' stencils, exactly."""
    n = phi.shape[0]
    for i in prange(n):
        for j in range(n):
            for l in range(n):
                g[0, i, j, l] = c1 * (phi[up1[i], j, l] - phi[dn1[i], j, l]) \
                    + c2 * (phi[up2[i], j, l] - phi[dn2[i], j, l])
                g[1, i, j, l] = c1 * (phi[i, up1[j], l] - phi[i, dn1[j], l]) \
                    + c2 * (phi[i, up2[j], l] - phi[i, dn2[j], l])
                g[2, i, j, l] = c1 * (phi[i, j, up1[l]] - phi[i, j, dn1[l]]) \
                    + c2 * (phi[i, j, up2[l]] - phi[i, j, dn2[l]])


@njit(inline="always")
def _axis_gradient(a0, a1, a2, a3, a4, a5, c1, c2):
    """The stencil at the two cells x0 and x0 + 1 from phi at x0-2 ... x0+3 (a0 ... a5)."""
    return c1 * (a3 - a1) + c2 * (a4 - a0), c1 * (a4 - a2) + c2 * (a5 - a1)


@njit(parallel=True, fastmath=True, cache=True)
def _difference_gradient_cic(phi, pos, inv_dx, c1, c2, wrap_x, wrap_y, wrap_z, out):
    """out[p] = CIC interpolation of the stencil gradient of ``phi`` at particle p: the
    same numbers as _difference_gradient followed by CIC interpolation, without the
    three force meshes (3 n^3 floats never written or read back).

    ``wrap_x[i + 2]`` is (i mod n) n^2 for i in [-2, n + 3], ``wrap_y`` the same times
    n, ``wrap_z`` times 1: flat offsets into ``phi``, unsigned so that no load pays
    for a negative-index check (7 % of the kernel)."""
    n = phi.shape[0]
    flat = phi.reshape(n * n * n)
    for p in prange(pos.shape[0]):
        ux, uy, uz = pos[p, 0] * inv_dx, pos[p, 1] * inv_dx, pos[p, 2] * inv_dx
        ix, iy, iz = int(np.floor(ux)), int(np.floor(uy)), int(np.floor(uz))
        dx, dy, dz = ux - ix, uy - iy, uz - iz
        wx = (1.0 - dx, dx)
        wy = (1.0 - dy, dy)
        wz = (1.0 - dz, dz)
        ix, iy, iz = ix % n, iy % n, iz % n
        x = (wrap_x[ix], wrap_x[ix + 1], wrap_x[ix + 2], wrap_x[ix + 3], wrap_x[ix + 4], wrap_x[ix + 5])
        y = (wrap_y[iy], wrap_y[iy + 1], wrap_y[iy + 2], wrap_y[iy + 3], wrap_y[iy + 4], wrap_y[iy + 5])
        z = (wrap_z[iz], wrap_z[iz + 1], wrap_z[iz + 2], wrap_z[iz + 3], wrap_z[iz + 4], wrap_z[iz + 5])
        gx = 0.0
        gy = 0.0
        gz = 0.0
        for b in range(2):
            for c in range(2):
                # x-component at (x0, y_b, z_c) and (x1, y_b, z_c)
                o = y[2 + b] + z[2 + c]
                g0, g1 = _axis_gradient(flat[x[0] + o], flat[x[1] + o], flat[x[2] + o],
                                        flat[x[3] + o], flat[x[4] + o], flat[x[5] + o], c1, c2)
                gx += wy[b] * wz[c] * (wx[0] * g0 + wx[1] * g1)
                # y-component at (x_b, y0, z_c) and (x_b, y1, z_c)
                o = x[2 + b] + z[2 + c]
                g0, g1 = _axis_gradient(flat[y[0] + o], flat[y[1] + o], flat[y[2] + o],
                                        flat[y[3] + o], flat[y[4] + o], flat[y[5] + o], c1, c2)
                gy += wx[b] * wz[c] * (wy[0] * g0 + wy[1] * g1)
                # z-component at (x_b, y_c, z0) and (x_b, y_c, z1)
                o = x[2 + b] + y[2 + c]
                g0, g1 = _axis_gradient(flat[z[0] + o], flat[z[1] + o], flat[z[2] + o],
                                        flat[z[3] + o], flat[z[4] + o], flat[z[5] + o], c1, c2)
                gz += wx[b] * wy[c] * (wz[0] * g0 + wz[1] * g1)
        out[p, 0] = gx
        out[p, 1] = gy
        out[p, 2] = gz
    return out


# Real-space stencil weights (c1, c2) in units of 1/h: fd2 = (f(x+h) - f(x-h)) / 2h,
# fd4 = (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h.
_STENCILS = {"fd2": (0.5, 0.0), "fd4": (8.0 / 12.0, -1.0 / 12.0)}


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

    Buffers (one real mesh, one complex mesh and, unless CIC with a difference
    stencil, three force meshes) and FFT plans are made once.  With the
    finite-difference gradients ('fd2', 'fd4') each call costs one deposit, one r2c
    FFT, one c2r FFT (the potential) and the difference stencil in real space, which
    is the same operator as multiplying by derivative_kernel in Fourier space: two
    FFTs instead of four.  'exact' (i k) has no real-space stencil and keeps three
    c2r FFTs, one per component.
    """

    def __init__(self, n: int, box: float, n_particles: int, scheme: str = "cic", threads: int = 1,
                 deconvolve: bool = True, gradient: str = "fd4", deconvolve_kmax: float = 0.5):
        import pyfftw

        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")
        self.n, self.box, self.scheme, self.n_particles = n, float(box), scheme, int(n_particles)
        self.gradient = gradient
        self.mesh = FFTMesh(n, threads)
        # CIC with a difference stencil interpolates the gradient straight from the
        # potential (_difference_gradient_cic): no force meshes at all.
        self._fused = gradient != "exact" and scheme == "cic"
        self.g = None if self._fused else pyfftw.empty_aligned((3, n, n, n), dtype="float32")
        if deconvolve:
            self.w_full, self.w_half = capped_window(n, scheme, deconvolve_kmax)
        else:
            self.w_full, self.w_half = np.ones(n), np.ones(n // 2 + 1)
        self.k_full = np.fft.fftfreq(n, d=1.0 / n) * (2.0 * np.pi / box)
        self.k_half = np.abs(self.k_full[: n // 2 + 1])
        if gradient == "exact":
            self.delta_k = pyfftw.empty_aligned(self.mesh.cplx.shape, dtype="complex64")
            self._bwd = [plan_fft(self.mesh.cplx, self.g[d], threads, backward=True) for d in range(3)]
        else:
            i = np.arange(n)
            self._shifts = tuple((i + s) % n for s in (1, -1, 2, -2))
            wrap = (np.arange(-2, n + 4) % n).astype(np.uint64)
            self._wrap = (wrap * np.uint64(n * n), wrap * np.uint64(n), wrap)

    def potential(self, pos: np.ndarray) -> np.ndarray:
        """phi = -nabla^-2 delta on the mesh [(Mpc/h)^2], deconvolved; in ``mesh.real``."""
        deposit(pos, self.box, self.mesh.real, self.scheme)
        # delta = counts * n^3 / N - 1 and the c2r transform is unnormalised (x n^3).
        _inverse_laplacian(self.mesh.forward(), self.k_full, self.k_half, self.w_full, self.w_half,
                           1.0 / self.n_particles)
        return self.mesh.backward()

    def __call__(self, pos: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """g = -grad nabla^-2 delta at each particle, shape (N, 3) [Mpc/h]."""
        if self.gradient == "exact":
            self._fourier_gradient(pos)
            return interpolate(self.g, pos, self.box, self.scheme, out)
        c1, c2 = _STENCILS[self.gradient]
        h = self.box / self.n
        phi = self.potential(pos)
        if self._fused:
            if out is None:
                out = np.empty((pos.shape[0], 3), dtype=phi.dtype)
            return _difference_gradient_cic(phi, pos, self.n / self.box, c1 / h, c2 / h, *self._wrap, out)
        _difference_gradient(phi, self.g, c1 / h, c2 / h, *self._shifts)
        return interpolate(self.g, pos, self.box, self.scheme, out)

    def _fourier_gradient(self, pos: np.ndarray) -> None:
        deposit(pos, self.box, self.mesh.real, self.scheme)
        self.delta_k[...] = self.mesh.forward()
        for d in range(3):
            apply_kernel(self.delta_k, self.mesh.cplx, d, self.box, self.n, self.w_full, self.w_half,
                         1.0 / self.n_particles, self.gradient)
            self._bwd[d].execute()
