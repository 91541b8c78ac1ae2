"""Theory providers as components: each declares what it provides and which parameters it reads.

A provider answers ``calculate(params, requirements) -> TheoryResult`` for the
requirement keys it :attr:`provides` (units in :class:`~.contract.TheoryResult`).  The
resolver (:mod:`.resolver`) hands each likelihood requirement to the first named
provider that provides it, the way Cobaya assigns a ``must_provide`` to one theory.

==============  ===========================================================  ================
provider        what                                                         reads
==============  ===========================================================  ================
camb            CAMB (with EDE and w(z) bins when its settings say so):       Planck names
                everything below
emulator        the EDE observables emulator (.observables): C_ell, sigma8,   Planck names,
                distances, r_drag, H0, theta_*                                theta_star_100
ee2             CAMB linear P x EuclidEmulator2 boost: P_nl, sigma8           EE2 names
hmcode          CAMB HMcode-2020: P_nl, sigma8                                EE2 names
pk_emulator     a boost / hybrid / linear emulator file with its linear-      EE2 names
                power emulator: P_nl, sigma8
==============  ===========================================================  ================
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from cosmopipe.sims.cosmology import Cosmology

from .contract import TheoryResult
from .matter_power import PowerSource, power_source
from .observables.format import load_observables
from .observables.model import ObservablesEmulator

__all__ = ["CAPABILITIES", "CAMB_MODULE", "CambProvider", "ObservablesProvider", "PowerProvider", "NoProvider"]

CAMB_MODULE = "cosmopipe.likelihoods.theory.camb_theory"
# Requirement keys a likelihood may ask for (TheoryResult fields; distances = the four callables).
CAPABILITIES = ("cls", "distances", "rdrag", "H0", "theta_star", "sigma8", "S8", "pk_lin", "pk_nl")


def camb_module():
    """camb_theory by name (a test may stand a fake in its place); None when not installed."""
    try:
        return importlib.import_module(CAMB_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != CAMB_MODULE:
            raise
        return None


@dataclass(frozen=True)
class NoProvider:
    """No theory: likelihoods that compute their own (cosmic shear with its power source)."""

    name: str = "none"
    provides: frozenset = frozenset()

    def params(self) -> tuple[str, ...]:
        return ()

    def merge(self, requirements):
        return {}

    def calculate(self, params: Mapping[str, float], requirements: Mapping[str, Any]) -> TheoryResult:
        return TheoryResult(params=dict(params))


@dataclass(frozen=True)
class CambProvider:
    """CAMB through camb_theory; ``settings`` its CambSettings (EDE model, w bins, accuracy)."""

    settings: Any = None
    name: str = "camb"
    provides: frozenset = frozenset(CAPABILITIES)

    def params(self) -> tuple[str, ...]:
        module = camb_module()
        if hasattr(module, "theory_params"):
            return tuple(module.theory_params(self.settings))
        return tuple(module.PARAMS)

    def merge(self, requirements):
        module = camb_module()
        if module is not None and hasattr(module, "merge_requirements"):
            return module.merge_requirements(*requirements)
        return None

    def calculate(self, params: Mapping[str, float], requirements: Mapping[str, Any]) -> TheoryResult:
        module = camb_module()
        if self.settings is None:
            return module.camb_theory(dict(params), requirements)
        return module.camb_theory(dict(params), requirements, self.settings)


@dataclass(frozen=True)
class ObservablesProvider:
    """The EDE observables emulator file ``path`` (loaded once per process and provider;
    only the path travels when the provider is pickled to a Dask worker)."""

    path: str
    name: str = "emulator"
    provides: frozenset = frozenset({"cls", "distances", "rdrag", "H0", "theta_star", "sigma8", "S8"})
    _emu: list = field(default_factory=list, compare=False, repr=False)

    def __getstate__(self):
        return {"path": self.path, "name": self.name, "provides": self.provides, "_emu": []}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)

    @property
    def emulator(self) -> ObservablesEmulator:
        if not self._emu:
            self._emu.append(load_observables(self.path))
        return self._emu[0]

    def params(self) -> tuple[str, ...]:
        """theta_star_100 for the fully emulated path, or H0 for CAMB's background; mnu fixed."""
        return tuple(self.emulator.names) + ("H0", "mnu")

    def merge(self, requirements):
        return None

    def calculate(self, params: Mapping[str, float], requirements: Mapping[str, Any]) -> TheoryResult:
        return self.emulator.theory(params, requirements)


def _pk_callable(source: PowerSource, cosmo: Cosmology):
    def pk(k, z):
        """P_nl,tot [(Mpc/h)^3] at k [h/Mpc] and z: (nz, nk)."""
        return np.exp(source.log_pk(cosmo, np.atleast_1d(np.asarray(k, float)), np.atleast_1d(np.asarray(z, float))))

    pk.log_pk = lambda k, z: source.log_pk(cosmo, np.asarray(k, float), np.asarray(z, float))
    return pk


@dataclass(frozen=True)
class PowerProvider:
    """A nonlinear matter power source (EE2, HMcode, a boost / hybrid / linear emulator file)
    as a provider of P_nl and sigma8 for EE2-style parameters (Cosmology names)."""

    source: Any
    name: str = "ee2"
    provides: frozenset = frozenset({"pk_nl", "sigma8", "S8"})

    @classmethod
    def named(cls, name: str, path: str | None = None, ee2: str = "auto", linear: str | None = None,
              conventions=None) -> "PowerProvider":
        source = {"pk_emulator": "emulator"}.get(name, name)
        return cls(power_source(source, path, ee2, linear, conventions), name)

    def params(self) -> tuple[str, ...]:
        return Cosmology.names()

    def merge(self, requirements):
        return None

    def cosmology(self, params: Mapping[str, float]) -> Cosmology:
        return Cosmology.from_dict({k: params[k] for k in Cosmology.names() if k in params})

    def calculate(self, params: Mapping[str, float], requirements: Mapping[str, Any]) -> TheoryResult:
        cosmo = self.cosmology(params)
        out = TheoryResult(params=dict(params))
        if requirements.get("pk_nl"):
            out.pk_nl = _pk_callable(self.source, cosmo)
        if requirements.get("sigma8") or requirements.get("S8"):
            out.sigma8 = float(self.source.sigma8(cosmo))
            out.S8 = out.sigma8 * math.sqrt(cosmo.Omega_m / 0.3)
            out.derived.update(sigma8=out.sigma8, S8=out.S8)
        return out
