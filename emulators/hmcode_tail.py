"""HMcode-2020's dark-energy response above the COLA k range: the hybrid's continuation.

The COLA campaign measures the response R = B(theta) / B(theta_LCDM) up to its
particle Nyquist frequency k_c (1.235 h/Mpc for 128^3 in 320 Mpc/h), while LSST-Y1
cosmic shear at l_max = 3000 reaches several h/Mpc at low z.  What to do above k_c
was measured with EE2 as a perfect COLA emulator (the emulator_bias stage's
``ee2_response`` models, 100 Latin-hypercube cosmologies over EE2's box, LSST-Y1
xi+- with the non-Gaussian covariance; docs/lsst_y1_w0wa_bias.md):

=============================  ===========================  =========================
R above k_c                    median / p95 Delta chi^2,    largest shift at 5
                               l_max = 3000                 fiducials (sigma)
=============================  ===========================  =========================
held at its k_c value          2.18 / 34.8                  1.35 (w0 = -0.8)
HMcode-2020's shape (this)     0.020 / 0.36                 0.09
=============================  ===========================  =========================

so the hybrid continues R above k_c with HMcode's shape,

    T(k, z; theta) = ln R_HM(k, z; theta) - ln R_HM(k_c, z; theta),   k >= k_c [h/Mpc],

R_HM = B_HM(theta) / B_HM(theta_LCDM), B_HM = P_HMcode2020 / P_lin from CAMB (one
run at theta, one at theta_LCDM; PPF dark energy).  T is zero at k_c, so R is
continuous there.  It is emulated with the same PCA + MLP machinery as the rest,
over the COLA emulator's box, and stored with the hybrid (``hmcode_tail``).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from cosmopipe.provenance import code_version
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.design import ParameterBox, latin_hypercube
from cosmopipe.sims.linear import camb_params

from .boost import BoostEmulator
from .ee2_lcdm import _k_map
from .params import ParameterSpace
from .training import FitSettings, fit_pca_network

__all__ = ["hmcode_log_boost", "hmcode_tail_table", "train_hmcode_tail", "hmcode_tail_log", "TAIL_KMAX"]

# EE2's boost stops at 9.41 h/Mpc and is held constant above; the tail stops there too.
TAIL_KMAX = 10.0
_LCDM = {"w0": -1.0, "wa": 0.0}


def hmcode_log_boost(params: dict, z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """ln B_HM = ln P_HMcode2020 / P_lin of the total matter (nz, nk) at z x k [h/Mpc],
    one CAMB run; interpolated linearly in ln k on CAMB's table."""
    import camb

    pars = camb_params(Cosmology.from_dict(params), z, kmax=float(np.max(k)))
    pars.NonLinear = camb.model.NonLinear_pk
    pars.NonLinearModel.set_params(halofit_version="mead2020")
    res = camb.get_results(pars)
    kw = dict(var1="delta_tot", var2="delta_tot", hubble_units=True, k_hunit=True)
    kh, z_out, p_nl = res.get_nonlinear_matter_power_spectrum(**kw)
    _, _, p_lin = res.get_linear_matter_power_spectrum(**kw)
    rows = [int(np.argmin(np.abs(np.asarray(z_out) - zi))) for zi in z]
    ln_b = np.log(p_nl[rows] / p_lin[rows])
    return np.stack([np.interp(np.log(k), np.log(kh), row) for row in ln_b])


