"""Early dark energy (EDE) and a piecewise-constant late-time w(z), as CAMB dark energy.

Models (``CambSettings.ede_model``):

* ``fluid`` -- CAMB's ``AxionEffectiveFluid`` (Poulin et al. 2018, arXiv:1806.10608):
  rho_EDE(a) = Omega_EDE,0 rho_crit (1 + a_c^p) / (a^p + a_c^p), p = 3 (1 + w_n),
  w_n = (n - 1)/(n + 1) (n = 3: w_n = 1/2), with the fraction f_EDE = rho_EDE / rho_tot
  at z_c set by CAMB (its normalisation approximates rho_Lambda(a_c) by Omega_de), and
  a rest-frame sound speed c_s^2(k, a) = (2 a^2 (n-1) w^2 + k^2)/(2 a^2 (n+1) w^2 + k^2)
  that depends on theta_i through the oscillation frequency w.
* ``scalar`` -- CAMB's ``EarlyQuintessence``, V = m^2 f^2 (1 - cos phi/f)^n + Lambda; CAMB
  solves for m, f so that the *peak* fraction is f_EDE at redshift z_c.

Parameters: ``f_EDE`` in [0, 0.5], ``log10_z_c`` in [2, 5], ``theta_i`` in [0.1, 3.1].

Late-time dark energy (``CambSettings.w_bins``): w(z) = w_i in N bins with edges
0 = z_0 < z_1 < ... < z_N (default: N equal bins up to z = 3), w = -1 beyond z_N.
Parameters ``w_1`` (lowest z) .. ``w_N``, each in [-3, 0].  Its density, exactly for
sharp steps, is rho_w(z) / rho_w(0) = prod_i [(1 + min(z, z_i)) / (1 + min(z, z_{i-1}))]^{3(1 + w_i)}.

The steps are smoothed: w(ln a) changes across each edge as a tanh of half-width
``step_width`` in ln a (default min(0.01, narrowest bin in ln(1+z) / 16): 0.01 for 3 and 5
bins, 0.0049 for 10; at most 1/8 of the narrowest bin).  A jump in w is
a delta function in dw/dln a, which the fluid perturbation equations contain, and a cubic
spline through a jump (CAMB splines its w table) rings, pushing w across -1 where the true
w does not cross.  Because tanh is odd about the edge, the integral of (1 + w) -- hence
rho_w -- equals the sharp-step value everywhere farther than ~3 widths from an edge (up to
e^{-2 d / width}); at an edge ln rho_w differs by at most 1.04 x width x |Delta w|
(0.5 % for width 0.01 and Delta w = 0.5).  rho_w is integrated analytically.

Combination.  Stock CAMB holds one dark-energy component, so EDE plus w bins become ONE
tabulated fluid with the exact background of the sum:

    rho_eff(a) = rho_EDE(a) + rho_L g_w(a),     1 + w_eff = [(rho + p)_EDE + rho_L g_w (1 + w_w)] / rho_eff

where rho_L is the Lambda part of CAMB's axion fluid today (Omega_de minus the EDE density
today, so Omega_de is unchanged), g_w = rho_w(a)/rho_w(1), and rho_EDE is the fluid's
analytic form (checked against CAMB's AxionEffectiveFluid background on every call).
w_eff(ln a) goes to CAMB's ``DarkEnergyFluid`` (c_s^2 = 1; refuses w crossing -1) or
``DarkEnergyPPF`` (``de_perturbations``) on 2300-2900 nodes (ln a spacing 0.01, a quarter
step width where the w steps are).

Background: exact to CAMB's integration accuracy.  At w_i = -1, r_drag, 100 theta_*, age and
H(z) agree with CAMB's AxionEffectiveFluid to < 1e-11; with w bins H(z) equals the sum
rho_EDE + rho_L g_w (sharp product formula) to 2e-12, and for w bins alone to 1e-11.

Perturbations: the tabulated component is a c_s^2 = 1 fluid, while the axion fluid has
c_s^2(k, a) between (n-1)/(n+1) = 1/2 on large scales and 1 on small ones.  With w_n = 1
(where CAMB's fluid has c_s^2 = 1 too) the two agree to 2e-5 in TT and EE, so this is the
whole difference -- and it is large.  By default (``ede_correction = 'difference'``) the
lensed TT, TE, EE are therefore corrected with the error measured at the same parameters
with all w_i = -1 (two extra unlensed CAMB runs, CAMB's EDE and the table), moved with the
acoustic scale, which the late-time w shifts while the error stays locked to the peaks:

    D_ell = D_ell^table(w) + [D^CAMB-EDE - D^table]_{w = -1}(ell theta_*(w) / theta_*(-1))

Measured (``benchmarks/bench_ede.py --accuracy``; all w_i = -1 against CAMB's EDE; Planck 2018
best-fit LCDM parameters; lensed, lmax 2508, lens_potential_accuracy 1; max |dC/C| over
30 <= ell <= 2500; Delta chi^2 for TT/TE/EE: CV = cosmic-variance-limited full sky to 2508,
PL = Planck-like (f_sky 0.6, 33 / 70 muK-arcmin, 7.3' beam), plik = (Delta C_b)^T Cov^-1
(Delta C_b) with the plik-lite band powers and covariance):

    f_EDE, log10 z_c, theta_i    version        TT       EE      CV      PL     plik
    0.10   3.5   2.8             uncorrected    1.9e-2   4.3e-2  108     18.6   22.7
                                 corrected      3.1e-4   7.7e-4  0.87    0.009  0.011
    0.07   3.3   2.8             uncorrected    8.5e-3   1.2e-2  9.0     1.3    1.4
                                 corrected      1.2e-4   3.1e-4  0.14    0.001  0.002
    0.10   4.0   2.0             uncorrected    2.7e-2   5.9e-2  260     55.5   75.9
                                 corrected      4.0e-4   9.4e-4  1.5     0.041  0.053

Uncorrected, the tabulated component is NOT acceptable for Planck at f_EDE ~ 0.1
(Delta chi^2 20-80); corrected, it is (plik Delta chi^2 <= 0.05; the remaining CV-level
difference comes from correcting lensed spectra with an unlensed difference).  Not corrected:
C_L^phiphi (7e-3 - 8e-3, at L ~ 60), P(k, z=0) (max 1.0e-2, at k ~ 0.01 h/Mpc, z-independent),
sigma8 (3e-4 - 1e-3).  PPF instead of the fluid (needed for phantom bins with EDE): uncorrected
plik Delta chi^2 28-480; corrected 0.013-0.067, but 1.07 (CV 15) at f_EDE = 0.1, z_c = 10^4:
marginal there.  Away from w = -1 CAMB has no reference, so the transport of the correction
is checked on a proxy with a computable truth (the c_s^2 = 0.75 table as "CAMB's model", the
c_s^2 = 1 table corrected): at w = (-0.9, -0.95, -1), (-0.7, -0.8, -0.9), (-0.5, -0.7, -1)
the plik distance drops from 29-32 to 0.007-0.010 (PL 0.007-0.008, CV 0.58-0.74); without
the acoustic shift it would be 0.08, 1.0 and 3.5 (PL).  Cost (CPU, one thread, lmax 2508):
4.9 s per EDE + 3 w bins call, 3.6 s without the correction, 2.9 s for CAMB's EDE alone.

Scalar model with w bins: the field's w_eff oscillates and touches -1 whenever phi' = 0; a
c_s^2 = 1 fluid with that tabulated w (CAMB's own background nodes) diverges (CAMB stops
with its unrealistic-lensing-amplitude error), so ``scalar`` with w bins is refused.

Validity refusals (TheoryError, a ValueError): parameters outside the ranges above; a
phantom bin (w_i < -1) with EDE, or bins on both sides of -1, with the fluid perturbations
(the table would cross -1: use de_perturbations='ppf'); theta_MC_100 with the tabulated
component (its table depends on H0: sample H0); scalar EDE with w bins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .contract import LENS_MARGIN, TheoryError, TheorySetupError
from .contract import number_param as _number

__all__ = [
    "WBins", "EDE_RANGES", "W_RANGE", "DarkEnergyModel", "dark_energy_model", "ede_fluid_background",
    "effective_w_table", "w_of_lna", "rho_w_ratio", "cmb_chi2_cosmic_variance",
]

EDE_RANGES: dict[str, tuple[float, float]] = {
    "f_EDE": (0.0, 0.5),
    "log10_z_c": (2.0, 5.0),
    "theta_i": (0.1, 3.1),
}
W_RANGE = (-3.0, 0.0)
LNA_MIN = math.log(1e-8)  # table start: EDE is frozen (w = -1) long before
LNA_STEP = 0.01  # table spacing outside the w-bin region
Z_MAX_DEFAULT = 3.0


def _error(message: str):
    return TheoryError(message)


# -- the binned late-time w(z) ----------------------------------------------------------

@dataclass(frozen=True)
class WBins:
    """Redshift edges 0 = z_0 < ... < z_N of piecewise-constant w(z), and the half-width
    of the tanh steps in ln a (dimensionless; None: min(0.01, narrowest bin / 16), so the
    plateaus reach w_i to e^-16 ~ 1e-7)."""

    edges: tuple = (0.0, 1.0, 2.0, 3.0)
    step_width: float | None = None

    def __post_init__(self):
        edges = tuple(float(e) for e in self.edges)
        object.__setattr__(self, "edges", edges)
        if len(edges) < 2:
            raise ValueError(f"w bin edges need at least two values (0 and z_max), got {list(edges)}")
        if edges[0] != 0.0:
            raise ValueError(f"w bin edges must start at z = 0, got {edges[0]:g}")
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"w bin edges must increase strictly, got {list(edges)}")
        if edges[-1] > 10.0:
            raise ValueError(f"w bin edges must end at z <= 10, got {edges[-1]:g}")
        narrowest = float(np.min(np.diff(np.log1p(np.asarray(edges)))))
        if self.step_width is None:
            object.__setattr__(self, "step_width", min(0.01, narrowest / 16.0))
        if not 0.0 < self.step_width <= narrowest / 8.0:
            raise ValueError(f"w bin step_width must be in (0, {narrowest / 8.0:.4g}] (1/8 of the narrowest "
                             f"bin in ln(1+z), {narrowest:.4g}), got {self.step_width:g}")

    @classmethod
    def equal(cls, n: int, zmax: float = Z_MAX_DEFAULT, step_width: float | None = None) -> "WBins":
        """N bins of equal width in z over [0, zmax]."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"number of w bins must be a positive integer, got {n!r}")
        return cls(edges=tuple(np.linspace(0.0, zmax, int(n) + 1).tolist()), step_width=step_width)

    @property
    def n(self) -> int:
        return len(self.edges) - 1

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"w_{i}" for i in range(1, self.n + 1))


