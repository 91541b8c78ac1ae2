"""Nonlinear matter power spectra for the shear theory, selectable by name.

Every source answers ``log_pk(cosmo, k, z) -> (nz, nk)``: ln P_nl of the
*total* matter (CDM, baryons and massive neutrinos: what lenses light) at
wavenumbers k [h/Mpc] and redshifts z, P in (Mpc/h)^3.  The Limber integral
asks once per parameter point, on its own fixed (k, z) grid, and interpolates.
Outside the range a source can predict, ln P is continued linearly in ln k
with the slope of its last two points (a power law), so the deep UV of the
low-redshift, high-ell Limber integrand stays finite.

=========  =========================================================================
name       what
=========  =========================================================================
ee2        CAMB linear P_tot(k, z) times the EuclidEmulator2 boost (EE2 emulates
           the boost of the total matter, so P_tot is its consistent partner).
           Above EE2's k_max = 9.41 h/Mpc the boost is held constant.  Costs one
           CAMB run per point (3-5 s on one core with k_max = 20 h/Mpc).
hmcode     CAMB's HMcode-2020 nonlinear P_tot (Mead et al. 2021); one CAMB run too.
emulator   ``emulators.load(path).pnl(k, z, params)`` -> (nz, nk) [(Mpc/h)^3] for a
           dict of Cosmology parameters; the pipeline's own (hybrid) emulators.
table      a fixed P(k, z) table (NPZ or HDF5 with k, z, pk), whatever the
           cosmology: for tests, benchmarks and fixed-power studies only.
=========  =========================================================================
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.interpolate import CubicSpline

from likelihoods.base import LikelihoodError
from sims.cosmology import Cosmology

__all__ = ["PowerSource", "EE2Power", "HMcodePower", "EmulatorPower", "TablePower", "power_source", "SOURCES",
           "extend_log_pk"]

SOURCES = ("ee2", "hmcode", "emulator", "table")
_CAMB_KMAX = 20.0  # h/Mpc; beyond, power-law continuation


class PowerSource(Protocol):
    name: str
    depends_on_cosmology: bool

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        """ln P_nl,tot [(Mpc/h)^3] at k [h/Mpc] (nk,) and z (nz,): shape (nz, nk)."""

    def describe(self) -> dict:
        """Provenance record."""


def extend_log_pk(k_src: np.ndarray, lnp: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Resample ln P (nz, nk_src) given at increasing k_src onto k: cubic spline
    in ln k inside, linear in ln k (a power law with the local end slope) outside."""
    lnk_src, lnk = np.log(k_src), np.log(k)
    out = np.empty((lnp.shape[0], lnk.size))
    inside = (lnk >= lnk_src[0]) & (lnk <= lnk_src[-1])
    out[:, inside] = CubicSpline(lnk_src, lnp, axis=1)(lnk[inside])
    for sl, i0, i1 in ((lnk < lnk_src[0], 0, 1), (lnk > lnk_src[-1], -1, -2)):
        if np.any(sl):
            slope = (lnp[:, i0] - lnp[:, i1]) / (lnk_src[i0] - lnk_src[i1])
            out[:, sl] = lnp[:, i0, None] + slope[:, None] * (lnk[sl] - lnk_src[i0])[None, :]
    return out


def _camb_z(z: np.ndarray) -> list[float]:
    return sorted({0.0, *np.round(np.asarray(z, dtype=float), 10)})


def _rows(z_camb: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmin(np.abs(z_camb - zi))) for zi in np.asarray(z, dtype=float)])


def _camb_results(cosmo: Cosmology, z: np.ndarray, kmax: float, nonlinear: bool):
    import camb

    from sims.linear import camb_params

    pars = camb_params(cosmo, _camb_z(z), kmax=kmax)
    if nonlinear:
        pars.NonLinear = camb.model.NonLinear_pk
        pars.NonLinearModel.set_params(halofit_version="mead2020")
    return camb.get_results(pars)


