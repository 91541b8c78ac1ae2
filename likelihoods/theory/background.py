"""Fast flat w0waCDM background with massive neutrinos: E(z), chi(z), D(z).

Built for a likelihood that needs distances and growth in well under a
millisecond, so no Boltzmann code is called.  Contents of today's critical
density (the conventions of :class:`cosmopipe.sims.cosmology.Cosmology`):

* photons from T_CMB; with m_nu = 0 the neutrinos are massless radiation
  with N_eff = 3.044;
* with m_nu > 0 three degenerate massive species whose density today is
  exactly ``Cosmology.Omega_nu`` (m_nu / 93.14 eV / h^2, part of Omega_m) and
  whose redshift dependence follows the relativistic Fermi-Dirac integral
  F(y) = int x^2 sqrt(x^2 + y^2) / (e^x + 1) dx at y = m_i a / (k T_nu0);
* CPL dark energy, Omega_de = 1 - Omega_m - Omega_radiation.

Distances are in Mpc/h (comoving, flat); the growth factor D(z) solves the
scale-independent linear growth ODE with all non-relativistic matter,
massive neutrinos included, as the source (the convention of CCL, so the
intrinsic-alignment amplitude means the same in both codes), D(0) = 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import integrate

from cosmopipe.sims.cosmology import N_EFF, T_CMB, Cosmology

__all__ = ["HUBBLE_DISTANCE", "Background", "background", "omega_radiation_h2", "neutrino_density_ratio"]

HUBBLE_DISTANCE = 2997.92458  # c / (100 km/s/Mpc) in Mpc/h
_K_B_EV = 8.617333262e-5  # Boltzmann constant [eV/K]
T_NU0_EV = _K_B_EV * T_CMB * (4.0 / 11.0) ** (1.0 / 3.0)  # neutrino temperature today [eV]
_NU_TO_GAMMA = 7.0 / 8.0 * (4.0 / 11.0) ** (4.0 / 3.0)  # rho_nu / rho_gamma per relativistic species


def omega_radiation_h2(T_cmb: float = T_CMB) -> float:
    """Omega_gamma h^2 of a black body at T_cmb [K] (photons only)."""
    from scipy import constants as c

    rho_gamma = (np.pi**2 / 15.0) * (c.k * T_cmb) ** 4 / (c.hbar**3 * c.c**5)  # kg/m^3
    rho_crit_h2 = 3.0 * (100e3 / (1e6 * c.parsec)) ** 2 / (8.0 * np.pi * c.G)  # kg/m^3 for h = 1
    return float(rho_gamma / rho_crit_h2)


OMEGA_GAMMA_H2 = omega_radiation_h2()


def _fermi_dirac_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ln y, ln F(y) and dlnF/dlny on a grid covering y = 1e-4 .. 1e5."""
    lny = np.linspace(np.log(1e-4), np.log(1e5), 400)
    F = np.empty_like(lny)
    for i, y in enumerate(np.exp(lny)):
        F[i] = integrate.quad(lambda x: x * x * math.sqrt(x * x + y * y) / (math.exp(x) + 1.0), 0.0, 60.0,
                              epsabs=0.0, epsrel=1e-11, limit=200)[0]
    lnF = np.log(F)
    return lny, lnF, np.gradient(lnF, lny, edge_order=2)


_LNY, _LNF, _DLNF = _fermi_dirac_table()


def neutrino_density_ratio(y) -> tuple[np.ndarray, np.ndarray]:
    """F(y)/y and dlnF/dlny for y = m / (k T_nu) (arrays); F(y)/y -> 7 pi^4 / (120 y)
    when relativistic, -> 3 zeta(3)/2 (the number density) when not.  Beyond
    the table F is continued by its exact limits (F ~ const, F ~ y)."""
    y = np.asarray(y, dtype=float)
    lny = np.log(np.maximum(y, 1e-300))
    lnF = np.interp(lny, _LNY, _LNF)
    # Outside the table: relativistic F = F(0), non-relativistic F proportional to y.
    hi = lny > _LNY[-1]
    lnF = np.where(hi, _LNF[-1] + (lny - _LNY[-1]), lnF)
    dlnF = np.where(hi, 1.0, np.interp(lny, _LNY, _DLNF))
    return lnF, dlnF