def _half_step_integral(u: np.ndarray, width: float) -> np.ndarray:
    """int_{-inf}^{u} (1 + tanh(v / width)) / 2 dv = (u + width ln cosh(u / width) + width ln 2) / 2 ...
    written without overflow: (u + |u| + width log1p(exp(-2|u|/width))) / 2."""
    au = np.abs(u)
    return 0.5 * (u + au + width * np.log1p(np.exp(-2.0 * au / width)))


def w_of_lna(lna, w_values, bins: WBins) -> np.ndarray:
    """Smoothed piecewise-constant w at ln a (<= 0): w_1 today, w_i in bin i, -1 beyond z_N."""
    lna = np.asarray(lna, dtype=float)
    ws = list(map(float, w_values)) + [-1.0]
    out = np.full(lna.shape, ws[0])
    for j, z_edge in enumerate(bins.edges[1:], start=1):
        x_edge = -math.log1p(z_edge)
        # Older than the edge (lna < x_edge) -> the next bin's w.
        out += (ws[j] - ws[j - 1]) * 0.5 * (1.0 + np.tanh((x_edge - lna) / bins.step_width))
    return out


def rho_w_ratio(lna, w_values, bins: WBins) -> np.ndarray:
    """rho_w(a) / rho_w(a=1) for the smoothed w(ln a): exp(3 int_{ln a}^0 (1 + w) dln a'), analytic."""
    lna = np.asarray(lna, dtype=float)
    ws = list(map(float, w_values)) + [-1.0]
    expo = (1.0 + ws[0]) * (-lna)
    for j, z_edge in enumerate(bins.edges[1:], start=1):
        x_edge = -math.log1p(z_edge)
        # int_{lna}^{0} H(x_edge - x) dx with H the smoothed step, via its antiderivative.
        step = _half_step_integral(x_edge - lna, bins.step_width) - _half_step_integral(
            np.asarray(x_edge), bins.step_width)
        expo = expo + (ws[j] - ws[j - 1]) * step
    return np.exp(3.0 * expo)


