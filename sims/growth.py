"""Background expansion and LPT growth factors from the growth ODEs.

Time is the scale factor ``a``; Hubble rates are in units of H0 (E = H/H0).
The particles carry cold dark matter plus baryons ("cb"); massive neutrinos
enter through the expansion rate only (they are smooth on the scales the
particle mesh resolves), so the source of the growth equations is
Omega_cb(a) = rho_cb(a) / rho_crit(a).

Conventions (Scoccimarro 1998, as in 2LPTic and L-PICOLA)::

    x(q, a) = q + D1(a) psi1(q) + D2(a) psi2(q),   D1(a=1) = 1,  D2 -> -3/7 D1^2 early

    D1'' + (2 + dlnE/dlna) D1' - 3/2 Omega_cb(a) D1 = 0
    D2'' + (2 + dlnE/dlna) D2' - 3/2 Omega_cb(a) D2 = -3/2 Omega_cb(a) D1^2

with ' = d/dln a.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline

from .cosmology import Cosmology
from .linear import camb_params

__all__ = ["Background", "Growth", "background_from_camb", "matter_lambda_background", "growth_factors"]

A_MIN = 1e-5  # earliest tabulated scale factor (deep in radiation domination)
_NGRID = 2048


@dataclass(frozen=True)
class Background:
    """Tabulated flat background on a grid in ln a.

    lna       ln a grid (increasing, ending at 0)
    E         H(a)/H0
    Omega_cb  rho_cb(a)/rho_crit(a): source of the growth equations
    Omega_cb0 its value today (the Poisson-equation prefactor of the N-body force)
    a_eq      matter-radiation equality, rho_rad/rho_cb today (sets the early growing mode)
    """

    lna: np.ndarray
    E: np.ndarray
    Omega_cb: np.ndarray
    Omega_cb0: float
    a_eq: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lnE", CubicSpline(self.lna, np.log(self.E)))
        object.__setattr__(self, "_Om", CubicSpline(self.lna, self.Omega_cb))

    def E_of_a(self, a):
        """H(a)/H0 (dimensionless)."""
        return np.exp(self._lnE(np.log(a)))

    def dlnE_dlna(self, a):
        return self._lnE(np.log(a), 1)

    def Omega_cb_of_a(self, a):
        return self._Om(np.log(a))


def _lna_grid() -> np.ndarray:
    return np.linspace(np.log(A_MIN), 0.0, _NGRID)


def background_from_camb(cosmo: Cosmology) -> Background:
    """Exact CAMB background (photons, massless and massive neutrinos, w0wa
    dark energy) for ``cosmo``, tabulated for the growth ODEs."""
    import camb

    results = camb.get_background(camb_params(cosmo))
    lna = _lna_grid()
    a = np.exp(lna)
    # CAMB returns 8 pi G a^4 rho(a) in Mpc^-2.
    rho = results.get_background_densities(a, vars=["tot", "cdm", "baryon", "photon", "neutrino", "nu"])
    tot0 = results.get_background_densities(1.0, vars=["tot"])["tot"]
    E = np.sqrt(rho["tot"] / a**4 / tot0)
    omega_cb = (rho["cdm"] + rho["baryon"]) / rho["tot"]
    # Early on, massive neutrinos are still relativistic and count as radiation.
    rad0 = (rho["photon"][0] + rho["neutrino"][0] + rho["nu"][0]) / a[0] ** 4
    cb0 = (rho["cdm"][-1] + rho["baryon"][-1])
    return Background(lna=lna, E=E, Omega_cb=omega_cb, Omega_cb0=float(omega_cb[-1]),
                      a_eq=float(rad0 / cb0))


def matter_lambda_background(Omega_m: float, Omega_r: float = 0.0, w0: float = -1.0, wa: float = 0.0) -> Background:
    """Analytic flat background of matter, radiation and CPL dark energy.

    Used for tests against closed-form growth (Einstein-de Sitter: D1 = a,
    D2 = -3/7 a^2) and for toy problems that must not depend on CAMB.
    """
    lna = _lna_grid()
    a = np.exp(lna)
    Omega_de = 1.0 - Omega_m - Omega_r
    de = Omega_de * a ** (-3.0 * (1.0 + w0 + wa)) * np.exp(-3.0 * wa * (1.0 - a))
    E2 = Omega_m / a**3 + Omega_r / a**4 + de
    return Background(lna=lna, E=np.sqrt(E2), Omega_cb=Omega_m / a**3 / E2, Omega_cb0=float(Omega_m),
                      a_eq=float(Omega_r / Omega_m))


@dataclass(frozen=True)
class Growth:
    """First- and second-order growth factors and growth rates.

    D1, D2 are normalised so that D1(a=1) = 1 and D2 ~ -3/7 D1^2 at early
    times; f1 = dlnD1/dlna and f2 = dlnD2/dlna.  All callables take ``a``.
    """

    background: Background
    lna: np.ndarray
    D1_tab: np.ndarray
    D2_tab: np.ndarray
    dD1_tab: np.ndarray  # dD1/dlna
    dD2_tab: np.ndarray  # dD2/dlna

    def __post_init__(self) -> None:
        for name in ("D1", "D2", "dD1", "dD2"):
            object.__setattr__(self, "_" + name, CubicSpline(self.lna, getattr(self, name + "_tab")))

    def D1(self, a):
        return self._D1(np.log(a))

    def D2(self, a):
        return self._D2(np.log(a))

    def f1(self, a):
        return self._dD1(np.log(a)) / self._D1(np.log(a))

    def f2(self, a):
        return self._dD2(np.log(a)) / self._D2(np.log(a))

    def dD1_da(self, a):
        return self._dD1(np.log(a)) / a

    def dD2_da(self, a):
        return self._dD2(np.log(a)) / a


def growth_factors(background: Background) -> Growth:
    """Integrate the D1, D2 ODEs (module doc) from a = 1e-5 to 1.

    The start is deep in radiation domination, where the growing mode of
    sub-horizon matter perturbations is Meszaros' D1 = 1 + 3/2 a/a_eq; any
    residual decaying mode is suppressed by many e-folds by the time N-body
    runs start.
    """
    bg = background
    lna0 = bg.lna[0]
    y0 = np.exp(lna0) / max(bg.a_eq, 1e-12)
    if bg.a_eq > 0:
        d1, dd1 = 1.0 + 1.5 * y0, 1.5 * y0
    else:  # no radiation: the matter-era growing mode D1 = a
        d1, dd1 = 1.0, 1.0
    state0 = [d1, dd1, -3.0 / 7.0 * d1**2, -6.0 / 7.0 * d1 * dd1]

    def rhs(lna, s):
        a = np.exp(lna)
        friction = 2.0 + bg.dlnE_dlna(a)
        src = 1.5 * bg.Omega_cb_of_a(a)
        D1, dD1, D2, dD2 = s
        return [dD1, -friction * dD1 + src * D1, dD2, -friction * dD2 + src * (D2 - D1 * D1)]

    sol = solve_ivp(rhs, (lna0, 0.0), state0, method="DOP853", t_eval=bg.lna, rtol=1e-10, atol=1e-14)
    if not sol.success:  # pragma: no cover - the ODE is smooth
        raise RuntimeError(f"growth ODE failed: {sol.message}")
    D1, dD1, D2, dD2 = sol.y
    norm = D1[-1]
    return Growth(background=bg, lna=bg.lna, D1_tab=D1 / norm, D2_tab=D2 / norm**2,
                  dD1_tab=dD1 / norm, dD2_tab=dD2 / norm**2)
