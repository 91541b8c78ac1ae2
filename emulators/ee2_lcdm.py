"""A fast stand-in for EuclidEmulator2 on the LCDM slice of a hybrid emulator.

The hybrid B(theta) = B_EE2(theta_LCDM) B_COLA(theta) / B_COLA(theta_LCDM)
calls EuclidEmulator2 at theta_LCDM (w0 = -1, wa = 0) for every cosmology:
about 15 ms per call for 31 redshifts, which dominates a cosmic-shear
likelihood whose other parts cost about 1 ms.  Sampling therefore uses a PCA +
MLP model of ln B_EE2 trained here on EE2 itself (the same machinery as the
COLA emulator; EE2 is cheap, so the training set is large), while ``boost``
and ``pnl`` of the hybrid call EE2 exactly unless asked otherwise.

The training grid is EE2's own 613 wavenumbers (8.73e-3 to 9.41 h/Mpc), on
which EE2's output is tabulated and between which both EE2's wrapper and the
model interpolate with a cubic spline in ln k: a coarser log-spaced grid
misses the small-scale structure of the tabulated boost near k ~ 0.3 h/Mpc
(1 % interpolation errors with 200 points).  Outside that k range the
surrogate follows :func:`cosmopipe.emulators.ee2.ee2_boost`: B = 1 below k_min and B(k_max)
above.

Measured with the train stage's defaults (3000 cosmologies over EE2's box in
Omega_m, Omega_b, h, A_s, n_s; 31 redshifts in [0, 3]; 21 PCA components; MLP
2 x 64, 10000 L-BFGS iterations: 29 s of EE2 calls and 6 min of fitting on one
core), against 300 held-out cosmologies at the training redshifts and between
them: worst |B/B_EE2 - 1| per cosmology p50 0.14 %, p95 0.36 %, max 0.51 % for
k <= 1 h/Mpc; p95 0.25 %, max 0.55 % for 1 < k <= 9.4 h/Mpc.  In the LSST-Y1
cosmic-shear likelihood (l_max = 3000) that moves chi^2 by a median 3e-4 and
at most 6e-3 against exact EE2 at 30 points of the prior, while one evaluation
takes 1.3 ms instead of 16.5 ms (benchmarks/bench_shear.py, one core).  Every file records its own
figures in ``info["validation"]``.  With 16 redshifts the spline in z alone
cost 0.1-0.2 %, and keeping 1 - 1e-6 of the variance (13 components) 0.1 %.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from cosmopipe.provenance import code_version
from cosmopipe.sims.design import ParameterBox, latin_hypercube

from .boost import BoostEmulator
from .ee2 import EE2_BOX, _native_boost, _params, check_box, euclidemu2_version
from .params import ParameterSpace
from .training import FitSettings, fit_pca_network

__all__ = ["lcdm_space", "ee2_native_k", "ee2_lcdm_table", "train_ee2_lcdm", "ee2_lcdm_log_boost", "LCDM"]

LCDM = {"w0": -1.0, "wa": 0.0}


def lcdm_space(space: ParameterSpace) -> ParameterSpace:
    """The LCDM slice of ``space`` inside EE2's box: its varied parameters less
    w0 and wa, each box clipped to EE2's; w0 = -1, wa = 0 and the other fixed
    values kept (they must lie inside EE2's box)."""
    names = tuple(n for n in space.names if n not in LCDM)
    if not names:
        raise ValueError("EE2 surrogate: the emulator varies only w0/wa; nothing to emulate on the LCDM slice")
    lower = [max(space.box[n][0], EE2_BOX[n][0]) for n in names]
    upper = [min(space.box[n][1], EE2_BOX[n][1]) for n in names]
    for n, lo, hi in zip(names, lower, upper):
        if not lo < hi:
            raise ValueError(f"EE2 surrogate: the box of {n} does not overlap EuclidEmulator2's {EE2_BOX[n]}")
    fixed = {**{k: v for k, v in space.fixed.items() if k not in LCDM}, **LCDM}
    for n, v in fixed.items():
        lo, hi = EE2_BOX[n]
        if not lo <= v <= hi:
            raise ValueError(f"EE2 surrogate: fixed {n}={v:g} is outside EuclidEmulator2's box [{lo:g}, {hi:g}]")
    missing = [n for n in EE2_BOX if n not in names and n not in fixed]
    if missing:
        raise ValueError(f"EE2 surrogate: EuclidEmulator2 needs {', '.join(missing)}, which the emulator "
                         "neither varies nor fixes")
    return ParameterSpace(names, np.array(lower), np.array(upper), fixed)


def ee2_native_k() -> np.ndarray:
    """EuclidEmulator2's own wavenumbers [h/Mpc] (613, increasing)."""
    reference = {n: 0.5 * (lo + hi) for n, (lo, hi) in EE2_BOX.items()}
    return _native_boost(_params(reference), np.array([0.0]))[0]


def _table_chunk(dicts: Sequence[dict], z: np.ndarray) -> np.ndarray:
    """ln B_EE2 on the native k grid, (n, nz, 613)."""
    return np.stack([np.log(_native_boost(_params(d), z)[1]) for d in dicts])


def ee2_lcdm_table(theta: np.ndarray, space: ParameterSpace, z: np.ndarray, client=None,
                   chunk: int = 200) -> np.ndarray:
    """ln B_EE2 at the rows of ``theta`` (n, p) of ``space`` on z x native k: (n, nz, 613).
    With a Dask client, chunks of ``chunk`` cosmologies are one task each."""
    dicts = space.cosmology_dicts(theta)
    for d in dicts:
        check_box(d)
    z = np.asarray(z, dtype=float)
    parts = [dicts[i:i + chunk] for i in range(0, len(dicts), chunk)]
    if client is None:
        return np.concatenate([_table_chunk(p, z) for p in parts])
    futures = [client.submit(_table_chunk, p, z, pure=False) for p in parts]
    return np.concatenate(client.gather(futures))


def train_ee2_lcdm(space: ParameterSpace, n: int = 3000, z: Sequence[float] | None = None, seed: int = 0,
                   settings: FitSettings = FitSettings(), n_test: int = 300, client=None) -> BoostEmulator:
    """Fit ln B_EE2 on the LCDM slice of ``space`` (:func:`lcdm_space`).

    n        training cosmologies (scrambled Latin hypercube, ``seed``)
    z        training redshifts (default 16 uniform in [0, 3]); evaluated between them
             by a cubic spline in ln(1 + z)
    n_test   independent held-out cosmologies for the reported accuracy
             (``info['validation']``: max |B/B_EE2 - 1| per cosmology over k ranges)
    """
    t0 = time.perf_counter()
    lspace = lcdm_space(space)
    z = np.asarray(np.linspace(0.0, 3.0, 16) if z is None else z, dtype=float)
    k = ee2_native_k()
    box = ParameterBox(lspace.names, tuple(lspace.lower), tuple(lspace.upper))
    theta = latin_hypercube(box, n, seed=seed)
    q = ee2_lcdm_table(theta, lspace, z, client)
    t_table = time.perf_counter() - t0
    model, report = fit_pca_network(theta, q, lspace, z, k, settings, client=client)
    validation = {}
    if n_test > 0:
        theta_t = latin_hypercube(box, n_test, seed=seed + 1)
        z_t = np.unique(np.concatenate([z, 0.5 * (z[1:] + z[:-1])]))  # nodes and midpoints
        q_t = ee2_lcdm_table(theta_t, lspace, z_t, client)
        err = np.abs(np.expm1(model.evaluate(theta_t, z_t, k) - q_t))
        for name, sel in (("k_le_1", k <= 1.0), ("k_1_to_10", k > 1.0)):
            per = err[:, :, sel].max(axis=(1, 2))
            validation[name] = {"p50": float(np.median(per)), "p95": float(np.percentile(per, 95)),
                                "max": float(per.max())}
        validation["n_test"] = n_test
    info = {"reference": "EuclidEmulator2 at w0 = -1, wa = 0", "euclidemu2_version": euclidemu2_version(),
            "n_cosmologies": int(n), "seed": int(seed), "training_settings": settings.to_dict(),
            "training_report": report.to_dict(), "table_seconds": t_table,
            "training_seconds": time.perf_counter() - t0, "validation": validation, "code_version": code_version()}
    return BoostEmulator(model=model, info=info)


def ee2_lcdm_log_boost(surrogate: BoostEmulator, theta_lcdm: np.ndarray, names: Sequence[str], z: np.ndarray,
                       k: np.ndarray) -> np.ndarray:
    """ln B_EE2 from the surrogate at parameter rows ``theta_lcdm`` (n, len(names)) whose
    columns are named ``names`` (a superset of the surrogate's varied parameters), on
    z x k [h/Mpc]: (n, nz, nk).  EE2's conventions outside its k range (module doc)."""
    space = surrogate.space
    cols = [list(names).index(n) for n in space.names]
    k_eval, take, below = _k_map(np.asarray(k, dtype=float), *surrogate.k_range)
    out = surrogate.model.evaluate(theta_lcdm[:, cols], np.asarray(z, dtype=float), k_eval)
    if take is not None:
        out = out[:, :, take]
    if below is not None:
        out[:, :, below] = 0.0
    return out


_K_MAPS: dict[tuple, tuple] = {}


def _k_map(k: np.ndarray, k_lo: float, k_hi: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(distinct k clipped to [k_lo, k_hi], the index of each k among them or None where
    that is the identity, the mask of k < k_lo or None where empty); cached per k grid,
    since sampling asks for the same grid at every step."""
    key = (k.tobytes(), k_lo, k_hi)
    hit = _K_MAPS.get(key)
    if hit is None:
        k_eval, take = np.unique(np.clip(k, k_lo, k_hi), return_inverse=True)
        below = k < k_lo
        hit = (k_eval, None if np.array_equal(take, np.arange(k.size)) else take, below if below.any() else None)
        if len(_K_MAPS) >= 64:
            _K_MAPS.clear()
        _K_MAPS[key] = hit
    return hit