def _w_values(params: Mapping[str, Any], bins: WBins) -> tuple[float, ...]:
    missing = [n for n in bins.names if n not in params]
    if missing:
        raise TheorySetupError(f"missing w-bin parameter(s) {', '.join(missing)} for {bins.n} bins with edges "
                               f"{list(bins.edges)}")
    out = []
    for name in bins.names:
        value = _number(params, name)
        if not W_RANGE[0] <= value <= W_RANGE[1]:
            raise _error(f"parameter {name}={value:g} is outside the allowed range [{W_RANGE[0]:g}, {W_RANGE[1]:g}]")
        out.append(value)
    return tuple(out)


def _ede_values(params: Mapping[str, Any]) -> dict[str, float]:
    missing = [n for n in EDE_RANGES if n not in params]
    if missing:
        raise TheorySetupError(f"missing early-dark-energy parameter(s) {', '.join(missing)} "
                               f"(f_EDE, log10_z_c, theta_i)")
    out = {}
    for name, (lo, hi) in EDE_RANGES.items():
        value = _number(params, name)
        if not lo <= value <= hi:
            raise _error(f"parameter {name}={value:g} is outside the allowed range [{lo:g}, {hi:g}]")
        out[name] = value
    return out


# -- EDE backgrounds ----------------------------------------------------------------------

