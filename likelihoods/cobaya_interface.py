"""The project's likelihoods as Cobaya likelihoods (issue 18, item 5).

Each class wraps one entry of :data:`cosmopipe.likelihoods.base.LIKELIHOODS`: it builds
the project likelihood with the registry factory (the class attributes below are the
factory's YAML keys), translates its ``requirements()`` into Cobaya requirements, and in
``logp`` builds a :class:`~cosmopipe.likelihoods.theory.contract.TheoryResult` from
Cobaya's provider and returns the project's ``loglike``::

    likelihood:
      cosmopipe.likelihoods.cobaya_interface.BAO: {sets: [desi_dr2]}
      cosmopipe.likelihoods.cobaya_interface.PantheonPlus: {covariance: diagonal}
      cosmopipe.likelihoods.cobaya_interface.PlikLite: null
    theory:
      camb: {extra_args: {num_massive_neutrinos: 1, nnu: 3.044, lens_potential_accuracy: 1, ...}}

with the extra_args of :data:`CAMB_EXTRA_ARGS` (the project's CAMB call).

(``workflows/cobaya_bao_sn.yaml`` is a complete example.)  The theory is any Cobaya
theory that provides the products below, usually Cobaya's own ``camb``.

Translation (project requirement -> Cobaya product -> TheoryResult field, units):

============  ====================================================  =====================================
distances     ``angular_diameter_distance`` and ``Hubble`` at the     angular_diameter_distance [Mpc],
              data redshifts (exactly those, so no interpolation)     hubble [km/s/Mpc]; comoving and
                                                                      luminosity distance (1+z) D_A,
                                                                      (1+z)^2 D_A (flat)
rdrag         derived ``rdrag`` [Mpc]                                 rdrag [Mpc]
H0            ``H0`` [km/s/Mpc]                                       H0
theta_star    derived ``thetastar`` (100 theta_*, CAMB's)             theta_star (100 theta_*)
sigma8, S8    derived ``sigma8`` (and ``omegam`` for S8)              sigma8, S8
cls           ``Cl`` {tt, te, ee, bb, pp: lmax}, lensed,              cls [muK^2, raw C_ell; pp raw
              ``get_Cl(ell_factor=False, units='FIRASmuK2')``         C_L^phiphi], ell = 0..lmax
============  ====================================================  =====================================

``pk_lin`` / ``pk_nl`` are not translated: the LSST-Y1 shear likelihood has its own wrapper,
:class:`~cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear` (``lsst_y1_shear`` in
:data:`COBAYA_CLASSES`), which asks Cobaya for ``Pk_interpolator`` and ``Hubble`` directly;
a CosmopipeLikelihood asking for them is refused at initialisation.  The project's
emulators are a Cobaya theory in :mod:`cosmopipe.likelihoods.cobaya_theory`.
Nuisance parameters (``parameters()``, e.g. Planck's A_planck) are declared as the
class's Cobaya ``params`` with the same Gaussian / uniform prior.

This module imports cobaya; nothing else in the package imports this module.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from cobaya.likelihood import Likelihood

from cosmopipe.schema import Section

from .base import LIKELIHOODS, likelihood_factory
from .cobaya_shear import LSSTY1Shear
from .theory.camb_theory import N_EFF
from .theory.contract import LENS_MARGIN, TheoryResult, TheorySetupError

__all__ = ["CosmopipeLikelihood", "BAO", "Pantheon", "PantheonPlus", "PlikLite", "LowlTT", "LowlEE", "LSSTY1Shear",
           "COBAYA_CLASSES", "CAMB_EXTRA_ARGS", "cobaya_likelihood_class", "cobaya_requirements",
           "theory_from_provider", "cobaya_params", "data_redshifts"]

# Cobaya ``camb`` extra_args giving the CAMB call of the project's camb_theory (one massive
# neutrino, degenerate hierarchy, N_eff 3.044, lens_potential_accuracy 1 -- CAMB 2's default
# is 4 -- HMcode-2020 lensing, LENS_MARGIN multipoles beyond lmax); with them the C_ell agree
# to round-off and the log-likelihoods to < 1e-9 (tests/test_cobaya.py).
CAMB_EXTRA_ARGS = {"num_massive_neutrinos": 1, "nnu": N_EFF, "neutrino_hierarchy": "degenerate",
                   "lens_potential_accuracy": 1, "halofit_version": "mead2020", "lens_output_margin": LENS_MARGIN}

_TRANSLATED = ("distances", "rdrag", "H0", "theta_star", "sigma8", "S8", "cls")


def data_redshifts(like) -> np.ndarray:
    """Redshifts at which a distance likelihood evaluates the theory: its own ``z`` and
    those of its ``parts`` (BAO data sets), sorted and unique."""
    zs = []
    if getattr(like, "z", None) is not None:
        zs.append(np.atleast_1d(np.asarray(like.z, dtype=float)))
    for part in getattr(like, "parts", ()):
        zs.append(np.atleast_1d(np.asarray(part.z, dtype=float)))
    if not zs:
        raise TheorySetupError(f"{getattr(like, 'name', like)!r} asks for distances but has no data "
                               "redshifts (attribute z or parts[i].z) to request them at")
    return np.unique(np.concatenate(zs))


def cobaya_requirements(requirements: Mapping[str, Any], z=None) -> dict[str, Any]:
    """Cobaya ``get_requirements()`` for a project ``requirements()`` mapping; ``z`` the data
    redshifts for ``distances``."""
    unknown = sorted(k for k, v in requirements.items() if v and k not in _TRANSLATED)
    if unknown:
        raise TheorySetupError(f"requirement(s) {', '.join(unknown)} have no Cobaya translation yet "
                               f"(translated: {', '.join(_TRANSLATED)})")
    out: dict[str, Any] = {}
    if requirements.get("distances"):
        if z is None:
            raise TheorySetupError("requirement 'distances' needs the data redshifts")
        z = np.asarray(z, dtype=float)
        out["angular_diameter_distance"] = {"z": z}
        out["Hubble"] = {"z": z}
    if requirements.get("rdrag"):
        out["rdrag"] = None
    if requirements.get("H0"):
        out["H0"] = None
    if requirements.get("theta_star"):
        out["thetastar"] = None
    if requirements.get("sigma8") or requirements.get("S8"):
        out["sigma8"] = None
    if requirements.get("S8"):
        out["omegam"] = None
    cls = requirements.get("cls")
    if cls:
        if not cls.get("lensing", True):
            raise TheorySetupError("unlensed C_ell are not translated (requirement cls.lensing: false)")
        lmax = int(cls["lmax"])
        out["Cl"] = {k: lmax for k in cls.get("spectra", ("tt", "te", "ee", "bb"))}
    return out


def theory_from_provider(provider, requirements: Mapping[str, Any], params: Mapping[str, float],
                         z=None) -> TheoryResult:
    """The TheoryResult a project likelihood reads, from Cobaya's ``provider`` (see the
    module docstring for the products and units)."""
    out = TheoryResult(params=dict(params))
    if requirements.get("distances"):
        z_known = np.asarray(z, dtype=float)
        d_a = np.asarray(provider.get_angular_diameter_distance(z_known), dtype=float)
        hub = np.asarray(provider.get_Hubble(z_known, units="km/s/Mpc"), dtype=float)

        def lookup(values, what):
            def at(zq):
                zq = np.asarray(zq, dtype=float)
                hi = np.clip(np.searchsorted(z_known, zq), 1, max(z_known.size - 1, 1))
                lo = hi - 1 if z_known.size > 1 else hi * 0
                idx = np.where(np.abs(z_known[hi] - zq) < np.abs(z_known[lo] - zq), hi, lo)
                if not np.allclose(z_known[idx], zq, rtol=0, atol=1e-12):
                    raise TheorySetupError(f"{what} requested at redshifts that were not asked of Cobaya "
                                           f"(known: the {z_known.size} data redshifts)")
                return values[idx]
            return at

        da_at = lookup(d_a, "angular_diameter_distance")
        out.angular_diameter_distance = da_at
        out.hubble = lookup(hub, "Hubble")
        out.comoving_distance = lambda zq: (1.0 + np.asarray(zq, float)) * da_at(zq)
        out.luminosity_distance = lambda zq: (1.0 + np.asarray(zq, float)) ** 2 * da_at(zq)
    if requirements.get("rdrag"):
        out.rdrag = float(provider.get_param("rdrag"))
    if requirements.get("H0"):
        out.H0 = float(provider.get_param("H0"))
    if requirements.get("theta_star"):
        out.theta_star = float(provider.get_param("thetastar"))
    if requirements.get("sigma8") or requirements.get("S8"):
        out.sigma8 = float(provider.get_param("sigma8"))
        if requirements.get("S8"):
            out.S8 = out.sigma8 * float(np.sqrt(provider.get_param("omegam") / 0.3))
    if requirements.get("cls"):
        cl = provider.get_Cl(ell_factor=False, units="FIRASmuK2")
        out.cls = {k: np.asarray(cl[k], dtype=float) for k in ("tt", "te", "ee", "bb", "pp") if k in cl}
    return out


def cobaya_params(spec: Mapping[str, dict]) -> dict[str, dict]:
    """Cobaya ``params`` entries for a project ``parameters()`` mapping (gaussian / uniform priors)."""
    out = {}
    for name, prior in spec.items():
        kind = prior.get("prior", "uniform")
        if kind == "gaussian":
            mean, sigma = float(prior["mean"]), float(prior["sigma"])
            out[name] = {"prior": {"dist": "norm", "loc": mean, "scale": sigma}, "ref": mean, "proposal": sigma}
        elif kind == "uniform":
            lo, hi = float(prior["min"]), float(prior["max"])
            out[name] = {"prior": {"min": lo, "max": hi}, "ref": 0.5 * (lo + hi), "proposal": 0.01 * (hi - lo)}
        else:
            raise TheorySetupError(f"parameter {name}: prior {kind!r} has no Cobaya translation")
    return out


class CosmopipeLikelihood(Likelihood):
    """Base of the wrappers: ``registry_name`` names the project likelihood, ``_options``
    the factory's YAML keys (class attributes; None leaves the factory's default);
    ``data_dir`` the data directory (None: $COSMOPIPE_DATA)."""

    registry_name: str = ""
    _options: tuple = ("verify_checksums",)
    data_dir: str | None = None
    verify_checksums: bool | None = None

    def initialize(self):
        section = {k: getattr(self, k) for k in self._options if getattr(self, k, None) is not None}
        factory = likelihood_factory(self.registry_name)
        self.project = factory(Section(section, self.registry_name, "<cobaya>"),
                               {"data_dir": self.data_dir, "run_dir": None})
        self._requirements = dict(self.project.requirements())
        self._z = data_redshifts(self.project) if self._requirements.get("distances") else None
        self._cobaya_requirements = cobaya_requirements(self._requirements, self._z)

    def get_requirements(self):
        return self._cobaya_requirements

    def theory(self, params_values: Mapping[str, float]) -> TheoryResult:
        """The TheoryResult of the current point (for tests and diagnostics)."""
        return theory_from_provider(self.provider, self._requirements, params_values, self._z)

    def logp(self, **params_values):
        params_values.pop("_derived", None)
        return float(self.project.loglike(self.theory(params_values), params_values))


class BAO(CosmopipeLikelihood):
    """``bao``: keys ``sets`` (sixdf_2011, sdss_dr7_mgs, boss_dr12, desi_dr1, desi_dr2)."""

    registry_name = "bao"
    _options = ("sets", "verify_checksums")
    sets: list | None = None


class Pantheon(CosmopipeLikelihood):
    """``pantheon``: keys ``sample`` (binned | full), ``systematics``."""

    registry_name = "pantheon"
    _options = ("sample", "systematics", "verify_checksums")
    sample: str | None = None
    systematics: bool | None = None


class PantheonPlus(CosmopipeLikelihood):
    """``pantheon_plus``: keys ``zmin``, ``covariance`` (auto | full | diagonal)."""

    registry_name = "pantheon_plus"
    _options = ("zmin", "covariance", "verify_checksums")
    zmin: float | None = None
    covariance: str | None = None


_A_PLANCK = cobaya_params({"A_planck": {"prior": "gaussian", "mean": 1.0, "sigma": 0.0025}})


class PlikLite(CosmopipeLikelihood):
    """``planck_2018_plik_lite``: key ``spectra`` (TTTEEE | TT | TE | EE); nuisance A_planck.

    Planck likelihoods each declare A_planck with its prior; Cobaya applies a parameter's
    prior once however many likelihoods read it."""

    registry_name = "planck_2018_plik_lite"
    _options = ("spectra", "verify_checksums")
    spectra: str | None = None
    params = _A_PLANCK


class LowlTT(CosmopipeLikelihood):
    """``planck_2018_lowl_tt``; nuisance A_planck."""

    registry_name = "planck_2018_lowl_tt"
    params = _A_PLANCK


class LowlEE(CosmopipeLikelihood):
    """``planck_2018_lowl_ee_sroll2``; nuisance A_planck."""

    registry_name = "planck_2018_lowl_ee_sroll2"
    params = _A_PLANCK


# The shear likelihood (its own module: it reads P_nl and the background from the theory)
# is listed under the project's name too.
COBAYA_CLASSES = {**{cls.registry_name: cls for cls in (BAO, Pantheon, PantheonPlus, PlikLite, LowlTT, LowlEE)},
                  "lsst_y1_shear": LSSTY1Shear}


def cobaya_likelihood_class(name: str) -> type[Likelihood]:
    """The Cobaya likelihood class of the project likelihood registered as ``name``."""
    if name not in COBAYA_CLASSES:
        known = ", ".join(sorted(COBAYA_CLASSES))
        extra = " (registered in the project but not wrapped yet)" if name in LIKELIHOODS else ""
        raise KeyError(f"no Cobaya wrapper for likelihood {name!r}{extra}; wrapped: {known}")
    return COBAYA_CLASSES[name]
