"""A cosmopipe emulator as a Cobaya theory: the nonlinear matter power spectrum and the
background for any Cobaya likelihood (issue 18).

:class:`EmulatedMatterPower` answers Cobaya's standard products, with the signatures of
Cobaya's ``camb`` and ``classy`` (it is a ``BoltzmannBase``), so a likelihood written for
those runs on an emulator unchanged::

    theory:
      cosmopipe.likelihoods.cobaya_theory.EmulatedMatterPower:
        emulator: <shipped model name, or path of an emulator file>
        ee2: auto                 # a hybrid's EE2 part: auto | exact | surrogate
        cola_response: auto       # a hybrid above its COLA k range: auto | hmcode | constant | unity
        k_per_decade: 40          # the P(k) grid, log-spaced on multiples of 1/k_per_decade dex
        k_min: 1.0e-5             # [h/Mpc], where the grid starts

===============================  ===========================================================  ==============
product (``get_...``)            what                                                         units
===============================  ===========================================================  ==============
Pk_interpolator, Pk_grid         total matter, var_pair (delta_tot, delta_tot) only;           k 1/Mpc,
                                 nonlinear=True: the emulator's P_nl (the shear               P Mpc^3
                                 likelihood's ``emulator`` power source, same ranges and
                                 continuations); nonlinear=False: its linear-power emulator
Hubble                           H(z) of the flat w0waCDM background with massive neutrinos   km/s/Mpc
                                 (:mod:`cosmopipe.likelihoods.theory.background`)              (or 1/Mpc)
comoving_radial_distance         chi(z), Simpson in ln(1+z), relative error < 1e-10 to z = 3,  Mpc
                                 < 1e-8 to z = 1100
angular_diameter_distance        chi(z) / (1 + z) (flat)                                      Mpc
sigma8_z                         sigma8 D(z), D the scale-independent growth with D(0) = 1    --
derived sigma8, S8               sigma8 of the total linear matter at z = 0 (linear-power     --
                                 emulator, else one CAMB run); S8 = sigma8 sqrt(Omega_m/0.3)
derived omegam, Omega_m, H0, h  total matter today (both names); H0 [km/s/Mpc]; h           --
===============================  ===========================================================  ==============

The P(k) grid is k = 10^(j / k_per_decade) h/Mpc from k_min to the largest ``k_max``
asked for (1/Mpc) divided by h = 0.4, the smallest h a Cosmology allows, so the grid does
not depend on the point and the emulator's cached interpolation operators are reused.

Parameters, in either vocabulary (:mod:`cosmopipe.likelihoods.theory.params`; not both):

* Cobaya / Planck names: ombh2, omch2, H0 (or h), As (or logA), ns, mnu [eV], w, wa;
* EE2 names (:class:`cosmopipe.sims.cosmology.Cosmology`): Omega_m, Omega_b, h (or H0),
  A_s, n_s, m_nu [eV], w0, wa.

A name not given takes the value the emulator was trained with when it holds it fixed, else
the EE2 reference (:class:`~cosmopipe.sims.cosmology.Cosmology` defaults: w0 = -1, wa = 0,
m_nu = 0.058 eV, ...).  Planck names convert with
:func:`cosmopipe.likelihoods.theory.params.planck_to_ee2` (CAMB's Omega_nu h^2 of mnu).

A point the emulator cannot predict (outside its training box, a parameter it holds fixed
set to another value, outside the Cosmology ranges) makes ``calculate`` return False:
Cobaya counts it as zero likelihood (ln L = -inf); the first such point is logged with the
reason (with ``stop_at_error: true`` it is a LoggedError instead).  A configuration
mistake (unknown emulator name, an unprovidable product, mixed vocabularies) is a
``LoggedError`` at initialisation.

This module imports cobaya; nothing else in the package imports it.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import numpy as np
from cobaya.conventions import Const
from cobaya.log import LoggedError
from cobaya.theories.cosmo import BoltzmannBase
from cobaya.tools import Pool1D
from scipy.integrate import cumulative_simpson
from scipy.interpolate import CubicSpline

from cosmopipe._version import __version__
from cosmopipe.emulators import load as load_emulator
from cosmopipe.emulators import shipped
from cosmopipe.sims.cosmology import Cosmology

from .theory.background import HUBBLE_DISTANCE, background
from .theory import params as vocabulary
from .theory.contract import TheorySetupError
from .theory.matter_power import EmulatorPower, _linear_log_pk

__all__ = ["EmulatedMatterPower", "cosmology_of", "vocabulary_of", "comoving_distance", "PLANCK_STYLE",
           "EE2_STYLE", "PRODUCTS", "DERIVED"]

PLANCK_STYLE = ("ombh2", "omch2", "H0", "h", "As", "logA", "ns", "mnu", "w", "wa")
EE2_STYLE = ("Omega_m", "Omega_b", "h", "H0", "A_s", "n_s", "m_nu", "w0", "wa")
_PLANCK_ONLY = ("ombh2", "omch2", "As", "logA", "ns", "mnu", "w")
_EE2_ONLY = ("Omega_m", "Omega_b", "A_s", "n_s", "m_nu", "w0")
# get_X methods this theory really implements (BoltzmannBase declares more).
PRODUCTS = ("Pk_interpolator", "Pk_grid", "Hubble", "comoving_radial_distance", "angular_diameter_distance",
            "sigma8_z")
_Z_PRODUCTS = ("Hubble", "comoving_radial_distance", "angular_diameter_distance", "sigma8_z")
DERIVED = ("omegam", "Omega_m", "H0", "h", "sigma8", "S8")
H_MIN = 0.4  # smallest h of a Cosmology (sims.cosmology.PARAMETER_RANGES)


class _ZPool(NamedTuple):
    """What BoltzmannBase._get_z_dependent looks up: the requested redshifts."""

    z_pool: Pool1D


def vocabulary_of(names) -> str:
    """'planck' or 'ee2': the parameter vocabulary of the input names (module doc)."""
    names = set(names)
    planck, ee2 = sorted(names & set(_PLANCK_ONLY)), sorted(names & set(_EE2_ONLY))
    if planck and ee2:
        raise TheorySetupError(f"parameters mix two vocabularies: {', '.join(planck)} (Cobaya/Planck names) and "
                               f"{', '.join(ee2)} (EE2 names); use one")
    if planck:
        missing = [n for n in ("ombh2", "omch2", "ns") if n not in names]
        missing += [] if names & {"As", "logA"} else ["As (or logA)"]
        missing += [] if names & {"H0", "h"} else ["H0 (or h)"]
        if missing:
            raise TheorySetupError(f"Cobaya-style parameters need {', '.join(missing)} as well "
                                   f"(given: {', '.join(sorted(names))})")
        return "planck"
    return "ee2"


def cosmology_of(params: Mapping[str, float], vocab: str, defaults: Mapping[str, float]) -> Cosmology:
    """The Cosmology of Cobaya input ``params`` in vocabulary ``vocab`` ('planck' or 'ee2');
    names not given take ``defaults`` (Cosmology names).  ValueError (a TheoryError or the
    Cosmology's own) for values outside the physical ranges."""
    p = {k: float(v) for k, v in params.items()}
    if vocab == "planck":
        p.setdefault("mnu", defaults["m_nu"])
        ee2 = vocabulary.planck_to_ee2(p)
        ee2["w0"] = p.get("w", defaults["w0"])
        ee2["wa"] = p.get("wa", defaults["wa"])
    else:
        ee2 = {n: p.get(n, defaults[n]) for n in Cosmology.names()}
        if "H0" in p and "h" not in p:
            ee2["h"] = p["H0"] / 100.0
    return Cosmology.from_dict(ee2)


def comoving_distance(bg, z) -> np.ndarray:
    """chi(z) [Mpc/h] of a shear Background at redshifts z >= 0: Simpson's rule in
    x = ln(1 + z) (integrand (1 + z) / E) on >= 257 points, 400 per unit x, then a cubic
    spline in x; relative error < 1e-10 to z = 3 and < 1e-8 to z = 1100 (measured against
    adaptive quadrature)."""
    z = np.asarray(z, dtype=float)
    x_max = max(math.log1p(float(np.max(z))), 1e-3)
    x = np.linspace(0.0, x_max, max(257, int(400 * x_max) + 1))
    zz = np.expm1(x)
    chi = cumulative_simpson((1.0 + zz) / bg.E(zz), x=x, initial=0.0)
    return HUBBLE_DISTANCE * CubicSpline(x, chi)(np.log1p(z))


class EmulatedMatterPower(BoltzmannBase):
    r"""P(k, z) and the background from a cosmopipe emulator, as a Cobaya theory (module doc).

    Options: ``emulator`` (shipped model name or file path; required), ``ee2``,
    ``cola_response``, ``k_per_decade``, ``k_min`` [h/Mpc]."""

    emulator: str | None = None
    ee2: str = "auto"
    cola_response: str = "auto"
    k_per_decade: int = 40
    k_min: float = 1.0e-5
    extra_args: dict | None = None  # BoltzmannBase's; no extra arguments are used

    def initialize(self):
        super().initialize()
        if not self.emulator:
            raise LoggedError(self.log, "option 'emulator' is required: a shipped model name (shipped: %s) or "
                                        "the path of an emulator file", ", ".join(shipped()) or "none")
        try:
            emu = load_emulator(self.emulator)
        except (OSError, ValueError) as exc:  # unknown name (lists the shipped ones), missing or damaged file
            raise LoggedError(self.log, "emulator %r: %s", self.emulator, exc) from None
        try:
            self.power = EmulatorPower(path=str(self.emulator), emulator=emu, ee2=self.ee2,
                                       cola_response=self.cola_response)
        except ValueError as exc:
            raise LoggedError(self.log, "emulator %r: %s", self.emulator, exc) from None
        self.linear = emu.linear if getattr(emu, "linear", None) is not None else None
        space = getattr(emu, "space", None)
        self.defaults = {**Cosmology().to_dict(), **(dict(space.fixed) if space is not None else {})}
        if int(self.k_per_decade) < 4 or not float(self.k_min) > 0:
            raise LoggedError(self.log, "k_per_decade must be >= 4 and k_min > 0, got %r and %r",
                              self.k_per_decade, self.k_min)
        self._pk: dict[tuple, tuple[np.ndarray, float]] = {}
        self._derived_extra: list[str] = []
        self._vocabulary = "ee2"
        self._rejected = False

    # -- what it reads and gives ---------------------------------------------------
    def get_allow_agnostic(self):
        return False

    def get_can_support_params(self):
        return list(dict.fromkeys(PLANCK_STYLE + EE2_STYLE))

    def get_can_provide_params(self):
        return list(DERIVED)

    def get_can_provide_methods(self):
        return {k: v for k, v in super().get_can_provide_methods().items() if k in PRODUCTS}

    def initialize_with_params(self):
        super().initialize_with_params()
        try:
            self._vocabulary = vocabulary_of(self.input_params)
        except TheorySetupError as exc:
            raise LoggedError(self.log, "%s", exc) from None

    def must_provide(self, **requirements):
        super().must_provide(**requirements)
        for key, value in self._must_provide.items():
            if isinstance(key, tuple) and key[0] == "Pk_grid":
                if tuple(key[2:]) != ("delta_tot", "delta_tot"):
                    raise LoggedError(self.log, "only the total matter power (delta_tot, delta_tot) is emulated, "
                                                "not %s x %s", *key[2:])
                if not key[1] and self.linear is None:
                    raise LoggedError(self.log, "the linear matter power was requested, and %s carries no "
                                                "linear-power emulator", self.emulator)
                self._pk[key] = (np.asarray(value["z"], dtype=float), float(value["k_max"]))
            elif key in _Z_PRODUCTS:
                self.collectors[key] = _ZPool(Pool1D(value["z"]))
            elif value is None and key in DERIVED:
                if key not in self._derived_extra:
                    self._derived_extra.append(key)
            else:
                raise LoggedError(self.log, "cannot provide %r; an emulator gives %s and the derived parameters %s",
                                  key, ", ".join(PRODUCTS), ", ".join(DERIVED))

    def k_grid(self, k_max: float) -> np.ndarray:
        """The P(k) grid [h/Mpc] for a request up to ``k_max`` [1/Mpc] (module doc)."""
        n = int(self.k_per_decade)
        j0 = math.floor(math.log10(float(self.k_min)) * n + 1e-9)
        j1 = math.ceil(math.log10(max(k_max, 1e-3) / H_MIN) * n - 1e-9)
        return 10.0 ** (np.arange(j0, j1 + 1) / n)

    # -- the computation -------------------------------------------------------------
    def cosmology(self, params: Mapping[str, float]) -> Cosmology:
        """The Cosmology of the input parameters (names as in the module doc)."""
        return cosmology_of({k: v for k, v in params.items() if k in self.input_params}, self._vocabulary,
                            self.defaults)

    def calculate(self, state, want_derived=True, **params_values_dict):
        wanted = set(self._derived_extra) | (set(self.output_params) if want_derived else set())
        try:
            cosmo = self.cosmology(params_values_dict)
            needs_sigma8 = bool(wanted & {"sigma8", "S8"}) or "sigma8_z" in self.collectors
            sigma8 = float(self.power.sigma8(cosmo)) if needs_sigma8 else None
            self._products(state, cosmo, sigma8)
            derived = {name: self._derived(name, cosmo, sigma8) for name in wanted}
        except ValueError as exc:  # outside the box / fixed values / ranges (TheoryError, LikelihoodError)
            if self.stop_at_error:
                raise LoggedError(self.log, "at %s: %s", dict(params_values_dict), exc) from exc
            if not self._rejected:
                self._rejected = True
                self.log.warning("zero likelihood at %s: %s (further such points are logged at debug level)",
                                 dict(params_values_dict), exc)
            else:
                self.log.debug("zero likelihood: %s", exc)
            return False
        if want_derived:
            state["derived"] = {p: derived[p] for p in self.output_params}
        state["derived_extra"] = {p: derived[p] for p in self._derived_extra}
        return True

    @staticmethod
    def _derived(name: str, cosmo: Cosmology, sigma8: float | None) -> float:
        if name in ("omegam", "Omega_m"):
            return cosmo.Omega_m
        if name == "H0":
            return 100.0 * cosmo.h
        if name == "h":
            return cosmo.h
        if name == "sigma8":
            return sigma8
        return sigma8 * math.sqrt(cosmo.Omega_m / 0.3)  # S8

    def _products(self, state, cosmo: Cosmology, sigma8: float | None) -> None:
        h = cosmo.h
        for key, (z, k_max) in self._pk.items():
            k = self.k_grid(k_max)
            if key[1]:
                lnp = self.power.log_pk(cosmo, k, z)
            else:
                lnp = _linear_log_pk(self.linear, cosmo, k, z)
            # h/Mpc and (Mpc/h)^3 -> 1/Mpc and Mpc^3
            state[key] = (k * h, z.copy(), np.exp(lnp) / h**3)
        if not any(q in self.collectors for q in _Z_PRODUCTS):
            return
        bg = background(cosmo)
        if "Hubble" in self.collectors:
            z = self.collectors["Hubble"].z_pool.values
            state["Hubble"] = 100.0 * h * bg.E(z) / Const.c_km_s  # 1/Mpc, as BoltzmannBase stores it
        for key in ("comoving_radial_distance", "angular_diameter_distance"):
            if key in self.collectors:
                z = self.collectors[key].z_pool.values
                chi = comoving_distance(bg, z) / h  # Mpc
                state[key] = chi if key == "comoving_radial_distance" else chi / (1.0 + z)
        if "sigma8_z" in self.collectors:
            z = self.collectors["sigma8_z"].z_pool.values
            state["sigma8_z"] = sigma8 * bg.growth(z)

    def get_version(self):
        return __version__