def _native_ede(model: str, n: int, ede: Mapping[str, float]):
    """CAMB's own EDE object (with its Lambda part); None (CAMB's Lambda) when f_EDE = 0."""
    import camb

    if ede["f_EDE"] == 0.0:
        # CAMB's AxionEffectiveFluid with fde_zc = 0 corrupts memory in the perturbation run
        # (measured: free(): invalid pointer); it is Lambda anyway.
        return None
    zc = 10.0 ** ede["log10_z_c"]
    if model == "fluid":
        de = camb.dark_energy.AxionEffectiveFluid()
        de.set_params(w_n=(n - 1.0) / (n + 1.0), fde_zc=ede["f_EDE"], zc=zc, theta_i=ede["theta_i"])
    else:
        de = camb.dark_energy.EarlyQuintessence()
        de.set_params(n=float(n), theta_i=ede["theta_i"], use_zc=True, zc=zc, fde_zc=ede["f_EDE"])
    return de


def ede_fluid_background(lna, results, w_n: float, f_ede: float, z_c: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Axion effective fluid (Poulin et al. 2018) in units of today's critical density:
    (rho_EDE(a), (rho + p)_EDE(a), rho_Lambda) at ln a = ``lna``, with CAMB's normalisation
    of the fraction f_EDE at z_c; w_n = (n - 1)/(n + 1) is the equation of state once the
    field oscillates.

    ``results`` is a CAMB background (CAMBdata) for the same cosmology; only its
    non-dark-energy densities at a_c and Omega_de are used."""
    power = 3.0 * (1.0 + w_n)
    a_c = 1.0 / (1.0 + z_c)
    acp = a_c**power
    dens = results.get_background_densities(a_c, vars=["tot", "de"])
    omega_de = float(results.get_Omega("de"))
    # rho_tot(a_c) with Lambda approximated by Omega_de, as CAMB does.
    other = float(dens["tot"][0] - dens["de"][0]) / a_c**4 / results.grhocrit + omega_de
    om = 2.0 * f_ede / (1.0 - f_ede) * other / (1.0 + 1.0 / acp)
    a_pow = np.exp(power * np.asarray(lna, dtype=float))
    rho = om * (1.0 + acp) / (a_pow + acp)
    return rho, rho * (1.0 + w_n) * a_pow / (a_pow + acp), omega_de - om


def _lna_grid(bins: WBins | None) -> np.ndarray:
    """Table nodes in ln a: LNA_STEP spacing, 1/4 of the step width where the w steps are."""
    coarse = np.arange(LNA_MIN, 0.0, LNA_STEP)
    if bins is None:
        return np.append(coarse, 0.0)
    x_far = -math.log1p(bins.edges[-1]) - 12.0 * bins.step_width
    fine = np.arange(x_far, 0.0, bins.step_width / 4.0)
    return np.unique(np.concatenate([coarse[coarse < x_far], fine, [0.0]]))


def effective_w_table(lna, rho_ede, rho_p_ede, rho_lambda: float, w_values, bins: WBins | None):
    """w_eff(ln a) of EDE + binned late-time dark energy (one component with the exact
    background); densities in units of today's critical density."""
    if bins is None:
        g, one_plus_w = np.ones_like(lna), np.zeros_like(lna)
    else:
        g, one_plus_w = rho_w_ratio(lna, w_values, bins), 1.0 + w_of_lna(lna, w_values, bins)
    rho = rho_ede + rho_lambda * g
    return -1.0 + (rho_p_ede + rho_lambda * g * one_plus_w) / rho


# -- the dark-energy model of one parameter point -------------------------------------------

@dataclass
class DarkEnergyModel:
    """CAMBparams with the dark energy set, the validated dark-energy parameters, derived
    EDE quantities, the (ln a, w) table handed to CAMB (tabulated models only) and
    (tabulated EDE + w only) the C_ell correction."""

    pars: Any
    params: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict)
    correct_cls: Callable | None = None
    table: tuple | None = None


