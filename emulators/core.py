"""The model shared by all emulators: PCA of a field Y(z, k) plus an MLP.

Y is tabulated on a training grid z (nz,) x k (nk,) for many cosmologies.
It is compressed by PCA and an MLP maps the parameters (box scaled to
[-1, 1]) to the PCA coefficients, divided by one common output scale so that
the training loss is the squared error of Y itself.  Two layouts:

* ``joint``  one PCA of the flattened (nz * nk) field and one network
  (the default: on EuclidEmulator2 boosts it was as accurate as one network
  per redshift in a fifth of the training time, see emulators/training.py);
* ``per_z``  one PCA and one network per redshift, stacked into one set of
  (nz, ...) weight arrays so prediction is still a few matrix products.

Between grid points Y is interpolated with cubic splines in ln k and in
ln(1 + z) (the linear growth is close to a power of a = 1/(1+z)).  Splines
are linear in the tabulated values, so for a requested (z, k) grid the
interpolation is a pair of matrices; they are folded into the PCA basis once
per grid and cached, which makes repeated evaluation on the same grid (the
sampling use case) cost one small network pass and one matrix product.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .network import MLP
from .params import ParameterSpace

__all__ = ["PCANetwork", "MODES", "spline_matrix", "as_grid"]

MODES = ("joint", "per_z")
_CACHE_SIZE = 8
# Relative slack on the grid edges (values read back from text).
_EDGE_TOL = 1e-9


def spline_matrix(x_old: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """(len(x_new), len(x_old)) matrix M with M @ y = cubic spline of y at x_new.

    Not-a-knot cubic for four or more nodes, the interpolating parabola or
    line for three or two, the constant for one."""
    from scipy.interpolate import CubicSpline

    n = x_old.size
    if n == 1:
        return np.ones((x_new.size, 1))
    return CubicSpline(x_old, np.eye(n), axis=0)(x_new)


def as_grid(name: str, values: Any, lo: float, hi: float, unit: str, who: str) -> np.ndarray:
    """A scalar or 1-d array of finite values inside [lo, hi], as a 1-d float array."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        if arr.ndim > 1:
            raise ValueError(f"{who}: {name} must be a scalar or a 1-d array, got shape {arr.shape}")
        arr = arr.reshape(1)
    if arr.size == 0:
        raise ValueError(f"{who}: {name} is empty")
    slack = _EDGE_TOL * max(abs(hi), abs(lo), 1.0)
    a_min, a_max = arr.min(), arr.max()
    # NaN fails both comparisons, so the common valid case costs two reductions.
    if lo - slack <= a_min and a_max <= hi + slack:
        return arr if lo <= a_min and a_max <= hi else np.clip(arr, lo, hi)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{who}: {name} must be finite")
    bad = arr[(arr < lo - slack) | (arr > hi + slack)]
    raise ValueError(f"{who}: {name}={bad[0]:g}{unit} is outside the emulator's trained range "
                     f"[{lo:g}, {hi:g}]{unit}")


