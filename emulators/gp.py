"""Gaussian-process regression of PCA coefficients: fitted with scikit-learn, evaluated in numpy.

With a few hundred training points in ~10 dimensions a Gaussian process interpolates
smooth functions far better than a small MLP: on the EDE + w(z) CAMB campaign
(emulators/observables.py, 254 points, 12 inputs) the plik-lite Delta chi^2 of the
emulated C_ell at the peak fell from median / p95 0.72 / 2.4 (PCA + linear + MLP) to
0.23 / 0.59 with a Matern-5/2 kernel (0.25 / 0.79 with a squared exponential).

Model of each coefficient c_j(x) (x in the unit box, shape (p,)): a linear trend plus
a zero-mean GP with an anisotropic Matern-5/2 kernel,

    c_j(x) = [1, x] @ trend[:, j] + sum_n k_j(x, X_n) alpha_jn,
    k_j(x, x') = (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r),  r^2 = sum_p ((x_p - x'_p) / l_jp)^2,

where the kernel amplitude and the output scale are folded into alpha.  The
hyperparameters (l_j, amplitude, a white-noise nugget that keeps the Cholesky
factorisation stable) maximise scikit-learn's marginal likelihood; prediction needs
only X, the length scales and alpha, so files hold plain arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GPRegressor", "fit_gp"]

_SQRT5 = np.sqrt(5.0)


@dataclass(frozen=True)
class GPRegressor:
    """c (m, c) = trend + GP mean at unit-box inputs (m, p).

    x_train (n, p), trend (p+1, c), lengths (c, p) [unit-box units], alpha (c, n)."""

    x_train: np.ndarray
    trend: np.ndarray
    lengths: np.ndarray
    alpha: np.ndarray

    def __post_init__(self):
        inv2 = 1.0 / self.lengths**2                                  # (c, p)
        object.__setattr__(self, "_inv2", inv2)
        object.__setattr__(self, "_x2", (self.x_train**2) @ inv2.T)    # (n, c)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, float))
        out = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1) @ self.trend
        for i in range(x.shape[0]):
            # r^2 (n, c) = |x|^2 + |X|^2 - 2 x.X in each component's metric, one BLAS product.
            xi = x[i]
            r2 = (xi**2 @ self._inv2.T)[None, :] + self._x2 - 2.0 * self.x_train @ (xi[None, :] * self._inv2).T
            r = _SQRT5 * np.sqrt(np.maximum(r2, 0.0))
            k = (1.0 + r + r * r / 3.0) * np.exp(-r)
            out[i] += np.einsum("nc,cn->c", k, self.alpha)
        return out


def fit_gp(x: np.ndarray, y: np.ndarray, restarts: int = 0, seed: int = 0,
           n_optimise: int | None = None) -> tuple[GPRegressor, dict]:
    """Fit one Matern-5/2 GP per column of y (n, c) on unit-box inputs x (n, p), over a
    least-squares linear trend.  The kernel hyperparameters maximise the marginal
    likelihood of at most ``n_optimise`` points (a random subset: each optimiser step
    costs O(n^3)); the weights then use all n.  Returns the regressor and a report
    (nuggets, log marginal likelihoods of the optimisation set)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n, p = x.shape
    phi = np.concatenate([np.ones((n, 1)), x], axis=1)
    trend = np.linalg.lstsq(phi, y, rcond=None)[0]
    resid = y - phi @ trend
    sub = np.arange(n)
    if n_optimise is not None and n > n_optimise:
        sub = np.sort(np.random.default_rng(seed).choice(n, n_optimise, replace=False))
    lengths, alpha, report = [], [], {"nugget": [], "log_marginal_likelihood": []}
    for j in range(y.shape[1]):
        sd = float(resid[:, j].std()) or 1.0
        kernel = (ConstantKernel(1.0, (1e-4, 1e4)) * Matern(np.ones(p), (1e-2, 1e3), nu=2.5)
                  + WhiteKernel(1e-6, (1e-12, 1e-1)))
        gp = GaussianProcessRegressor(kernel, n_restarts_optimizer=restarts, random_state=seed)
        with warnings.catch_warnings():
            # A length scale at its upper bound means "this input does not matter": expected.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x[sub], resid[sub, j] / sd)
        report["log_marginal_likelihood"].append(float(gp.log_marginal_likelihood_value_))
        if sub.size < n:
            gp = GaussianProcessRegressor(gp.kernel_, optimizer=None).fit(x, resid[:, j] / sd)
        k = gp.kernel_
        lengths.append(np.atleast_1d(k.k1.k2.length_scale).astype(float) * np.ones(p))
        alpha.append(gp.alpha_ * k.k1.k1.constant_value * sd)
        report["nugget"].append(float(k.k2.noise_level))
    return GPRegressor(x, trend, np.array(lengths), np.array(alpha)), report
