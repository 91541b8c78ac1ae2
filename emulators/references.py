"""Second references for the boost: CAMB's HMcode-2020 and halofit.

``camb_boost`` returns B = P_nl / P_lin of the total matter from one CAMB
run (seconds), on any k [h/Mpc] and z grid, with the cosmology set up exactly
as for the simulations (sims.linear.camb_params: PPF dark energy, three
degenerate massive neutrinos).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.linear import camb_params

__all__ = ["camb_boost", "CAMB_MODELS"]

# Our names -> CAMB's halofit_version.
CAMB_MODELS = {"mead2020": "mead2020", "takahashi": "takahashi"}


def camb_boost(k: Any, z: Any, cosmo: Any, model: str = "mead2020") -> np.ndarray:
    """CAMB nonlinear boost P_nl / P_lin of the total matter, shape (nz, nk).

    k      wavenumbers [h/Mpc], scalar or 1-d, > 0 and <= 50
    z      redshifts, scalar or 1-d, in [0, 10]
    cosmo  a :class:`sims.Cosmology` or a dict of its parameters (missing
           ones take the defaults)
    model  'mead2020' (HMcode-2020, dark matter only) or 'takahashi'
           (halofit, Takahashi et al. 2012)

    Below CAMB's smallest tabulated k (about 1e-4 h/Mpc) B = 1.
    """
    import camb

    if model not in CAMB_MODELS:
        raise ValueError(f"camb_boost: model must be one of {', '.join(CAMB_MODELS)}, got {model!r}")
    if not isinstance(cosmo, Cosmology):
        cosmo = Cosmology.from_dict(dict(cosmo))
    k = np.atleast_1d(np.asarray(k, dtype=float))
    z = np.atleast_1d(np.asarray(z, dtype=float))
    if k.ndim != 1 or z.ndim != 1 or not k.size or not z.size:
        raise ValueError(f"camb_boost: k and z must be scalars or non-empty 1-d arrays, got shapes {k.shape}, {z.shape}")
    if not (np.all(np.isfinite(k)) and k.min() > 0 and k.max() <= 50.0):
        raise ValueError(f"camb_boost: k must be in (0, 50] h/Mpc, got {k.min():g} to {k.max():g}")
    if not (np.all(np.isfinite(z)) and z.min() >= 0 and z.max() <= 10.0):
        raise ValueError(f"camb_boost: z must be in [0, 10], got {z.min():g} to {z.max():g}")
    if len(set(z.tolist())) != z.size:
        raise ValueError("camb_boost: redshifts must be distinct")

    pars = camb_params(cosmo, redshifts=z, kmax=max(float(k.max()), 1.0))
    pars.NonLinear = camb.model.NonLinear_pk
    pars.NonLinearModel.set_params(halofit_version=CAMB_MODELS[model])
    results = camb.get_results(pars)
    kh, z_out, p_lin = results.get_linear_matter_power_spectrum(var1="delta_tot", var2="delta_tot",
                                                                 hubble_units=True, k_hunit=True)
    _, _, p_nl = results.get_nonlinear_matter_power_spectrum(var1="delta_tot", var2="delta_tot",
                                                             hubble_units=True, k_hunit=True)
    from scipy.interpolate import CubicSpline

    ln_b = np.log(p_nl / p_lin)
    rows = {float(zz): i for i, zz in enumerate(z_out)}
    index = [rows[min(rows, key=lambda zz: abs(zz - zi))] for zi in z]
    spline = CubicSpline(np.log(kh), ln_b[index], axis=1)
    out = np.ones((z.size, k.size))
    inside = k >= kh[0]
    out[:, inside] = np.exp(spline(np.log(np.minimum(k[inside], kh[-1]))))
    return out
