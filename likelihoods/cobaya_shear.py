"""The LSST-Y1 cosmic-shear likelihood as a Cobaya likelihood that takes its physics from the
theory code (issue 18): P_nl(k, z) from ``Pk_interpolator`` and the background from
``Hubble`` (or ``comoving_radial_distance``), so it runs on Cobaya's own ``camb`` (or
``classy``) or on the project's :class:`~cosmopipe.likelihoods.cobaya_theory.EmulatedMatterPower`::

    likelihood:
      lsst_y1_shear:
        class: cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear
        survey: {nbins: 5}               # the project's keys (likelihoods.shear.likelihood)
        theta: {min: 2.5, max: 900.0, nbins: 26}
        scale_cut: 3000
        data: {power: {source: ee2}}     # the mock's P_nl: ee2 | hmcode | emulator | table
        covariance: {terms: [gaussian, ssc, cng]}   # default [gaussian]; or {file: FILE}
        k_max: 20.0                      # [h/Mpc] P_nl from the theory up to here, a power law beyond
        comoving_distance: hubble        # hubble | theory (see below)
        growth_redshifts: power          # power | limber (see below)

Everything about the data (mock or file, covariance, scale cut, survey, conventions) is the
project's own ``lsst_y1_shear`` likelihood with ``power: {source: theory}``: the same
factory builds it, so the data vector and covariance are identical to a ``cosmopipe
sample`` run.  Requirements and what is done with them (units):

==========================  ===================================================================
requirement                 use
==========================  ===================================================================
Pk_interpolator             P_nl,tot(z, k) [Mpc^3, k in 1/Mpc] at the likelihood's 41 redshifts
                            (0 to z_max of n(z)), read on its k grid [h/Mpc] up to ``k_max``;
                            beyond, a power law with the end slope (as the project's theory path)
Hubble                      H(z) [km/s/Mpc] on the fine n(z) grid: E = H/H0 in the lensing and
                            IA kernels; with ``comoving_distance: hubble`` (default) also
                            chi(z) = c int dz / H by the project's trapezoid rule on that grid
comoving_radial_distance    chi(z) [Mpc] on that grid, with ``comoving_distance: theory``
sigma8_z                    the growth D(z) = sigma8(z) / sigma8(0) of the NLA intrinsic-alignment
                            term: with ``growth_redshifts: power`` (default) at the power
                            redshifts, (1 + z) D cubic in z onto the Limber nodes (relative error
                            < 1e-5, no extra Boltzmann outputs); with ``limber`` at z = 0 and
                            the 128 Limber nodes themselves (CAMB: about 30 % more time per point)
H0, omegam                  h (chi in Mpc/h) and Omega_m (total matter) of the kernels
==========================  ===================================================================

With ``comoving_distance: hubble`` the likelihood does exactly the project's numerics on
the theory's H(z); on EmulatedMatterPower with ``growth_redshifts: limber`` it then equals
the project's shear likelihood with the same emulator as power source to round-off, and
with the default ``power`` to |Delta ln L| < 1e-4 (the IA growth interpolation;
tests/test_cobaya_theory.py).

Nuisance parameters are this likelihood's Cobaya ``params`` with the project's default
priors (:func:`cosmopipe.likelihoods.shear.likelihood.default_priors`): dz_i, m_i (Gaussian),
A_IA, eta_IA (flat), for the number of bins of ``survey`` (5 by default).  A point outside
their physical range (|dz| > 0.5, m <= -1) has ln L = -inf.  The data directory (for
relative ``nz_file`` / ``covariance.file`` / ``data.file``) is ``data_dir``, else
$COSMOPIPE_DATA.

This module imports cobaya; only :mod:`cosmopipe.likelihoods.cobaya_interface` imports it
(to list the class in ``COBAYA_CLASSES``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from cobaya.likelihood import Likelihood
from cobaya.log import LoggedError
from cobaya.typing import empty_dict

from cosmopipe.schema import ConfigError, Section

from .theory.background import comoving_distance_grid
from .shear.likelihood import ShearLikelihood, default_priors, from_config
from .shear.limber import nuisance_names
from .shear.survey import read_nz_file
from .theory.matter_power import extend_log_pk

__all__ = ["LSSTY1Shear", "nuisance_params", "shear_bins", "DISTANCE_MODES", "GROWTH_REDSHIFTS", "H_MAX"]

DISTANCE_MODES = ("hubble", "theory")
GROWTH_REDSHIFTS = ("power", "limber")
H_MAX = 1.0  # largest h of a Cosmology: k_max [h/Mpc] x H_MAX is the k_max [1/Mpc] asked of the theory
_OPTIONS = ("survey", "theta", "scale_cut", "data", "covariance", "preset", "conventions")
_PK_PAIR = ("delta_tot", "delta_tot")


def _data_dir(options: Mapping[str, Any]) -> str | None:
    return options.get("data_dir") or os.environ.get("COSMOPIPE_DATA") or None


def shear_bins(options: Mapping[str, Any]) -> int:
    """Number of tomographic bins a likelihood with these options has: ``survey.nbins``,
    else the columns of ``survey.nz_file``, else 5 (the SRD Y1 set-up)."""
    survey = dict(options.get("survey") or {})
    if survey.get("nbins"):
        return int(survey["nbins"])
    nz_file = survey.get("nz_file")
    if nz_file:
        path = Path(nz_file).expanduser()
        if not path.is_absolute() and not path.exists() and _data_dir(options):
            path = Path(_data_dir(options)) / path
        try:
            return int(read_nz_file(path)[1].shape[0])
        except (OSError, ValueError):
            return 5  # initialize() reports the bad file with the project's message
    return 5


def nuisance_params(nbins: int, fiducial: Mapping[str, float] | None = None) -> dict[str, dict]:
    """Cobaya ``params`` of the nuisances with the project's default priors and starting points."""
    out = {}
    for name, spec in default_priors(nbins, fiducial).items():
        if spec["prior"] == "gaussian":
            prior = {"dist": "norm", "loc": float(spec["mean"]), "scale": float(spec["sigma"])}
        else:
            prior = {"min": float(spec["min"]), "max": float(spec["max"])}
        out[name] = {"prior": prior, "ref": float(spec["ref"]), "proposal": float(spec["proposal"]),
                     "latex": spec["latex"]}
    return out