def _tail_chunk(dicts: Sequence[dict], z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """T (n, nz, nk) for parameter dicts; k[0] is k_c."""
    out = []
    for d in dicts:
        ln_r = hmcode_log_boost(d, z, k) - hmcode_log_boost({**d, **_LCDM}, z, k)
        out.append(ln_r - ln_r[:, :1])
    return np.stack(out)


def hmcode_tail_table(theta: np.ndarray, space: ParameterSpace, z: np.ndarray, k: np.ndarray, client=None,
                      chunk: int = 10) -> np.ndarray:
    """T at the rows of ``theta`` (n, p) of ``space`` on z x k (k[0] = k_c): (n, nz, nk).
    Two CAMB runs (~2 s each) per cosmology; with a Dask client ``chunk`` cosmologies
    are one task."""
    dicts = space.cosmology_dicts(theta)
    z, k = np.asarray(z, dtype=float), np.asarray(k, dtype=float)
    parts = [dicts[i:i + chunk] for i in range(0, len(dicts), chunk)]
    if client is None:
        return np.concatenate([_tail_chunk(p, z, k) for p in parts])
    futures = [client.submit(_tail_chunk, p, z, k, pure=False) for p in parts]
    return np.concatenate(client.gather(futures))


def train_hmcode_tail(space: ParameterSpace, k_c: float, n: int = 250, z: Sequence[float] | None = None,
                      seed: int = 0, settings: FitSettings = FitSettings(), n_test: int = 50, nk: int = 30,
                      client=None) -> BoostEmulator:
    """Fit T (module doc) over ``space`` (the COLA emulator's, w0 and wa varied) for
    k_c <= k <= TAIL_KMAX [h/Mpc] on ``nk`` log-spaced wavenumbers.

    n        training cosmologies (scrambled Latin hypercube, ``seed``)
    z        training redshifts (default 16 uniform in [0, 3]), spline in between
    n_test   held-out cosmologies: ``info['validation']`` has max |exp(T_emu - T) - 1|
             per cosmology (p50, p95, max) at the nodes and the midpoints in z
    """
    if not {"w0", "wa"} & set(space.names):
        raise ValueError("HMcode tail: the space varies neither w0 nor wa; there is no response to continue")
    t0 = time.perf_counter()
    z = np.asarray(np.linspace(0.0, 3.0, 16) if z is None else z, dtype=float)
    k = np.geomspace(float(k_c), TAIL_KMAX, nk)
    box = ParameterBox(space.names, tuple(space.lower), tuple(space.upper))
    theta = latin_hypercube(box, n, seed=seed)
    q = hmcode_tail_table(theta, space, z, k, client)
    t_table = time.perf_counter() - t0
    model, report = fit_pca_network(theta, q, space, z, k, settings, client=client)
    validation = {}
    if n_test > 0:
        theta_t = latin_hypercube(box, n_test, seed=seed + 1)
        z_t = np.unique(np.concatenate([z, 0.5 * (z[1:] + z[:-1])]))
        q_t = hmcode_tail_table(theta_t, space, z_t, k, client)
        per = np.abs(np.expm1(model.evaluate(theta_t, z_t, k) - q_t)).max(axis=(1, 2))
        validation = {"max_abs_dR_over_R": {"p50": float(np.median(per)), "p95": float(np.percentile(per, 95)),
                                            "max": float(per.max())},
                      "size_of_T": float(np.abs(q_t).max()), "n_test": int(n_test)}
    info = {"reference": "CAMB HMcode-2020: ln R_HM(k) - ln R_HM(k_c), R_HM = B_HM(theta) / B_HM(theta_LCDM)",
            "k_c": float(k_c), "n_cosmologies": int(n), "seed": int(seed),
            "training_settings": settings.to_dict(), "training_report": report.to_dict(), "table_seconds": t_table,
            "training_seconds": time.perf_counter() - t0, "validation": validation, "code_version": code_version()}
    return BoostEmulator(model=model, info=info)


def hmcode_tail_log(tail: BoostEmulator, theta: np.ndarray, names: Sequence[str], z: np.ndarray,
                    k: np.ndarray) -> np.ndarray:
    """T (n, nz, nk) at parameter rows ``theta`` whose columns are ``names``: zero at and
    below k_c, held at its TAIL_KMAX value above it [k in h/Mpc]."""
    cols = [list(names).index(n) for n in tail.space.names]
    k = np.asarray(k, dtype=float)
    k_lo = tail.k_range[0]
    above = k > k_lo
    # only the k above k_c are evaluated; their clipped grid is cached (sampling repeats it)
    k_eval, take, _ = _k_map(k[above], *tail.k_range)
    out = np.zeros((theta.shape[0], np.size(z), k.size))
    if k_eval.size:
        t = tail.model.evaluate(theta[:, cols], np.asarray(z, dtype=float), k_eval)
        out[:, :, above] = t if take is None else t[:, :, take]
    return out