@dataclass(frozen=True)
class Background:
    """Densities today (fractions of the critical density) and the CPL parameters.

    Omega_cb     cold dark matter + baryons
    Omega_nu     massive neutrinos today (0 when massless)
    Omega_r      photons + massless neutrinos
    Omega_de     dark energy today
    m_nu         summed neutrino mass [eV] (three degenerate species)
    """

    Omega_cb: float
    Omega_nu: float
    Omega_r: float
    Omega_de: float
    w0: float
    wa: float
    m_nu: float
    h: float

    @property
    def Omega_m(self) -> float:
        return self.Omega_cb + self.Omega_nu

    def _nu(self, a):
        """Massive-neutrino density / rho_crit,0 and dln rho_nu / dln a."""
        if self.m_nu <= 0.0:
            return np.zeros_like(a), np.full_like(a, -4.0)
        y_today = self.m_nu / 3.0 / T_NU0_EV
        lnF, dlnF = neutrino_density_ratio(y_today * a)
        lnF0, _ = neutrino_density_ratio(np.array([y_today]))
        rho = self.Omega_nu * np.exp(lnF - lnF0[0]) / a**4
        return rho, dlnF - 4.0

    def components(self, z) -> dict:
        """Each component's density / rho_crit,0 at redshifts z, with its dln rho / dln a."""
        z = np.asarray(z, dtype=float)
        a = 1.0 / (1.0 + z)
        nu, dnu = self._nu(a)
        w = self.w0 + self.wa * (1.0 - a)
        de = self.Omega_de * a ** (-3.0 * (1.0 + self.w0 + self.wa)) * np.exp(-3.0 * self.wa * (1.0 - a))
        return {"cb": (self.Omega_cb / a**3, -3.0), "r": (self.Omega_r / a**4, -4.0), "nu": (nu, dnu),
                "de": (de, -3.0 * (1.0 + w))}

    def E(self, z) -> np.ndarray:
        """H(z)/H0 (dimensionless)."""
        return np.sqrt(sum(rho for rho, _ in self.components(z).values()))

    def comoving_distance(self, z) -> np.ndarray:
        """Line-of-sight comoving distance [Mpc/h] to redshifts z (any order, >= 0)."""
        z = np.asarray(z, dtype=float)
        grid = np.linspace(0.0, max(float(np.max(z)), 1e-3), max(64, int(np.max(z) / 0.005) + 2))
        chi = comoving_distance_grid(grid, self.E(grid))
        return np.interp(z, grid, chi)

    def growth(self, z) -> np.ndarray:
        """Scale-independent linear growth D(z), D(0) = 1 (see module doc)."""
        return growth_factor(self, np.asarray(z, dtype=float))


def background(cosmo: Cosmology) -> Background:
    """The :class:`Background` of a :class:`cosmopipe.sims.cosmology.Cosmology`."""
    h2 = cosmo.h**2
    if cosmo.m_nu > 0.0:
        omega_r = OMEGA_GAMMA_H2 / h2
        omega_nu = cosmo.Omega_nu
    else:
        omega_r = OMEGA_GAMMA_H2 * (1.0 + N_EFF * _NU_TO_GAMMA) / h2
        omega_nu = 0.0
    return Background(Omega_cb=cosmo.Omega_m - omega_nu, Omega_nu=omega_nu, Omega_r=omega_r,
                      Omega_de=1.0 - cosmo.Omega_m - omega_r, w0=cosmo.w0, wa=cosmo.wa, m_nu=cosmo.m_nu,
                      h=cosmo.h)


