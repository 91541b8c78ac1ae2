"""Hybrid emulator: EuclidEmulator2 for LCDM, COLA for the effect of dark energy.

    B(k, z; theta) = B_EE2(k, z; theta_LCDM) * B_COLA(k, z; theta) / B_COLA(k, z; theta_LCDM)

or, in response mode (a :class:`~emulators.response.ResponseEmulator` trained
on LCDM twin pairs as ``cola``),

    B(k, z; theta) = B_EE2(k, z; theta_LCDM) * R_emu(k, z; theta),

with theta_LCDM = theta at w0 = -1, wa = 0 (the approach of the COLA
emulator for LSST Y1, arXiv:2404.12344): COLA's resolution errors largely
cancel in the ratio, and the high-resolution EE2 sets the LCDM boost.  At
w0 = -1, wa = 0 the ratio is exactly one, so the hybrid equals EE2.

theta must lie inside the COLA emulator's box and theta_LCDM inside EE2's box
(EE2 is never extrapolated, also not with ``extrapolate=True``).  k must lie
inside the COLA k range here; above its k_max the shear likelihood's power
source (likelihoods.shear.power, ``cola_response``) holds the COLA ratio at
its k_max value or sets it to 1, and logs which once.

Above the COLA k_max the response is continued with HMcode-2020's shape when the
file carries ``hmcode_tail`` (:mod:`cosmopipe.emulators.hmcode_tail`, measured
there); :meth:`HybridEmulator.log_tail` gives it.

``ee2="exact"`` (the default) calls EuclidEmulator2 itself (about 15 ms per
cosmology on 31 redshifts); ``ee2="surrogate"`` uses the PCA + MLP model of
B_EE2 on the LCDM slice stored with the hybrid (:mod:`cosmopipe.emulators.ee2_lcdm`,
about 0.1 ms), for sampling.  At w0 = -1 the hybrid then equals the surrogate,
which reproduces EE2 to the accuracy in its provenance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .boost import BoostEmulator, camb_pk_lin
from .core import summary
from .ee2 import ee2_boost, euclidemu2_version, first_outside_box
from .ee2_lcdm import LCDM as _LCDM, ee2_lcdm_log_boost
from .hmcode_tail import hmcode_tail_log
from .io import save
from .response import ResponseEmulator

__all__ = ["HybridEmulator", "make_hybrid", "EE2_MODES"]

EE2_MODES = ("exact", "surrogate")


@dataclass(frozen=True)
class HybridEmulator:
    """EE2 x COLA-ratio boost (see the module docstring); ``cola`` is the
    embedded COLA :class:`~emulators.boost.BoostEmulator`; ``ee2_lcdm`` the
    optional EE2 surrogate on the LCDM slice (:mod:`cosmopipe.emulators.ee2_lcdm`);
    ``hmcode_tail`` the optional continuation of R above the COLA k_max
    (:mod:`cosmopipe.emulators.hmcode_tail`)."""

    cola: BoostEmulator | ResponseEmulator
    info: dict = field(default_factory=dict)
    ee2_lcdm: BoostEmulator | None = None
    hmcode_tail: BoostEmulator | None = None
    kind = "hybrid"

    __repr__ = __str__ = summary

    @property
    def mode(self) -> str:
        """'ratio' (B_COLA(theta) / B_COLA(theta_LCDM)) or 'response' (R_emu(theta))."""
        return "response" if self.cola.kind == "response" else "ratio"

    def __post_init__(self):
        space = self.cola.space
        if not any(name in space.names for name in _LCDM):
            raise ValueError("hybrid emulator: the COLA emulator varies neither w0 nor wa, so there is no "
                             "dark-energy effect to add to EuclidEmulator2")
        for name, value in _LCDM.items():
            if name in space.names:
                lo, hi = space.box[name]
                if not lo <= value <= hi:
                    raise ValueError(f"hybrid emulator: the COLA emulator's box of {name}, [{lo:g}, {hi:g}], "
                                     f"does not contain the LCDM value {name}={value:g}")
            elif space.fixed.get(name, value) != value:
                raise ValueError(f"hybrid emulator: the COLA emulator was trained with {name} fixed to "
                                 f"{space.fixed[name]:g}, not the LCDM value {value:g}")
        if self.ee2_lcdm is not None:
            sur = self.ee2_lcdm.space
            want = {n: v for n, v in space.fixed.items() if n not in _LCDM}
            have = {n: v for n, v in sur.fixed.items() if n not in _LCDM}
            if set(sur.names) != {n for n in space.names if n not in _LCDM} or have != want:
                raise ValueError(f"hybrid emulator: the EE2 surrogate varies {', '.join(sur.names)} with fixed "
                                 f"{have}, which is not the LCDM slice of the COLA emulator ({', '.join(space.names)}"
                                 f", fixed {want})")

    @property
    def space(self):
        return self.cola.space

    @property
    def params(self) -> tuple[str, ...]:
        return self.cola.params

    @property
    def box(self):
        return self.cola.box

    @property
    def fixed(self):
        return self.cola.fixed

    @property
    def k_range(self):
        return self.cola.k_range

    @property
    def z_range(self):
        return self.cola.z_range

    @property
    def linear(self):
        return self.cola.linear

    def _lcdm(self, theta: np.ndarray) -> np.ndarray:
        """theta with w0 = -1 and wa = 0 where they are varied."""
        out = theta.copy()
        for name, value in _LCDM.items():
            if name in self.space.names:
                out[:, self.space.names.index(name)] = value
        return out

    def log_boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False, ee2: str = "exact") -> np.ndarray:
        """ln B, shaped like :meth:`boost`."""
        theta, single = self.cola.space.read(params, extrapolate, who="hybrid emulator")
        return self._log_boost(theta, self.cola.model.operator(k, z, "hybrid emulator"), single, ee2)

    def log_cola_ratio(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """ln of what COLA adds to EE2: ln R_emu(theta) (response mode) or
        ln B_COLA(theta) - ln B_COLA(theta_LCDM) (ratio mode); shaped like :meth:`boost`."""
        theta, single = self.cola.space.read(params, extrapolate, who="hybrid emulator")
        op = self.cola.model.operator(k, z, "hybrid emulator")
        out = self._log_cola_ratio(theta, op)
        return out[0] if single else out

    def _log_cola_ratio(self, theta: np.ndarray, op) -> np.ndarray:
        if self.cola.kind == "response":
            return self.cola.log_response_theta(theta, op)
        # One network pass for theta and theta_LCDM together: at w0 = -1 the
        # two rows are identical and their difference is exactly zero.
        n = theta.shape[0]
        q = self.cola.model.apply(np.vstack([theta, self._lcdm(theta)]), op)
        return q[:n] - q[n:]

    def log_tail(self, k: np.ndarray, z: np.ndarray, params: Any) -> np.ndarray:
        """ln R_HM(k) - ln R_HM(k_c) (nz, nk) at one cosmology: what continues the COLA
        response above its k_max k_c [h/Mpc]; zero at and below k_c."""
        if self.hmcode_tail is None:
            raise ValueError("hybrid emulator: this file carries no HMcode tail (train.hmcode_tail in the workflow)")
        theta, _ = self.cola.space.read(params, False, who="hybrid emulator")
        return hmcode_tail_log(self.hmcode_tail, theta[:1], self.space.names, np.asarray(z, dtype=float),
                               np.asarray(k, dtype=float))[0]

    def ln_ee2_lcdm(self, theta_lcdm: np.ndarray, z: np.ndarray, k: np.ndarray, ee2: str = "exact") -> np.ndarray:
        """ln B_EE2 (n, nz, nk) at rows of theta_LCDM (n, p) in :attr:`params` order, checked
        against EE2's box; any z in [0, 10] (surrogate: its trained range) and k > 0 [h/Mpc]."""
        if ee2 not in EE2_MODES:
            raise ValueError(f"hybrid emulator: ee2 must be one of {', '.join(EE2_MODES)}, got {ee2!r}")
        n = theta_lcdm.shape[0]
        outside = first_outside_box(self.space.names, theta_lcdm, self.space.fixed)
        if outside is not None:
            where = f" (cosmology {outside[0]} of {n})" if n > 1 else ""
            raise ValueError(f"hybrid emulator: theta_LCDM (theta with w0=-1, wa=0){where} is outside the "
                             f"EuclidEmulator2 box: {outside[1]}")
        if ee2 == "exact":
            return np.stack([np.log(ee2_boost(k, z, params)) for params in self.space.cosmology_dicts(theta_lcdm)])
        if self.ee2_lcdm is None:
            raise ValueError("hybrid emulator: ee2='surrogate' needs the EE2 surrogate, which this file does not "
                             "carry (train it with train.ee2_surrogate in the workflow)")
        lo, hi = self.ee2_lcdm.z_range
        if np.any(z < lo) or np.any(z > hi):
            raise ValueError(f"hybrid emulator: the EE2 surrogate covers z in [{lo:g}, {hi:g}], asked for "
                             f"[{np.min(z):g}, {np.max(z):g}]; use ee2='exact'")
        return ee2_lcdm_log_boost(self.ee2_lcdm, theta_lcdm, self.space.names, z, k)

    def _log_boost(self, theta, op, single, ee2="exact"):
        out = self.ln_ee2_lcdm(self._lcdm(theta), op.z, op.k, ee2)
        out += self._log_cola_ratio(theta, op)  # in place: out is a fresh array
        return out[0] if single else out

    def boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False, ee2: str = "exact") -> np.ndarray:
        """B(k, z) (see the module docstring); arguments and shapes as
        :meth:`cosmopipe.emulators.boost.BoostEmulator.boost`.  ``extrapolate`` lets theta
        leave the COLA box; theta_LCDM must still be inside EE2's box.  ``ee2``:
        'exact' (EuclidEmulator2) or 'surrogate' (module docstring)."""
        q = self.log_boost(k, z, params, extrapolate, ee2)
        return np.exp(q, out=q)

    def pnl(self, k: Any, z: Any, params: Any, extrapolate: bool = False, ee2: str = "exact") -> np.ndarray:
        """P_lin x B [(Mpc/h)^3], with the COLA emulator's linear emulator (or CAMB)."""
        theta, single = self.cola.space.read(params, extrapolate, who="hybrid emulator")
        op = self.cola.model.operator(k, z, "hybrid emulator")
        z_arr, k_arr = op.z, op.k
        q = self._log_boost(theta, op, single=False, ee2=ee2)
        if self.linear is not None:
            out = np.exp(q + self.linear.log_pk_theta(theta, self.space, z_arr, k_arr, extrapolate))
        else:
            out = np.exp(q) * camb_pk_lin(self.space.cosmology_dicts(theta), z_arr, k_arr)
        return out[0] if single else out

    def save(self, path):
        return save(self, path)


def make_hybrid(cola: BoostEmulator | ResponseEmulator, ee2_lcdm: BoostEmulator | None = None,
                hmcode_tail: BoostEmulator | None = None) -> HybridEmulator:
    """Hybrid of a COLA boost or response emulator with EuclidEmulator2 (provenance
    copied), optionally with an EE2 surrogate (:func:`cosmopipe.emulators.ee2_lcdm.train_ee2_lcdm`)
    and an HMcode tail (:func:`cosmopipe.emulators.hmcode_tail.train_hmcode_tail`)."""
    info = {"cola_dataset_hash": cola.info.get("dataset_hash", ""), "reference": "EuclidEmulator2",
            "mode": "response" if cola.kind == "response" else "ratio",
            "euclidemu2_version": euclidemu2_version(), "code_version": cola.info.get("code_version", "")}
    return HybridEmulator(cola=cola, info=info, ee2_lcdm=ee2_lcdm, hmcode_tail=hmcode_tail)