class _LastResult:
    """One-entry memo of a source's answer: the fiducial point is asked twice
    (data vector and covariance) and each CAMB run costs seconds."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, cosmo, k, z, compute):
        key = (cosmo, np.asarray(k, dtype=float).tobytes(), np.asarray(z, dtype=float).tobytes())
        if key != self.key:
            self.key = None  # stays None if compute() raises
            self.value = compute()
            self.key = key
        return self.value.copy()


@dataclass(frozen=True)
class EE2Power:
    """CAMB linear P_tot times the EuclidEmulator2 boost (module doc)."""

    kmax: float = _CAMB_KMAX
    name: str = "ee2"
    depends_on_cosmology: bool = True
    _memo: _LastResult = field(default_factory=_LastResult, repr=False, compare=False)

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._memo.get(cosmo, k, z, lambda: self._compute(cosmo, np.asarray(k, float), np.asarray(z, float)))

    def _compute(self, cosmo, k, z):
        from emulators.ee2 import check_box, ee2_boost

        check_box(cosmo)  # before spending seconds in CAMB
        res = _camb_results(cosmo, z, self.kmax, nonlinear=False)
        kh, z_out, pk = res.get_linear_matter_power_spectrum(var1="delta_tot", var2="delta_tot", hubble_units=True,
                                                              k_hunit=True)
        keep = kh <= self.kmax
        lnp = extend_log_pk(kh[keep], np.log(pk[_rows(np.asarray(z_out), z)][:, keep]), k)
        with warnings.catch_warnings():
            # Constant boost above k_max is the documented behaviour here.
            warnings.simplefilter("ignore", UserWarning)
            boost = ee2_boost(k, z, cosmo)
        return lnp + np.log(boost)

    def describe(self) -> dict:
        return {"source": self.name, "linear": "CAMB P_tot", "boost": "EuclidEmulator2", "camb_kmax": self.kmax}


@dataclass(frozen=True)
class HMcodePower:
    """CAMB HMcode-2020 nonlinear P_tot."""

    kmax: float = _CAMB_KMAX
    name: str = "hmcode"
    depends_on_cosmology: bool = True
    _memo: _LastResult = field(default_factory=_LastResult, repr=False, compare=False)

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._memo.get(cosmo, k, z, lambda: self._compute(cosmo, np.asarray(k, float), np.asarray(z, float)))

    def _compute(self, cosmo, k, z):
        res = _camb_results(cosmo, z, self.kmax, nonlinear=True)
        kh, z_out, pk = res.get_nonlinear_matter_power_spectrum(var1="delta_tot", var2="delta_tot",
                                                                hubble_units=True, k_hunit=True)
        keep = kh <= self.kmax
        return extend_log_pk(kh[keep], np.log(pk[_rows(np.asarray(z_out), z)][:, keep]), k)

    def describe(self) -> dict:
        return {"source": self.name, "model": "CAMB HMcode-2020 (mead2020)", "camb_kmax": self.kmax}


@dataclass(frozen=True)
class EmulatorPower:
    """An emulator file of the pipeline, loaded with ``emulators.load(path)``.

    The object's ``pnl(k, z, params)`` is called with the k of the request that
    lie inside its ``k_range`` attribute (when it has one) and the z inside its
    ``z_range``; ln P is continued as a power law in k beyond, and in z beyond
    z_max by the linear growth, P(k, z) = P(k, z_max) [D(z)/D(z_max)]^2 (above
    the emulated redshifts the nonlinear correction is small)."""

    path: str
    emulator: Any = field(default=None, repr=False, compare=False)
    name: str = "emulator"
    depends_on_cosmology: bool = True

    def __post_init__(self):
        if self.emulator is None:
            if not Path(self.path).exists():
                raise LikelihoodError(f"power.path: emulator file {self.path} not found")
            try:
                from emulators import load
            except ImportError:
                raise LikelihoodError("power.source 'emulator': this installation has no emulators.load "
                                      "(the emulator package is not available)") from None
            object.__setattr__(self, "emulator", load(self.path))
        if not callable(getattr(self.emulator, "pnl", None)):
            raise LikelihoodError(f"power.path: {self.path} did not load as an emulator with a pnl(k, z, params) method")

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        emu = self.emulator
        k_lo, k_hi = getattr(emu, "k_range", (k[0], k[-1]))
        z_lo, z_hi = getattr(emu, "z_range", (min(z), max(z)))
        k_in = k[(k >= k_lo) & (k <= k_hi)]
        z = np.asarray(z, dtype=float)
        # rounded so that clipping cannot produce near-duplicate redshifts
        z_in = np.round(np.clip(z, z_lo, z_hi), 10)
        z_eval = np.unique(z_in)
        pk = np.asarray(emu.pnl(k_in, z_eval, cosmo.to_dict()), dtype=float)
        if pk.shape != (z_eval.size, k_in.size):
            raise LikelihoodError(f"emulator {self.path}: pnl returned shape {pk.shape}, "
                                  f"expected ({z_eval.size}, {k_in.size})")
        if not np.all(np.isfinite(pk)) or np.any(pk <= 0):
            raise LikelihoodError(f"emulator {self.path}: pnl returned non-positive or non-finite P(k) "
                                  f"for {cosmo.label()}")
        lnp = extend_log_pk(k_in, np.log(pk), k)[np.searchsorted(z_eval, z_in)]
        beyond = z > z_hi
        if np.any(beyond):
            from .background import background

            D = background(cosmo).growth(np.concatenate([[z_hi], z[beyond]]))
            lnp[beyond] += 2.0 * np.log(D[1:] / D[0])[:, None]
        return lnp

    def describe(self) -> dict:
        return {"source": self.name, "path": str(self.path)}


@dataclass(frozen=True)
class TablePower:
    """A fixed P(k, z) table [h/Mpc, (Mpc/h)^3]; ignores the cosmology."""

    k: np.ndarray
    z: np.ndarray
    pk: np.ndarray
    origin: str = "table"
    name: str = "table"
    depends_on_cosmology: bool = False

    def __post_init__(self):
        k, z, pk = (np.asarray(x, dtype=float) for x in (self.k, self.z, self.pk))
        where = f"power table ({self.origin})"
        if k.ndim != 1 or z.ndim != 1 or pk.shape != (z.size, k.size):
            raise LikelihoodError(f"{where}: need k (nk,), z (nz,) and pk (nz, nk); got {k.shape}, {z.shape}, {pk.shape}")
        if k.size < 4 or z.size < 4 or np.any(np.diff(k) <= 0) or np.any(np.diff(z) <= 0) or k[0] <= 0:
            raise LikelihoodError(f"{where}: k must be positive and increasing, z increasing, at least 4 of each")
        if not np.all(np.isfinite(pk)) or np.any(pk <= 0):
            raise LikelihoodError(f"{where}: pk must be positive and finite")
        for name, value in (("k", k), ("z", z), ("pk", pk)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_file(cls, path: str | Path) -> "TablePower":
        """NPZ with arrays k, z, pk, or HDF5 with datasets of those names."""
        path = Path(path)
        if not path.is_file():
            raise LikelihoodError(f"power.path: table file {path} not found")
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as f:
                    arrays = {n: f[n] for n in ("k", "z", "pk") if n in f}
            else:
                import h5py

                with h5py.File(path, "r") as f:
                    arrays = {n: f[n][()] for n in ("k", "z", "pk") if n in f}
        except (OSError, ValueError) as exc:
            raise LikelihoodError(f"power.path: cannot read table file {path}: {exc}") from None
        missing = [n for n in ("k", "z", "pk") if n not in arrays]
        if missing:
            raise LikelihoodError(f"power.path: table file {path} lacks array(s) {', '.join(missing)}; need k, z, pk")
        return cls(origin=str(path), **arrays)

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if np.any(z < self.z[0] - 1e-9) or np.any(z > self.z[-1] + 1e-9):
            raise LikelihoodError(f"power table ({self.origin}): z range [{self.z[0]:g}, {self.z[-1]:g}] does not "
                                  f"cover the requested [{z.min():g}, {z.max():g}]")
        lnp_z = CubicSpline(self.z, np.log(self.pk), axis=0)(z)
        return extend_log_pk(self.k, lnp_z, k)

    def describe(self) -> dict:
        return {"source": self.name, "origin": self.origin}


def power_source(name: str, path: str | None = None) -> PowerSource:
    """A power source by name (module doc); ``path`` for 'emulator' and 'table'."""
    if name == "ee2":
        return EE2Power()
    if name == "hmcode":
        return HMcodePower()
    if name in ("emulator", "table"):
        if not path:
            raise LikelihoodError(f"power.path: source {name!r} needs a file path")
        return EmulatorPower(path=str(path)) if name == "emulator" else TablePower.from_file(path)
    raise LikelihoodError(f"power.source: unknown source {name!r}; choose one of {', '.join(SOURCES)}")