def _ede_derived(results, ede: Mapping[str, float]) -> dict[str, float]:
    """Peak EDE fraction and its redshift from a CAMB background with CAMB's EDE model."""
    z_c = 10.0 ** ede["log10_z_c"]
    z = np.geomspace(z_c / 30.0, z_c * 30.0, 400)
    a = 1.0 / (1.0 + z)
    dens = results.get_background_densities(a, vars=["tot", "de"])
    rho_l = float(results.get_Omega("de")) * results.grhocrit * a**4  # upper bound of the Lambda part
    frac = np.clip(dens["de"] - rho_l, 0.0, None) / dens["tot"]
    i = int(np.argmax(frac))
    return {"z_c": z_c, "f_EDE_peak": float(frac[i]), "z_EDE_peak": float(z[i])}


def _table_de(lna, w_eff, perturbations: str):
    import camb

    de = camb.dark_energy.DarkEnergyFluid() if perturbations == "fluid" else camb.dark_energy.DarkEnergyPPF()
    a = np.exp(lna)
    a[-1] = 1.0
    de.set_w_a_table(a, w_eff)
    return de


def _check_crossing(w_eff: np.ndarray, what: str, settings) -> None:
    if settings.de_perturbations == "fluid" and np.any(w_eff < -1.0) and np.any(w_eff > -1.0):
        raise _error(f"{what}: the effective dark-energy equation of state crosses w = -1 "
                     f"(min {np.min(w_eff):.4f}, max {np.max(w_eff):.4f}), which the c_s^2 = 1 fluid cannot "
                     f"represent; use w_i >= -1 for all bins (or all <= -1 without EDE), or "
                     f"de_perturbations='ppf'")