class LSSTY1Shear(Likelihood):
    """LSST-Y1 cosmic shear xi+- with P_nl and the background from the theory (module doc)."""

    survey: dict | None = None
    theta: dict | None = None
    scale_cut: Any = None
    data: dict | None = None
    covariance: dict | None = None
    preset: str | None = None
    conventions: dict | None = None
    data_dir: str | None = None
    k_max: float = 20.0
    comoving_distance: str = "hubble"
    growth_redshifts: str = "power"

    @classmethod
    def get_modified_defaults(cls, defaults, input_options=empty_dict):
        """The nuisance parameters for the number of bins the options give."""
        fiducial = dict((input_options.get("data") or {}).get("fiducial") or {})
        params = nuisance_params(shear_bins(input_options), fiducial)
        params.update(defaults.get("params") or {})
        defaults["params"] = params
        return defaults

    def initialize(self):
        if self.comoving_distance not in DISTANCE_MODES:
            raise LoggedError(self.log, "comoving_distance must be one of %s, got %r", ", ".join(DISTANCE_MODES),
                              self.comoving_distance)
        if self.growth_redshifts not in GROWTH_REDSHIFTS:
            raise LoggedError(self.log, "growth_redshifts must be one of %s, got %r", ", ".join(GROWTH_REDSHIFTS),
                              self.growth_redshifts)
        if not float(self.k_max) > 0:
            raise LoggedError(self.log, "k_max must be positive [h/Mpc], got %r", self.k_max)
        section = {"power": {"source": "theory"}}
        section.update({k: getattr(self, k) for k in _OPTIONS if getattr(self, k) is not None})
        info = {"data_dir": _data_dir({"data_dir": self.data_dir}), "run_dir": None}
        try:
            self.project: ShearLikelihood = from_config(Section(section, "lsst_y1_shear", "<cobaya>"), info)
        except (ConfigError, ValueError) as exc:
            raise LoggedError(self.log, "%s", exc) from None
        model = self.project.model
        self.nuisance = tuple(nuisance_names(model.nbins))
        self.k_inside = model.k <= float(self.k_max)
        self.z_growth = np.concatenate([[0.0], model.z_nodes])

    def get_requirements(self):
        model = self.project.model
        req = {"Pk_interpolator": {"z": model.z_power, "k_max": float(self.k_max) * H_MAX, "nonlinear": True,
                                   "vars_pairs": [_PK_PAIR]},
               "Hubble": {"z": model.z_fine},
               "sigma8_z": {"z": self.z_growth if self.growth_redshifts == "limber" else model.z_power},
               "H0": None, "omegam": None}
        if self.comoving_distance == "theory":
            req["comoving_radial_distance"] = {"z": model.z_fine}
        return req

    # -- the theory vector from the provider ---------------------------------------------
    def log_pk(self, h: float) -> np.ndarray:
        """ln P_nl [(Mpc/h)^3] at (the power redshifts, the model's k grid [h/Mpc]): the theory's
        P(z, k [1/Mpc]) up to ``k_max``, a power law beyond (:func:`extend_log_pk`)."""
        model = self.project.model
        k_in = model.k[self.k_inside]
        pk = self.provider.get_Pk_interpolator(_PK_PAIR, nonlinear=True, extrap_kmin=0.1 * model.k[0],
                                               extrap_kmax=2.0 * float(self.k_max) * H_MAX)
        lnp = pk.logP(model.z_power, k_in * h, grid=True) + 3.0 * math.log(h)
        return extend_log_pk(k_in, lnp, model.k)

    def kernels(self, nuis) -> dict:
        """Lensing + IA kernels (ShearModel.kernels_from) from the provider's background."""
        model, provider = self.project.model, self.provider
        H0 = float(provider.get_param("H0"))
        h = H0 / 100.0
        E = np.asarray(provider.get_Hubble(model.z_fine, units="km/s/Mpc"), dtype=float) / H0
        if self.comoving_distance == "hubble":
            chi = comoving_distance_grid(model.z_fine, E)
        else:
            chi = np.asarray(provider.get_comoving_radial_distance(model.z_fine), dtype=float) * h
        nodes = model.z_nodes
        if self.growth_redshifts == "limber":
            s8 = np.asarray(provider.get_sigma8_z(self.z_growth), dtype=float)
            d_nodes = s8[1:] / s8[0]
        else:
            # (1 + z) D, nearly constant, cubic in z onto the Limber nodes as P(k, z) is
            s8 = np.asarray(provider.get_sigma8_z(model.z_power), dtype=float)
            d_nodes = (model.z_interp @ ((1.0 + model.z_power) * s8 / s8[0])) / (1.0 + nodes)

        def growth(z):
            if np.shape(z) != nodes.shape or not np.allclose(z, nodes, rtol=0, atol=1e-12):
                raise LoggedError(self.log, "growth asked at redshifts other than the Limber nodes")
            return d_nodes

        return model.kernels_from(E, chi, float(provider.get_param("omegam")), growth, nuis)

    def theory_vector(self, params_values: Mapping[str, float]) -> np.ndarray:
        """xi+ then xi- (the project's data-vector layout) at the current provider state;
        ValueError for nuisances outside their ranges."""
        model = self.project.model
        _, nuis = model.split({n: params_values[n] for n in self.nuisance if n in params_values}, strict=False)
        h = float(self.provider.get_param("H0")) / 100.0
        lnp = model.z_interp @ self.log_pk(h)
        xp, xm = model.xi_from(None, nuis, lnp, self.kernels(nuis))
        return np.concatenate([xp.ravel(), xm.ravel()])

    def logp(self, **params_values):
        params_values.pop("_derived", None)
        try:
            vector = self.theory_vector(params_values)
        except ValueError as exc:
            self.log.debug("ln L = -inf: %s", exc)
            return -np.inf
        if not np.all(np.isfinite(vector)):
            self.log.debug("ln L = -inf: the theory vector is not finite")
            return -np.inf
        return -0.5 * self.project.chi2_of(vector)