@dataclass(frozen=True)
class PCANetwork:
    """PCA + MLP model of a field Y(z, k; theta) (see the module docstring).

    space         varied parameters, their box, fixed parameters
    z             (nz,) training redshifts, increasing
    k             (nk,) training wavenumbers [h/Mpc], increasing
    mode          'joint' (B = 1 block of m = nz * nk values) or 'per_z' (B = nz blocks of m = nk)
    pca_mean      (B, m) mean of Y over the training cosmologies
    pca_basis     (B, c, m) orthonormal principal components (zero rows pad blocks
                  with fewer than c components)
    n_components  (B,) components kept per block
    output_scale  (B,) network output x scale = PCA coefficient
    network       MLP from the unit-box parameters to the coefficients (stacked over B)
    """

    space: ParameterSpace
    z: np.ndarray
    k: np.ndarray
    mode: str
    pca_mean: np.ndarray
    pca_basis: np.ndarray
    n_components: np.ndarray
    output_scale: np.ndarray
    network: MLP
    _cache: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self):
        z, k = np.asarray(self.z, float), np.asarray(self.k, float)
        if z.ndim != 1 or k.ndim != 1 or not z.size or not k.size:
            raise ValueError(f"emulator grid: z and k must be non-empty 1-d arrays, got shapes {z.shape}, {k.shape}")
        if np.any(np.diff(z) <= 0) or np.any(np.diff(k) <= 0) or k[0] <= 0 or z[0] <= -1:
            raise ValueError("emulator grid: z and k must be strictly increasing, k > 0, z > -1")
        if self.mode not in MODES:
            raise ValueError(f"emulator mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        blocks, m = (1, z.size * k.size) if self.mode == "joint" else (z.size, k.size)
        c = self.pca_basis.shape[1] if self.pca_basis.ndim == 3 else -1
        expect = {"pca_mean": (blocks, m), "pca_basis": (blocks, c, m), "n_components": (blocks,),
                  "output_scale": (blocks,)}
        for name, shape in expect.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"emulator {name}: shape {np.shape(getattr(self, name))}, expected {shape}")
        net = self.network
        if net.n_in != len(self.space.names) or net.n_out != c:
            raise ValueError(f"emulator network: maps {net.n_in} inputs to {net.n_out} outputs, expected "
                             f"{len(self.space.names)} parameters to {c} components")
        if net.weights[0].shape[:-2] != (blocks,):
            raise ValueError(f"emulator network: stacked over {net.weights[0].shape[:-2]}, expected ({blocks},)")
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "k", k)
        # Folding the output scale into the basis saves a multiply per call.
        object.__setattr__(self, "_scaled_basis", self.pca_basis * self.output_scale[:, None, None])
        # A stack of one network runs faster as plain 2-d matrix products.
        single = MLP(tuple(w[0] for w in net.weights), tuple(b[0] for b in net.biases), net.activation) \
            if blocks == 1 else None
        object.__setattr__(self, "_single_net", single)

    @property
    def z_range(self) -> tuple[float, float]:
        return float(self.z[0]), float(self.z[-1])

    @property
    def k_range(self) -> tuple[float, float]:
        return float(self.k[0]), float(self.k[-1])

    # -- evaluation -------------------------------------------------------
    def coefficients(self, theta: np.ndarray) -> np.ndarray:
        """(B, n, c) scaled PCA coefficients for (n, p) parameter values."""
        x = self.space.to_unit(theta)
        if self._single_net is not None:
            return self._single_net(x)[None]
        return self.network(x)

    def training_grid(self, theta: np.ndarray) -> np.ndarray:
        """Y on the training grid, (n, nz, nk), for (n, p) parameter values."""
        coeff = self.coefficients(theta)
        y = self.pca_mean[:, None, :] + coeff @ self._scaled_basis
        n = theta.shape[0]
        if self.mode == "joint":
            return y[0].reshape(n, self.z.size, self.k.size)
        return y.transpose(1, 0, 2)

    def _operator(self, z: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Mean and basis with the interpolation to (z, k) folded in (cached)."""
        key = (z.tobytes(), k.tobytes())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        mk = spline_matrix(np.log(self.k), np.log(k))          # (nk', nk)
        mz = spline_matrix(np.log1p(self.z), np.log1p(z))      # (nz', nz)
        same_z = z.size == self.z.size and np.array_equal(z, self.z)
        if self.mode == "joint":
            nz, nk = self.z.size, self.k.size
            basis = self._scaled_basis[0].reshape(-1, nz, nk)
            mean = self.pca_mean[0].reshape(nz, nk)
            basis = np.einsum("az,czk,bk->cab", mz, basis, mk, optimize=True).reshape(basis.shape[0], -1)
            mean = (mz @ mean @ mk.T).reshape(-1)
            entry = (np.ascontiguousarray(mean), np.ascontiguousarray(basis), None)
        else:
            basis = np.ascontiguousarray(self._scaled_basis @ mk.T)          # (nz, c, nk')
            mean = self.pca_mean @ mk.T                                      # (nz, nk')
            entry = (mean, basis, None if same_z else np.ascontiguousarray(mz))
        # Single dict operations only (atomic under the GIL), so threads may share an emulator.
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = entry
        return entry

    def evaluate(self, theta: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Y at (n, p) parameters on the grid z (nz',) x k (nk',): (n, nz', nk').

        z and k must lie inside the training ranges (see :func:`as_grid`)."""
        mean, basis, mz = self._operator(z, k)
        coeff = self.coefficients(theta)
        n = theta.shape[0]
        if self.mode == "joint":
            return (mean + coeff[0] @ basis).reshape(n, z.size, k.size)
        y = mean[:, None, :] + coeff @ basis                                   # (nz, n, nk')
        if mz is None:
            return y.transpose(1, 0, 2)
        return np.einsum("az,znk->nak", mz, y, optimize=True)