def comoving_distance_grid(z: np.ndarray, E: np.ndarray) -> np.ndarray:
    """chi(z) [Mpc/h] on a fine increasing grid starting at z = 0, by the
    trapezoid rule on 1/E (error ~ dz^2/12 * d(1/E)/dz, ~1e-6 for dz = 0.005)."""
    inv = 1.0 / E
    out = np.empty_like(z)
    out[0] = 0.0
    np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(z), out=out[1:])
    return HUBBLE_DISTANCE * out


# -- growth -------------------------------------------------------------------
_LNA_START = math.log(1e-3)
_GROWTH_STEPS = 160  # RK4 steps in ln a from 1e-3 to 1: error ~1e-8


@numba.njit(cache=True)
def _rk4_growth_from(h, friction, source, d0, v0):
    """RK4 for D'' + friction D' - source D = 0 (' = d/dln a) on a uniform ln a
    grid from D = d0, D' = v0; friction and source are given at 2 n + 1 points
    (nodes and midpoints), n = number of steps of size h."""
    n = (friction.size - 1) // 2
    D = np.empty(n + 1)
    dD = np.empty(n + 1)
    D[0] = d0
    dD[0] = v0
    for i in range(n):
        d, v = D[i], dD[i]
        f0, s0 = friction[2 * i], source[2 * i]
        f1, s1 = friction[2 * i + 1], source[2 * i + 1]
        f2, s2 = friction[2 * i + 2], source[2 * i + 2]
        k1d, k1v = v, s0 * d - f0 * v
        d2, v2 = d + 0.5 * h * k1d, v + 0.5 * h * k1v
        k2d, k2v = v2, s1 * d2 - f1 * v2
        d3, v3 = d + 0.5 * h * k2d, v + 0.5 * h * k2v
        k3d, k3v = v3, s1 * d3 - f1 * v3
        d4, v4 = d + h * k3d, v + h * k3v
        k4d, k4v = v4, s2 * d4 - f2 * v4
        D[i + 1] = d + h / 6.0 * (k1d + 2.0 * k2d + 2.0 * k3d + k4d)
        dD[i + 1] = v + h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v)
    return D, dD


def growth_factor(bg: Background, z: np.ndarray) -> np.ndarray:
    """D(z)/D(0) from D'' + (2 + dlnE/dlna) D' - 3/2 Omega_m(a) D = 0, where
    Omega_m(a) counts cold dark matter, baryons and massive neutrinos."""
    lna = np.linspace(_LNA_START, 0.0, 2 * _GROWTH_STEPS + 1)
    zz = np.expm1(-lna)
    comps = bg.components(zz)
    rho = sum(r for r, _ in comps.values())
    dlnE = 0.5 * sum(r * d for r, d in comps.values()) / rho
    source = 1.5 * (comps["cb"][0] + comps["nu"][0]) / rho
    friction = 2.0 + dlnE
    # Growing mode deep in matter + radiation (Meszaros): D = 1 + 3 y / 2 with
    # y = rho_cb / rho_rad; neutrinos are still relativistic at a = 1e-3.
    rad = comps["r"][0][0] + comps["nu"][0][0]
    if rad > 0:
        y0 = comps["cb"][0][0] / rad
        d0, v0 = 1.0 + 1.5 * y0, 1.5 * y0
    else:  # no radiation: the matter-era growing mode D = a
        d0, v0 = 1.0, 1.0
    D, dD = _rk4_growth_from(lna[2] - lna[0], friction, source, d0, v0)
    # Cubic Hermite interpolation in ln a with the exact derivative.
    x = np.log1p(z) * -1.0
    step = lna[2] - lna[0]
    t = np.clip((x - _LNA_START) / step, 0.0, _GROWTH_STEPS - 1e-12)
    i = t.astype(int)
    u = t - i
    h00, h10 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2
    h01, h11 = u * u * (3 - 2 * u), u * u * (u - 1)
    out = h00 * D[i] + h10 * step * dD[i] + h01 * D[i + 1] + h11 * step * dD[i + 1]
    return out / D[-1]
