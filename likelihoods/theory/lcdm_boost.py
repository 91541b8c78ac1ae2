"""Nonlinear power for w0waCDM from LCDM boosts: the shortcuts a user would otherwise take.

arXiv:2510.14888 compares the COLA hybrid with the common ways of getting a
w0waCDM nonlinear spectrum without a dark-energy emulator.  Each is a power
source (:class:`~cosmopipe.likelihoods.theory.matter_power.PowerSource`) on
CAMB's linear P_tot(k, z; theta), so that only the nonlinear boost differs
from the EE2 reference (:class:`~cosmopipe.likelihoods.theory.matter_power.EE2Power`):

=============  ==========================================================================
name           boost B(k, z; theta) multiplying P_lin(theta)
=============  ==========================================================================
ee2_lcdm       B_EE2(theta_LCDM): EE2's LCDM boost used unchanged for any w0, wa
hmcode         B_HM(theta) = P_HM(theta) / P_lin(theta): HMcode-2020 alone (CAMB's)
hmcode_hybrid  B_EE2(theta_LCDM) B_HM(theta) / B_HM(theta_LCDM): the hybrid form of
               arXiv:2404.12344 with HMcode in place of COLA
ee2_response   B_EE2(theta_LCDM) R_EE2(theta), R_EE2 = B_EE2(theta) / B_EE2(theta_LCDM)
               known only up to the COLA k_max and held at its edge value above: a
               perfect COLA emulator, i.e. the floor the k range alone sets
ee2_response_  the same, continued above the COLA k_max with HMcode's response shape
hmcode         R_HM(k) / R_HM(k_max)
=============  ==========================================================================

theta_LCDM is theta with w0 = -1, wa = 0 (every other parameter, A_s included,
unchanged), as in the COLA hybrid.  One CAMB run with HMcode at theta serves the
linear power and B_HM(theta); hmcode_hybrid adds one at theta_LCDM
(matter_power's run cache shares them between the sources of one process).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from cosmopipe.emulators.ee2 import check_box
from cosmopipe.sims.cosmology import Cosmology

from .contract import LikelihoodError
from .matter_power import (_CAMB_KMAX, EE2Power, HMcodePower, _camb_results, _LastResult, _rows, extend_log_pk,
                           power_source)

__all__ = ["LCDMBoostPower", "lcdm_projection", "METHODS", "method_source"]

# The boost models an emulator-bias study compares (method_source).
METHODS = ("emulator", "ee2", "ee2_lcdm", "hmcode", "hmcode_hybrid", "ee2_response", "ee2_response_hmcode")
# The campaign's k_max [h/Mpc] (its particle Nyquist frequency) when no emulator says otherwise.
COLA_KMAX = 1.235
LCDM = {"w0": -1.0, "wa": 0.0}


_SHORTCUTS = {
    "ee2_lcdm": "B_EE2(theta_LCDM)",
    "hmcode_hybrid": "B_EE2(theta_LCDM) B_HMcode2020(theta) / B_HMcode2020(theta_LCDM)",
    "ee2_response": "B_EE2(theta_LCDM) R_EE2(theta; k <= response_kmax), R held at its edge above",
    "ee2_response_hmcode": "B_EE2(theta_LCDM) R_EE2(theta; k <= response_kmax), R_HMcode2020's shape above",
}


def lcdm_projection(cosmo: Cosmology) -> Cosmology:
    """theta_LCDM: ``cosmo`` with w0 = -1 and wa = 0."""
    return dataclasses.replace(cosmo, **LCDM)


def _camb_log_pk(cosmo: Cosmology, k: np.ndarray, z: np.ndarray, kmax: float, neutrinos: str,
                 nonlinear: bool) -> np.ndarray:
    """ln P_tot (nz, nk) [(Mpc/h)^3], linear or HMcode-2020, from one (cached) CAMB run
    with HMcode; a power law in k above ``kmax`` [h/Mpc]."""
    res = _camb_results(cosmo, z, kmax, nonlinear=True, neutrinos=neutrinos)
    get = res.get_nonlinear_matter_power_spectrum if nonlinear else res.get_linear_matter_power_spectrum
    kh, z_out, pk = get(var1="delta_tot", var2="delta_tot", hubble_units=True, k_hunit=True)
    keep = kh <= kmax
    return extend_log_pk(kh[keep], np.log(pk[_rows(np.asarray(z_out), z)][:, keep]), k)


@dataclass(frozen=True)
class LCDMBoostPower:
    """P_lin(theta) [CAMB] x an LCDM-anchored boost (module table): ``name`` is
    'ee2_lcdm', 'hmcode_hybrid', 'ee2_response' or 'ee2_response_hmcode'.  EE2 above
    its k_max as ``boost_extrapolation``; ``response_kmax`` [h/Mpc] is where the
    ee2_response models stop knowing R."""

    name: str = "ee2_lcdm"
    kmax: float = _CAMB_KMAX
    neutrinos: str = "three_degenerate"
    boost_extrapolation: str = "constant"
    response_kmax: float = COLA_KMAX
    depends_on_cosmology: bool = True
    _memo: _LastResult = field(default_factory=_LastResult, repr=False, compare=False)

    def __post_init__(self):
        if self.name not in _SHORTCUTS:
            raise LikelihoodError(f"LCDM-boost power: name must be one of {', '.join(_SHORTCUTS)}, got {self.name!r}")

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._memo.get(cosmo, k, z, lambda: self._compute(cosmo, np.asarray(k, float), np.asarray(z, float)))

    def _compute(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        lcdm = lcdm_projection(cosmo)
        check_box(cosmo)  # the reference (EE2 at theta) must exist for a comparison to mean anything
        ee2 = EE2Power(kmax=self.kmax, neutrinos=self.neutrinos, boost_extrapolation=self.boost_extrapolation)
        lnp_lin = _camb_log_pk(cosmo, k, z, self.kmax, self.neutrinos, nonlinear=False)
        ln_b_ee2_lcdm = ee2._log_boost(k, z, lcdm)
        out = lnp_lin + ln_b_ee2_lcdm
        if self.name == "ee2_lcdm":
            return out
        if self.name.startswith("ee2_response"):
            # R_EE2 on k clipped to the COLA k_max: exact below it, its edge value above
            k_c = np.minimum(k, self.response_kmax)
            out += ee2._log_boost(k_c, z, cosmo) - ee2._log_boost(k_c, z, lcdm)
            if self.name == "ee2_response":
                return out
        ln_r_hm = self._log_hmcode_response(cosmo, lcdm, k, z, lnp_lin)
        if self.name == "hmcode_hybrid":
            return out + ln_r_hm
        # ee2_response_hmcode: HMcode's shape of R above k_max, continuous there
        edge = self._log_hmcode_response(cosmo, lcdm, np.array([self.response_kmax]), z,
                                         _camb_log_pk(cosmo, np.array([self.response_kmax]), z, self.kmax,
                                                      self.neutrinos, nonlinear=False))
        return out + np.where(k > self.response_kmax, ln_r_hm - edge, 0.0)

    def _log_hmcode_response(self, cosmo, lcdm, k, z, lnp_lin):
        """ln R_HM = ln B_HM(theta) - ln B_HM(theta_LCDM) (nz, nk)."""
        ln_b = _camb_log_pk(cosmo, k, z, self.kmax, self.neutrinos, nonlinear=True) - lnp_lin
        ln_b_lcdm = (_camb_log_pk(lcdm, k, z, self.kmax, self.neutrinos, nonlinear=True)
                     - _camb_log_pk(lcdm, k, z, self.kmax, self.neutrinos, nonlinear=False))
        return ln_b - ln_b_lcdm

    def describe(self) -> dict:
        out = {"source": self.name, "linear": "CAMB P_tot", "boost": _SHORTCUTS[self.name], "camb_kmax": self.kmax,
               "neutrinos": self.neutrinos, "boost_extrapolation": self.boost_extrapolation}
        if self.name.startswith("ee2_response"):
            out["response_kmax"] = self.response_kmax
        return out

    def sigma8(self, cosmo: Cosmology) -> float:
        return float(_camb_results(cosmo, np.array([0.0]), self.kmax, True, self.neutrinos).get_sigma8_0())


def method_source(name: str, emulator: str | None = None, conventions=None):
    """The power source of a boost model by name (:data:`METHODS`): 'emulator' (the
    file ``emulator``, as sampling uses it: its own linear-power emulator), 'ee2'
    (the reference), 'hmcode' (CAMB HMcode-2020 alone) or an LCDM-boost shortcut
    (the ee2_response floors stop at the COLA k_max of ``emulator`` when given)."""
    if name not in METHODS:
        raise LikelihoodError(f"method: unknown boost model {name!r}; choose one of {', '.join(METHODS)}")
    if name == "emulator":
        if emulator is None:
            raise LikelihoodError("method 'emulator' needs an emulator file")
        return power_source("emulator", emulator, conventions=conventions)
    neutrinos = getattr(conventions, "neutrinos", "three_degenerate")
    if name == "ee2":
        return power_source("ee2", conventions=conventions)
    if name == "hmcode":
        return HMcodePower(neutrinos=neutrinos)
    kmax = COLA_KMAX
    if name.startswith("ee2_response") and emulator is not None:
        cola = getattr(power_source("emulator", emulator).emulator, "cola", None)
        kmax = float(cola.k_range[1]) if cola is not None else kmax
    return LCDMBoostPower(name=name, neutrinos=neutrinos, response_kmax=kmax,
                          boost_extrapolation=getattr(conventions, "boost_extrapolation", "constant"))