def dark_energy_model(params: Mapping[str, Any], settings, base: Mapping[str, float],
                      make_pars: Callable) -> DarkEnergyModel:
    """The CAMB set-up for ``settings.ede_model`` and ``settings.w_bins`` (see the module
    docstring); ``make_pars(base, settings, dark_energy)`` builds CAMBparams."""
    import camb

    bins = settings.w_bins
    if settings.ede_model == "none" and bins is None:
        return DarkEnergyModel(pars=make_pars(base, settings, None))
    w_values = _w_values(params, bins) if bins is not None else ()
    out_params = dict(zip(bins.names, w_values)) if bins is not None else {}
    if settings.ede_model == "none":
        lna = _lna_grid(bins)
        w_eff = w_of_lna(lna, w_values, bins)
        _check_crossing(w_eff, f"w bins {dict(zip(bins.names, w_values))}", settings)
        return DarkEnergyModel(pars=make_pars(base, settings, _table_de(lna, w_eff, settings.de_perturbations)),
                               params=out_params, table=(lna, w_eff))

    ede = _ede_values(params)
    out_params.update(ede)
    if bins is not None and settings.ede_model == "scalar":
        raise _error("ede_model='scalar' cannot be combined with w bins: the scalar field's w oscillates "
                     "through -1 (whenever phi' = 0), which a tabulated fluid cannot follow; use "
                     "ede_model='fluid' with w bins, or the scalar model without w bins")
    if bins is not None and "H0" not in base:
        raise TheorySetupError("EDE with w bins needs H0 as the expansion parameter (the tabulated component "
                               "depends on it); theta_MC_100 / cosmomc_theta are only supported without w bins")
    native = _native_ede(settings.ede_model, settings.ede_n, ede)
    pars = make_pars(base, settings, native)
    try:
        bg = camb.get_background(pars, no_thermo=True)
    except camb.CAMBError as exc:
        raise _error(f"CAMB could not solve the {settings.ede_model} EDE background for {ede}: {exc}") from None
    derived = {"f_EDE": ede["f_EDE"], **_ede_derived(bg, ede)}
    if bins is None:
        return DarkEnergyModel(pars=pars, params=out_params, derived=derived)

    lna = _lna_grid(bins)
    w_n = (settings.ede_n - 1.0) / (settings.ede_n + 1.0)
    rho, rho_p, rho_l = ede_fluid_background(lna, bg, w_n, ede["f_EDE"], 10.0 ** ede["log10_z_c"])
    _self_check(bg, lna, rho, rho_p, rho_l)
    w_eff = effective_w_table(lna, rho, rho_p, rho_l, w_values, bins)
    _check_crossing(w_eff, f"EDE with w bins {dict(zip(bins.names, w_values))}", settings)
    pars = make_pars(base, settings, _table_de(lna, w_eff, settings.de_perturbations))
    correct = None
    if settings.ede_correction == "difference":
        w_lcdm = effective_w_table(lna, rho, rho_p, rho_l, (), None)
        correct = _Correction(base=dict(base), settings=settings, native=native,
                              table=(lna, w_lcdm), make_pars=make_pars)
    return DarkEnergyModel(pars=pars, params=out_params, derived=derived, correct_cls=correct, table=(lna, w_eff))


