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

__all__ = ["PCANetwork", "MODES", "spline_matrix", "as_grid", "summary"]

MODES = ("joint", "per_z")
_CACHE_SIZE = 8
# Up to this many rows the joint model interpolates Y separably (see _separable);
# larger batches use the folded basis, a single well-shaped matrix product.
_SEPARABLE_MAX_ROWS = 4
_FOLDED_WEIGHT = 4.0
# A folded basis larger than this is memory-bound for a few rows; they read a float32 copy
# (2x faster: 35 -> 20 us for the EE2 surrogate on 40 z x 200 k).  Its rounding, ~3e-7 of
# ln Y with 21 components, is three orders below any emulator's own error.
_FOLDED_F32_BYTES = 1 << 20
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
        # A stack of one network runs faster as plain 2-d matrix products, and with
        # the box-to-[-1, 1] map folded into its first layer it takes theta directly.
        single = _fold_unit_map(net, self.space) if blocks == 1 else None
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
        if self._single_net is not None:
            return self._single_net(theta)[None]
        return self.network(self.space.to_unit(theta))

    def operator(self, k, z, who: str) -> "_GridOperator":
        """The cached operator of a requested grid, validated (see :func:`as_grid`) on first use.

        The cache is keyed on the raw bytes the caller gave, so a grid asked for again
        (the sampling case) skips validation; a grid that fails it is never cached."""
        if type(k) is np.ndarray and type(z) is np.ndarray and k.dtype == np.float64 == z.dtype \
                and k.ndim == 1 == z.ndim:
            hit = self._cache.get((b"raw", z.tobytes(), k.tobytes()))
            if hit is not None:
                return hit
            raw = (b"raw", z.tobytes(), k.tobytes())
        else:
            raw = None
        k_arr = as_grid("k", k, *self.k_range, " h/Mpc", who)
        z_arr = as_grid("z", z, *self.z_range, "", who)
        op = self._operator(z_arr, k_arr)
        if raw is not None:
            if len(self._cache) >= 2 * _CACHE_SIZE:
                self._cache.clear()
            self._cache[raw] = op
        return op

    def training_grid(self, theta: np.ndarray) -> np.ndarray:
        """Y on the training grid, (n, nz, nk), for (n, p) parameter values."""
        coeff = self.coefficients(theta)
        y = self.pca_mean[:, None, :] + coeff @ self._scaled_basis
        n = theta.shape[0]
        if self.mode == "joint":
            return y[0].reshape(n, self.z.size, self.k.size)
        return y.transpose(1, 0, 2)

    def _operator(self, z: np.ndarray, k: np.ndarray) -> "_GridOperator":
        """Interpolation to (z, k), both separable and folded into the PCA basis (cached)."""
        key = (z.tobytes(), k.tobytes())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        mk = spline_matrix(np.log(self.k), np.log(k))          # (nk', nk)
        mz = spline_matrix(np.log1p(self.z), np.log1p(z))      # (nz', nz)
        same_z = z.size == self.z.size and np.array_equal(z, self.z)
        same_k = k.size == self.k.size and np.array_equal(k, self.k)
        if self.mode == "joint":
            nz, nk = self.z.size, self.k.size
            basis = self._scaled_basis[0].reshape(-1, nz, nk)
            mean = self.pca_mean[0].reshape(nz, nk)
            basis = np.einsum("az,czk,bk->cab", mz, basis, mk, optimize=True).reshape(basis.shape[0], -1)
            mean = (mz @ mean @ mk.T).reshape(-1)
            basis = np.ascontiguousarray(basis)
            entry = _GridOperator(z, k, np.ascontiguousarray(mean), basis, None,
                                  None if same_z else np.ascontiguousarray(mz),
                                  None if same_k else np.ascontiguousarray(mk.T),
                                  basis.astype(np.float32) if basis.nbytes > _FOLDED_F32_BYTES else None)
        else:
            basis = np.ascontiguousarray(self._scaled_basis @ mk.T)          # (nz, c, nk')
            mean = self.pca_mean @ mk.T                                      # (nz, nk')
            entry = _GridOperator(z, k, mean, basis, None if same_z else np.ascontiguousarray(mz), None, None)
        # Single dict operations only (atomic under the GIL), so threads may share an emulator.
        if len(self._cache) >= 2 * _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = entry
        return entry

    def evaluate(self, theta: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Y at (n, p) parameters on the grid z (nz',) x k (nk',): (n, nz', nk').

        z and k must lie inside the training ranges (see :func:`as_grid`)."""
        return self.apply(theta, self._operator(z, k))

    def apply(self, theta: np.ndarray, op: "_GridOperator") -> np.ndarray:
        """Y at (n, p) parameters on the grid of ``op`` (from :meth:`operator`): (n, nz', nk')."""
        z, k = op.z, op.k
        coeff = self.coefficients(theta)
        n = theta.shape[0]
        if self.mode == "joint":
            if n <= _SEPARABLE_MAX_ROWS and (op.mz_joint is not None or op.mk_t is not None) \
                    and self._separable_is_cheaper(op):
                return self._separable(coeff[0], op, n)
            if n <= _SEPARABLE_MAX_ROWS and op.basis32 is not None:
                return (op.mean + coeff[0].astype(np.float32) @ op.basis32).reshape(n, z.size, k.size)
            return (op.mean + coeff[0] @ op.basis).reshape(n, z.size, k.size)
        y = op.mean[:, None, :] + coeff @ op.basis                             # (nz, n, nk')
        if op.mz is None:
            return y.transpose(1, 0, 2)
        return np.einsum("az,znk->nak", op.mz, y, optimize=True)

    def _separable_is_cheaper(self, op: "_GridOperator") -> bool:
        """Per row, the folded basis streams c nz' nk' numbers (memory-bound: weighed 4x);
        the separable route multiplies c nz nk, then nz nk nk' and nz' nz nk'.  A training
        grid finer than the request (EE2's 613 k in the surrogate) favours the folded basis."""
        nz, nk = self.z.size, self.k.size
        c = self._scaled_basis.shape[1]
        separable = nz * nk * (c + op.k.size) + op.z.size * nz * op.k.size
        return separable < _FOLDED_WEIGHT * c * op.z.size * op.k.size

    def _separable(self, coeff: np.ndarray, op: "_GridOperator", n: int) -> np.ndarray:
        # Y on the training grid first, then the z and k splines as two small
        # products: the folded basis of a fine grid (c x 8000 doubles for 40 z x
        # 200 k) is too big for the cache, so for a few rows this is faster.
        y = (self.pca_mean[0] + coeff @ self._scaled_basis[0]).reshape(n, self.z.size, self.k.size)
        # k first: fewer operations when both grids are finer than the training grid.
        if op.mk_t is not None:
            y = y @ op.mk_t
        if op.mz_joint is not None:
            y = op.mz_joint @ y
        return y


@dataclass(frozen=True)
class _GridOperator:
    """Cached interpolation of a PCANetwork to one (z, k) grid.

    z, k         the validated grid [k in h/Mpc]
    mean, basis  the PCA mean and (scaled) basis with the interpolation folded in
    mz           (per_z) z-spline matrix applied after the blocks, None on the training z
    mz_joint, mk_t  (joint) separable z-spline (nz', nz) and transposed k-spline
                 (nk, nk') matrices, None where the grid is the training grid
    basis32      (joint) float32 copy of a folded basis over _FOLDED_F32_BYTES, for few rows
    """

    z: np.ndarray
    k: np.ndarray
    mean: np.ndarray
    basis: np.ndarray
    mz: np.ndarray | None
    mz_joint: np.ndarray | None
    mk_t: np.ndarray | None
    basis32: np.ndarray | None = None


def _fold_unit_map(net: MLP, space: ParameterSpace) -> MLP:
    """The first network of a stack, 2-d, with x = (2 theta - (u + l)) / (u - l) folded
    into its first layer: W' = diag(2 / (u - l)) W, b' = b - ((u + l) / (u - l)) W."""
    span = space.upper - space.lower
    w0, b0 = net.weights[0][0], net.biases[0][0]
    w_first = (2.0 / span)[:, None] * w0
    b_first = b0 - ((space.upper + space.lower) / span) @ w0
    weights = (w_first, *(w[0] for w in net.weights[1:]))
    biases = (b_first, *(b[0] for b in net.biases[1:]))
    return MLP(tuple(np.ascontiguousarray(w) for w in weights), tuple(biases), net.activation)


def summary(emu) -> str:
    """The short description every emulator prints: kind, box, k and z range,
    accuracy where recorded, and the file it was read from."""
    mode = getattr(emu, "mode", None)
    name = getattr(emu, "_model_name", None)
    head = f"{emu.kind} emulator" + (f" ({mode} mode)" if mode else "") + (f" {name!r}" if name else "")
    box = ", ".join(f"{n} [{lo:.4g}, {hi:.4g}]" for n, (lo, hi) in emu.space.box.items())
    lines = [head, f"  box       {box}"]
    inputs = getattr(emu, "inputs", None) or getattr(getattr(emu, "cola", None), "inputs", None)
    if inputs is not None and tuple(inputs) != tuple(emu.space.names):
        lines.append(f"  response  depends on {', '.join(inputs)} only")
    if emu.space.fixed:
        lines.append("  fixed     " + ", ".join(f"{n}={v:.6g}" for n, v in emu.space.fixed.items()))
    (k_lo, k_hi), (z_lo, z_hi) = emu.k_range, emu.z_range
    lines.append(f"  k         {k_lo:.4g} - {k_hi:.4g} h/Mpc;  z {z_lo:.4g} - {z_hi:.4g}")
    tail = getattr(emu, "hmcode_tail", None)
    if tail is not None:
        lines.append(tail_line(tail.k_range[1]))
    lines.append(f"  accuracy  {_accuracy_text(emu)}")
    source = getattr(emu, "_source", None)
    lines.append(f"  file      {source if source else '(not saved)'}")
    return "\n".join(lines)


def tail_line(k_max: float) -> str:
    """The line a hybrid's listings give its HMcode continuation of R, up to ``k_max`` [h/Mpc]."""
    return f"  above     R continued with HMcode-2020's shape to {k_max:.4g} h/Mpc (cosmic shear)"


def _accuracy_text(emu) -> str:
    card = getattr(emu, "_accuracy", None)
    if card:
        return card
    inner = getattr(emu, "cola", emu)
    v = (inner.info or {}).get("validation", {}) if hasattr(inner, "info") else {}
    if "max_k_le_1_p95" in v:
        return (f"held-out training cosmologies ({v.get('n', '?')}): p95 of max |dB/B| (k <= 1 h/Mpc) "
                f"{100 * v['max_k_le_1_p95']:.2f} %")
    return "not recorded"
