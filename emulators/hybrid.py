"""Hybrid emulator: EuclidEmulator2 for LCDM, COLA for the effect of dark energy.

    B(k, z; theta) = B_EE2(k, z; theta_LCDM) * B_COLA(k, z; theta) / B_COLA(k, z; theta_LCDM)

with theta_LCDM = theta at w0 = -1, wa = 0 (the approach of the COLA
emulator for LSST Y1, arXiv:2404.12344): COLA's resolution errors largely
cancel in the ratio, and the high-resolution EE2 sets the LCDM boost.  At
w0 = -1, wa = 0 the ratio is exactly one, so the hybrid equals EE2.

theta must lie inside the COLA emulator's box and theta_LCDM inside EE2's box
(EE2 is never extrapolated, also not with ``extrapolate=True``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .boost import BoostEmulator, camb_pk_lin
from .ee2 import check_box, ee2_boost

__all__ = ["HybridEmulator", "make_hybrid"]

_LCDM = {"w0": -1.0, "wa": 0.0}


@dataclass(frozen=True)
class HybridEmulator:
    """EE2 x COLA-ratio boost (see the module docstring); ``cola`` is the
    embedded COLA :class:`~emulators.boost.BoostEmulator`."""

    cola: BoostEmulator
    info: dict = field(default_factory=dict)
    kind = "hybrid"

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

    def log_boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """ln B, shaped like :meth:`boost`."""
        theta, single = self.cola.space.read(params, extrapolate, who="hybrid emulator")
        k_arr, z_arr = self.cola.grids(k, z, who="hybrid emulator")
        return self._log_boost(theta, z_arr, k_arr, single)

    def _log_boost(self, theta, z_arr, k_arr, single):
        n = theta.shape[0]
        lcdm = self._lcdm(theta)
        lcdm_dicts = self.space.cosmology_dicts(lcdm)
        for i, params in enumerate(lcdm_dicts):
            try:
                check_box(params)
            except ValueError as exc:
                where = f" (cosmology {i} of {n})" if n > 1 else ""
                raise ValueError(f"hybrid emulator: theta_LCDM (theta with w0=-1, wa=0){where} is outside the "
                                 f"EuclidEmulator2 box: {exc}") from None
        # One network pass for theta and theta_LCDM together: at w0 = -1 the
        # two rows are identical and their difference is exactly zero.
        q = self.cola.model.evaluate(np.vstack([theta, lcdm]), z_arr, k_arr)
        ratio = q[:n] - q[n:]
        ee2 = np.stack([np.log(ee2_boost(k_arr, z_arr, params)) for params in lcdm_dicts])
        out = ee2 + ratio
        return out[0] if single else out

    def boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """B(k, z) (see the module docstring); arguments and shapes as
        :meth:`emulators.boost.BoostEmulator.boost`.  ``extrapolate`` lets theta
        leave the COLA box; theta_LCDM must still be inside EE2's box."""
        return np.exp(self.log_boost(k, z, params, extrapolate))

    def pnl(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """P_lin x B [(Mpc/h)^3], with the COLA emulator's linear emulator (or CAMB)."""
        theta, single = self.cola.space.read(params, extrapolate, who="hybrid emulator")
        k_arr, z_arr = self.cola.grids(k, z, who="hybrid emulator")
        q = self._log_boost(theta, z_arr, k_arr, single=False)
        if self.linear is not None:
            out = np.exp(q + self.linear.log_pk_theta(theta, self.space, z_arr, k_arr, extrapolate))
        else:
            out = np.exp(q) * camb_pk_lin(self.space.cosmology_dicts(theta), z_arr, k_arr)
        return out[0] if single else out

    def save(self, path):
        from .io import save

        return save(self, path)


def make_hybrid(cola: BoostEmulator) -> HybridEmulator:
    """Hybrid of a COLA boost emulator with EuclidEmulator2 (provenance copied)."""
    info = {"cola_dataset_hash": cola.info.get("dataset_hash", ""), "reference": "EuclidEmulator2",
            "euclidemu2_version": _package_version("euclidemu2"), "code_version": cola.info.get("code_version", "")}
    return HybridEmulator(cola=cola, info=info)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