def _self_check(bg, lna, rho, rho_p, rho_l) -> None:
    """Our analytic axion-fluid background must be CAMB's (guards against a CAMB change)."""
    pick = lna[:: max(1, len(lna) // 50)]
    idx = np.searchsorted(lna, pick)
    rho_camb, w_camb = bg.get_dark_energy_rho_w(np.exp(pick))
    ours = (rho[idx] + rho_l) / (rho[-1] + rho_l)
    w_ours = -1.0 + rho_p[idx] / (rho[idx] + rho_l)
    if not (np.allclose(ours, rho_camb, rtol=1e-7, atol=0) and np.allclose(w_ours, w_camb, rtol=0, atol=1e-7)):
        raise RuntimeError("the analytic axion-fluid background disagrees with CAMB's AxionEffectiveFluid "
                           "(has CAMB's model changed?); the tabulated EDE component would be wrong")


@dataclass
class _Correction:
    """C_ell correction: the tabulated component's error at w_i = -1, moved with the acoustic scale."""

    base: dict
    settings: Any
    native: Any
    table: tuple
    make_pars: Callable

    def _unlensed(self, dark_energy, lmax: int):
        """Unlensed C_ell [muK^2] and 100 theta_*; no lensing (C_L^phiphi would need the
        lensed run, twice the cost, for a 0.7 % error the Planck lensing bandpowers hardly see)."""
        import camb

        pars = self.make_pars(self.base, self.settings, dark_energy)
        pars.WantTransfer = False
        pars.DoLensing = False
        pars.Want_CMB_lensing = False
        pars.set_for_lmax(lmax + LENS_MARGIN, lens_potential_accuracy=0)  # accurate up to lmax
        try:
            res = camb.get_results(pars)
        except camb.CAMBError as exc:
            raise _error(f"CAMB failed in the EDE correction run: {exc}") from None
        cl = res.get_unlensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True)
        return cl, float(res.get_derived_params()["thetastar"])

    def __call__(self, cls: dict, needs, results) -> dict:
        lmax = needs.cls_lmax
        cl_nat, theta_nat = self._unlensed(self.native, lmax)
        cl_tab, _ = self._unlensed(_table_de(*self.table, self.settings.de_perturbations), lmax)
        theta = float(results.get_derived_params()["thetastar"])
        ell = np.arange(lmax + 1, dtype=float)
        # Features at ell (w = -1) sit at ell * theta(-1) / theta(w) in the w-bin model.
        src = ell * theta / theta_nat
        out = dict(cls)
        for col, key in ((0, "tt"), (1, "ee"), (3, "te")):
            dl = (cl_nat[:, col] - cl_tab[:, col]) * ell * (ell + 1.0)
            shifted = np.interp(src, ell, dl, right=dl[-1])
            corr = np.zeros_like(ell)
            corr[2:] = shifted[2:] / (ell[2:] * (ell[2:] + 1.0))
            out[key] = cls[key] + corr
        return out


# -- error measures -------------------------------------------------------------------------

def cmb_chi2_cosmic_variance(cls: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], lmin: int = 2,
                             lmax: int | None = None, fsky: float = 1.0, noise_t: float = 0.0,
                             noise_p: float = 0.0, beam_fwhm_arcmin: float = 0.0) -> float:
    """Delta chi^2 between two sets of TT/TE/EE spectra [muK^2] for a Gaussian full-sky
    measurement: sum_ell fsky (2 ell + 1)/2 tr[(C^-1 Delta C)^2], C = ref + white noise
    (noise_t, noise_p in muK-arcmin, Gaussian beam FWHM in arcmin; 0 = cosmic-variance limited)."""
    lmax = lmax if lmax is not None else len(ref["tt"]) - 1
    ell = np.arange(lmin, lmax + 1, dtype=float)
    arcmin = math.pi / 180.0 / 60.0
    beam = np.exp(ell * (ell + 1.0) * (beam_fwhm_arcmin * arcmin) ** 2 / (8.0 * math.log(2.0)))
    sl = slice(lmin, lmax + 1)
    c = np.empty((len(ell), 2, 2))
    d = np.empty((len(ell), 2, 2))
    c[:, 0, 0] = ref["tt"][sl] + (noise_t * arcmin) ** 2 * beam
    c[:, 1, 1] = ref["ee"][sl] + (noise_p * arcmin) ** 2 * beam
    c[:, 0, 1] = c[:, 1, 0] = ref["te"][sl]
    d[:, 0, 0] = cls["tt"][sl] - ref["tt"][sl]
    d[:, 1, 1] = cls["ee"][sl] - ref["ee"][sl]
    d[:, 0, 1] = d[:, 1, 0] = cls["te"][sl] - ref["te"][sl]
    m = np.linalg.solve(c, d)
    return float(np.sum(fsky * (2.0 * ell + 1.0) / 2.0 * np.einsum("lij,lji->l", m, m)))
