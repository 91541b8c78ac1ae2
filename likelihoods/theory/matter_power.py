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
           Above EE2's k_max = 9.41 h/Mpc the boost is held constant, or with
           ``boost_extrapolation='boost_linear_log_k'`` B itself is continued
           linearly in ln k from 10^0.973 h/Mpc with the slope over the last
           0.00253 dex there (Cocoa's 1200-point EE2 grid, interpolated linearly
           in log k: its EE2 vectors since 2023-09-26), or with 'linear_log_k'
           ln B likewise (Cocoa before that date).  Costs one
           CAMB run per point (3-5 s on one core with k_max = 20 h/Mpc).
hmcode     CAMB's HMcode-2020 nonlinear P_tot (Mead et al. 2021); one CAMB run too.
emulator   ``emulators.load(path).pnl(k, z, params)`` -> (nz, nk) [(Mpc/h)^3] for a
           dict of Cosmology parameters; the pipeline's own (hybrid) emulators.
           A hybrid's B_EE2(theta_LCDM) comes from its EE2 surrogate when the
           file has one (``ee2: auto``, about 0.1 ms instead of 15-25 ms);
           ``ee2: exact`` calls EuclidEmulator2 itself.
table      a fixed P(k, z) table (NPZ or HDF5 with k, z, pk), whatever the
           cosmology: for tests, benchmarks and fixed-power studies only.
=========  =========================================================================

Every source also answers ``sigma8(cosmo)``: the rms linear density contrast of
the total matter in spheres of 8 Mpc/h at z = 0, as cheaply as it can (the
sampler stores it to derive S8).  ee2 and hmcode take it from the CAMB run of
the same point; an emulator from its attached linear-power emulator (a top-hat
integral, :func:`sigma8_from_pk`); without one, and for a table, CAMB runs
once per point (about a second).

A hybrid emulator (EE2 x COLA ratio) is evaluated beyond its COLA k range the
way the hybrid is built: linear-power emulator x EE2 boost at theta_LCDM x the
COLA response continued above the COLA k_max with HMcode-2020's shape
(``cola_response='hmcode'``, the file's HMcode tail, emulators.hmcode_tail, where
the choice is measured), held at its edge value (``'constant'``) or set to 1
(``'unity'``: pure EE2 at theta_LCDM); ``'auto'`` (default) is hmcode when the file
carries a tail, else constant.  Which one is logged once per process.

CAMB runs split the neutrino mass as the ``neutrinos`` convention says
(:data:`cosmopipe.sims.linear.NEUTRINO_STATES`).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.interpolate import CubicSpline

from cosmopipe.emulators import load
from cosmopipe.emulators.ee2 import check_box, ee2_boost
from cosmopipe.emulators.registry import model_file
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.linear import camb_params

from .background import background
from .contract import LikelihoodError

__all__ = ["PowerSource", "EE2Power", "HMcodePower", "EmulatorPower", "TablePower", "power_source", "SOURCES",
           "extend_log_pk", "sigma8_from_pk", "camb_sigma8"]

SOURCES = ("ee2", "hmcode", "emulator", "table")
EE2_OPTIONS = ("auto", "exact", "surrogate")
_CAMB_KMAX = 20.0  # h/Mpc; beyond, power-law continuation
_R8 = 8.0  # Mpc/h
# Cocoa's EE2 grid: 1200 points log-spaced in k over [10^-2.0589, 10^0.973] h/Mpc;
# its log-linear interpolation extrapolates with the slope of the last interval.
_EE2_EDGE_LOG10K = 0.973
_EE2_EDGE_DLOG10K = (0.973 + 2.0589) / 1199
BOOST_EXTRAPOLATIONS = ("constant", "boost_linear_log_k", "linear_log_k")
COLA_RESPONSES = ("auto", "hmcode", "constant", "unity")
log = logging.getLogger("cosmopipe.shear")
_logged_cola_edge = False
_CONTINUATIONS = {"hmcode": "continued with HMcode-2020's response shape", "constant": "held at its edge value",
                  "unity": "set to 1"}


class PowerSource(Protocol):
    name: str
    depends_on_cosmology: bool

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        """ln P_nl,tot [(Mpc/h)^3] at k [h/Mpc] (nk,) and z (nz,): shape (nz, nk)."""

    def describe(self) -> dict:
        """Provenance record."""

    def sigma8(self, cosmo: Cosmology) -> float:
        """sigma_8 of the total linear matter at z = 0 (module doc)."""


def _tophat_factor(k: np.ndarray, radius: float) -> np.ndarray:
    """k^3 W(kR)^2 / (2 pi^2), the integrand of sigma^2 in ln k over P(k)."""
    x = k * radius
    # series below x = 1e-3, where the closed form cancels catastrophically
    w = np.where(x < 1e-3, 1.0 - x * x / 10.0, 3.0 * (np.sin(x) - x * np.cos(x)) / np.maximum(x, 1e-3) ** 3)
    return k**3 * w * w / (2.0 * np.pi**2)


def sigma8_from_pk(k: np.ndarray, pk: np.ndarray, radius: float = _R8) -> float:
    """rms of a linear density field in top-hat spheres of ``radius`` [Mpc/h]:
    sigma^2 = int dln k k^3 P(k) / (2 pi^2) W(kR)^2, W(x) = 3 (sin x - x cos x) / x^3,
    by Simpson's rule in ln k.  k [h/Mpc] increasing (log-spaced is best), P [(Mpc/h)^3];
    the range must reach well below 1/R and above ~5/R (e.g. 1e-3 to 5 h/Mpc for R = 8)."""
    k = np.asarray(k, dtype=float)
    pk = np.asarray(pk, dtype=float)
    if k.ndim != 1 or pk.shape != k.shape or k.size < 16 or np.any(np.diff(k) <= 0) or k[0] <= 0:
        raise ValueError(f"sigma8_from_pk: need increasing positive k and P(k) of the same length >= 16, "
                         f"got {k.shape} and {pk.shape}")
    if k[0] * radius > 0.05 or k[-1] * radius < 20.0:
        raise ValueError(f"sigma8_from_pk: k range [{k[0]:g}, {k[-1]:g}] h/Mpc is too short for R = {radius:g} "
                         f"Mpc/h; need k_min <= {0.05 / radius:g} and k_max >= {20.0 / radius:g}")
    from scipy.integrate import simpson

    return float(np.sqrt(simpson(_tophat_factor(k, radius) * pk, x=np.log(k))))


def _sigma8_quadrature(k_lo: float, k_hi: float, n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(k [h/Mpc], weights) of :func:`sigma8_from_pk` on n log-spaced points, cached:
    sigma_8^2 = weights @ P(k).  Over 1e-4..10 h/Mpc, 512 points agree with 2048 to 1e-5
    for a spectrum with BAO-like wiggles."""
    key = (k_lo, k_hi, n)
    if key not in _QUADRATURES:
        from scipy.integrate import simpson

        k = np.geomspace(k_lo, k_hi, n)
        # Simpson's rule is linear in the integrand: its weights are its response to unit vectors
        _QUADRATURES[key] = (k, simpson(np.eye(n), x=np.log(k), axis=1) * _tophat_factor(k, _R8))
    return _QUADRATURES[key]


_QUADRATURES: dict = {}


def camb_sigma8(cosmo: Cosmology, neutrinos: str = "three_degenerate") -> float:
    """sigma_8 of the total matter at z = 0 from one linear CAMB run (about a second)."""
    import camb

    pars = camb_params(cosmo, [0.0], kmax=10.0, neutrinos=neutrinos)  # sigma8 converged to 1e-4 in kmax by 10 h/Mpc
    return float(camb.get_results(pars).get_sigma8_0())


def _extension_operator(k_src: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(nk_src, nk) matrix M with ln P(k) = ln P(k_src) @ M for :func:`extend_log_pk`
    (the not-a-knot spline and the end-slope continuation are both linear in ln P)."""
    lnk_src, lnk = np.log(k_src), np.log(k)
    n = k_src.size
    M = np.zeros((n, lnk.size))
    inside = (lnk >= lnk_src[0]) & (lnk <= lnk_src[-1])
    M[:, inside] = CubicSpline(lnk_src, np.eye(n), axis=0)(lnk[inside]).T
    for sl, i0, i1 in ((lnk < lnk_src[0], 0, 1), (lnk > lnk_src[-1], n - 1, n - 2)):
        if np.any(sl):
            t = (lnk[sl] - lnk_src[i0]) / (lnk_src[i0] - lnk_src[i1])
            M[i0, sl] = 1.0 + t
            M[i1, sl] = -t
    return M


_OPERATORS: dict = {}


def extend_log_pk(k_src: np.ndarray, lnp: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Resample ln P (nz, nk_src) given at increasing k_src onto k: cubic spline
    in ln k inside, linear in ln k (a power law with the local end slope) outside.
    The operator is cached per (k_src, k) pair: the Limber grid asks the same each time."""
    k_src = np.asarray(k_src, dtype=float)
    k = np.asarray(k, dtype=float)
    key = (k_src.tobytes(), k.tobytes())
    M = _OPERATORS.get(key)
    if M is None:
        if len(_OPERATORS) >= 16:
            _OPERATORS.clear()
        M = _OPERATORS[key] = _extension_operator(k_src, k)
    return np.asarray(lnp, dtype=float) @ M


def _camb_z(z: np.ndarray) -> list[float]:
    return sorted({0.0, *np.round(np.asarray(z, dtype=float), 10)})


def _rows(z_camb: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmin(np.abs(z_camb - zi))) for zi in np.asarray(z, dtype=float)])


# The last few CAMB runs, shared by every source of this process: comparing boost
# models at one cosmology (likelihoods.theory.lcdm_boost) then costs one run, not one
# per model.  A run with HMcode also answers linear requests (CAMB gives both).
_CAMB_CACHE: dict = {}
_CAMB_CACHE_SIZE = 4


def _camb_results(cosmo: Cosmology, z: np.ndarray, kmax: float, nonlinear: bool, neutrinos: str):
    import camb

    key = (cosmo, tuple(_camb_z(z)), float(kmax), neutrinos)
    for flag in ((True,) if nonlinear else (False, True)):
        if (key, flag) in _CAMB_CACHE:
            return _CAMB_CACHE[(key, flag)]
    pars = camb_params(cosmo, _camb_z(z), kmax=kmax, neutrinos=neutrinos)
    if nonlinear:
        pars.NonLinear = camb.model.NonLinear_pk
        pars.NonLinearModel.set_params(halofit_version="mead2020")
    res = camb.get_results(pars)
    while len(_CAMB_CACHE) >= _CAMB_CACHE_SIZE:
        _CAMB_CACHE.pop(next(iter(_CAMB_CACHE)))
    _CAMB_CACHE[(key, nonlinear)] = res
    return res


class _LastResult:
    """One-entry memo of a source's answer: the fiducial point is asked twice
    (data vector and covariance) and each CAMB run costs seconds."""

    def __init__(self):
        self.key, self.value = None, None
        self.sigma8_key, self.sigma8 = None, None  # of the last CAMB run: free for derived S8

    def get(self, cosmo, k, z, compute):
        key = (cosmo, np.asarray(k, dtype=float).tobytes(), np.asarray(z, dtype=float).tobytes())
        if key != self.key:
            self.key = None  # stays None if compute() raises
            self.value = compute()
            self.key = key
        return self.value.copy()


@dataclass(frozen=True)
class EE2Power:
    """Linear P_tot times the EuclidEmulator2 boost (module doc).  The linear power is
    CAMB's, or with ``linear`` (an emulator file carrying a linear-power emulator) that
    emulator's, over its k range with a power law beyond: EE2 at ~16 ms per point
    instead of seconds, e.g. to reweight an emulator chain to EE2."""

    kmax: float = _CAMB_KMAX
    linear: str | None = None
    neutrinos: str = "three_degenerate"
    boost_extrapolation: str = "constant"
    name: str = "ee2"
    depends_on_cosmology: bool = True
    _memo: _LastResult = field(default_factory=_LastResult, repr=False, compare=False)
    _linear_emu: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.boost_extrapolation not in BOOST_EXTRAPOLATIONS:
            raise LikelihoodError(f"boost_extrapolation: must be one of {', '.join(BOOST_EXTRAPOLATIONS)}, "
                                  f"got {self.boost_extrapolation!r}")
        if self.linear is not None:
            object.__setattr__(self, "_linear_emu", _load_linear(self.linear))

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._memo.get(cosmo, k, z, lambda: self._compute(cosmo, np.asarray(k, float), np.asarray(z, float)))

    def _compute(self, cosmo, k, z):
        check_box(cosmo)  # before spending seconds in CAMB
        if self._linear_emu is not None:
            lnp = _linear_log_pk(self._linear_emu, cosmo, k, z)
        else:
            res = _camb_results(cosmo, z, self.kmax, nonlinear=False, neutrinos=self.neutrinos)
            self._memo.sigma8_key, self._memo.sigma8 = cosmo, float(res.get_sigma8_0())
            kh, z_out, pk = res.get_linear_matter_power_spectrum(var1="delta_tot", var2="delta_tot",
                                                                  hubble_units=True, k_hunit=True)
            keep = kh <= self.kmax
            lnp = extend_log_pk(kh[keep], np.log(pk[_rows(np.asarray(z_out), z)][:, keep]), k)
        return lnp + self._log_boost(k, z, cosmo)

    def _log_boost(self, k, z, cosmo):
        """ln B_EE2 (nz, nk), beyond k_max as ``boost_extrapolation`` says."""
        with warnings.catch_warnings():
            # Constant boost above k_max is the documented default here.
            warnings.simplefilter("ignore", UserWarning)
            if self.boost_extrapolation == "constant":
                return np.log(ee2_boost(k, z, cosmo))
            k_edge = 10.0 ** np.array([_EE2_EDGE_LOG10K - _EE2_EDGE_DLOG10K, _EE2_EDGE_LOG10K])
            inside = k <= k_edge[1]
            out = np.empty((np.size(z), k.size))
            both = ee2_boost(np.concatenate([k[inside], k_edge]), z, cosmo)
        # continued linearly in ln k: ln B ('linear_log_k') or B itself ('boost_linear_log_k')
        both = np.log(both) if self.boost_extrapolation == "linear_log_k" else both
        out[:, inside] = both[:, :-2]
        slope = (both[:, -1] - both[:, -2]) / np.log(k_edge[1] / k_edge[0])
        out[:, ~inside] = both[:, -1:] + slope[:, None] * np.log(k[~inside] / k_edge[1])
        if self.boost_extrapolation == "linear_log_k":
            return out
        if np.any(out <= 0):
            raise ValueError("EE2 boost continued linearly in ln k is not positive at the highest k")
        return np.log(out)

    def describe(self) -> dict:
        extra = {"neutrinos": self.neutrinos, "boost_extrapolation": self.boost_extrapolation}
        if self.linear is not None:
            return {"source": self.name, "linear": f"linear-power emulator of {self.linear}",
                    "boost": "EuclidEmulator2", **extra}
        return {"source": self.name, "linear": "CAMB P_tot", "boost": "EuclidEmulator2", "camb_kmax": self.kmax,
                **extra}

    def sigma8(self, cosmo: Cosmology) -> float:
        """From the linear-power emulator, or the CAMB run of :meth:`log_pk` at this
        point, else one linear CAMB run."""
        if self._linear_emu is not None:
            return _linear_sigma8(self._linear_emu, cosmo)
        if self._memo.sigma8_key == cosmo:
            return self._memo.sigma8
        return camb_sigma8(cosmo, self.neutrinos)


def _load_linear(path: str):
    """The linear-power emulator of an emulator file (linear, or boost/hybrid with one attached)."""
    if not Path(path).exists():
        raise LikelihoodError(f"power.linear: emulator file {path} not found")
    emu = load(path)
    linear = emu if getattr(emu, "kind", None) == "linear" else getattr(emu, "linear", None)
    if linear is None:
        raise LikelihoodError(f"power.linear: {path} carries no linear-power emulator")
    return linear


def _ranged_log_pk(evaluate, k_range, z_range, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
    """ln P (nz, nk) from ``evaluate(k_in, z_eval) -> ln P (nz_eval, nk_in)`` valid inside
    k_range x z_range: a power law in k beyond (:func:`extend_log_pk`), and above z_max
    P(k, z) = P(k, z_max) [D(z) / D(z_max)]^2 (the nonlinear correction is small there)."""
    (k_lo, k_hi), (z_lo, z_hi) = k_range, z_range
    k_in = k[(k >= k_lo) & (k <= k_hi)]
    # rounded so that clipping cannot produce near-duplicate redshifts
    z_in = np.round(np.clip(z, z_lo, z_hi), 10)
    z_eval = np.unique(z_in)
    lnp = extend_log_pk(k_in, evaluate(k_in, z_eval), k)[np.searchsorted(z_eval, z_in)]
    beyond = z > z_hi
    if np.any(beyond):
        D = background(cosmo).growth(np.concatenate([[z_hi], z[beyond]]))
        lnp[beyond] += 2.0 * np.log(D[1:] / D[0])[:, None]
    return lnp


def _linear_log_pk(linear, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
    """ln P_lin (nz, nk) from a linear-power emulator (:func:`_ranged_log_pk`)."""
    return _ranged_log_pk(lambda k_in, z_eval: linear.log_pk(k_in, z_eval, cosmo.to_dict()), linear.k_range,
                          linear.z_range, cosmo, k, z)


def _linear_sigma8(linear, cosmo: Cosmology) -> float:
    """sigma_8 from a linear-power emulator's z = 0 spectrum (CAMB when its k range
    cannot hold the top-hat integral or it emulates the cb species)."""
    k_lo, k_hi = linear.k_range
    if (getattr(linear, "species", "tot") != "tot" or k_lo * _R8 > 0.05 or k_hi * _R8 < 20.0
            or linear.z_range[0] > 0.0):
        return camb_sigma8(cosmo)
    k, weights = _sigma8_quadrature(k_lo, k_hi)
    return float(np.sqrt(weights @ np.exp(linear.log_pk(k, [0.0], cosmo.to_dict()))[0]))


@dataclass(frozen=True)
class HMcodePower:
    """CAMB HMcode-2020 nonlinear P_tot."""

    kmax: float = _CAMB_KMAX
    neutrinos: str = "three_degenerate"
    name: str = "hmcode"
    depends_on_cosmology: bool = True
    _memo: _LastResult = field(default_factory=_LastResult, repr=False, compare=False)

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._memo.get(cosmo, k, z, lambda: self._compute(cosmo, np.asarray(k, float), np.asarray(z, float)))

    def _compute(self, cosmo, k, z):
        res = _camb_results(cosmo, z, self.kmax, nonlinear=True, neutrinos=self.neutrinos)
        self._memo.sigma8_key, self._memo.sigma8 = cosmo, float(res.get_sigma8_0())
        kh, z_out, pk = res.get_nonlinear_matter_power_spectrum(var1="delta_tot", var2="delta_tot",
                                                                hubble_units=True, k_hunit=True)
        keep = kh <= self.kmax
        return extend_log_pk(kh[keep], np.log(pk[_rows(np.asarray(z_out), z)][:, keep]), k)

    def describe(self) -> dict:
        return {"source": self.name, "model": "CAMB HMcode-2020 (mead2020)", "camb_kmax": self.kmax,
                "neutrinos": self.neutrinos}

    def sigma8(self, cosmo: Cosmology) -> float:
        """From the CAMB run of :meth:`log_pk` at this point, else one linear CAMB run."""
        if self._memo.sigma8_key == cosmo:
            return self._memo.sigma8
        return camb_sigma8(cosmo, self.neutrinos)


@dataclass(frozen=True)
class EmulatorPower:
    """An emulator file of the pipeline, loaded with ``emulators.load(path)``.

    The object's ``pnl(k, z, params)`` is called with the k of the request that
    lie inside its ``k_range`` attribute (when it has one) and the z inside its
    ``z_range``; ln P is continued as a power law in k beyond, and in z beyond
    z_max by the linear growth, P(k, z) = P(k, z_max) [D(z)/D(z_max)]^2 (above
    the emulated redshifts the nonlinear correction is small).  A hybrid emulator
    with a linear-power emulator is evaluated over the linear emulator's k range
    instead (module doc), so only k above that (10 h/Mpc by default) is a power law."""

    path: str
    emulator: Any = field(default=None, repr=False, compare=False)
    ee2: str = "auto"
    cola_response: str = "auto"
    name: str = "emulator"
    depends_on_cosmology: bool = True

    def __post_init__(self):
        if self.cola_response not in COLA_RESPONSES:
            raise LikelihoodError(f"cola_response: must be one of {', '.join(COLA_RESPONSES)}, "
                                  f"got {self.cola_response!r}")
        if self.ee2 not in EE2_OPTIONS:
            raise LikelihoodError(f"power.ee2: must be one of {', '.join(EE2_OPTIONS)}, got {self.ee2!r}")
        if self.emulator is None:
            if not Path(self.path).exists():
                try:  # a shipped model's name
                    object.__setattr__(self, "path", str(model_file(self.path)))
                except (FileNotFoundError, ValueError) as exc:
                    raise LikelihoodError(f"power.path: emulator file {self.path} not found ({exc})") from None
            object.__setattr__(self, "emulator", load(self.path))
        if not callable(getattr(self.emulator, "pnl", None)):
            raise LikelihoodError(f"power.path: {self.path} did not load as an emulator with a pnl(k, z, params) method")
        if self.ee2 != "auto" and getattr(self.emulator, "kind", None) != "hybrid":
            raise LikelihoodError(f"power.ee2: only a hybrid emulator uses EuclidEmulator2; {self.path} is a "
                                  f"{getattr(self.emulator, 'kind', 'non-hybrid')} emulator")
        tail = getattr(self.emulator, "hmcode_tail", None)
        if self.cola_response == "auto" and getattr(self.emulator, "kind", None) == "hybrid":
            object.__setattr__(self, "cola_response", "hmcode" if tail is not None else "constant")
        if self.cola_response == "hmcode" and tail is None:
            raise LikelihoodError(f"cola_response: {self.path} carries no HMcode tail (train it with "
                                  "train.hmcode_tail), so 'hmcode' is not available; use constant, unity or auto")
        if self.ee2 == "surrogate" and getattr(self.emulator, "ee2_lcdm", None) is None:
            raise LikelihoodError(f"power.ee2: {self.path} carries no EE2 surrogate (train it with "
                                  "train.ee2_surrogate), so 'surrogate' is not available; use 'exact' or 'auto'")

    def log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        emu = self.emulator
        k = np.asarray(k, dtype=float)
        z = np.asarray(z, dtype=float)
        hybrid = getattr(emu, "kind", None) == "hybrid" and getattr(emu, "linear", None) is not None
        k_lo, k_hi = (emu.linear.k_range if hybrid else getattr(emu, "k_range", (k[0], k[-1])))
        z_lo, z_hi = getattr(emu, "z_range", (min(z), max(z)))
        if hybrid:
            z_lo, z_hi = max(z_lo, emu.linear.z_range[0]), min(z_hi, emu.linear.z_range[1])
        def evaluate(k_in, z_eval):
            if hybrid:
                return self._hybrid_log_pk(cosmo, k_in, z_eval)
            extra = {"ee2": self.ee2_mode} if getattr(emu, "kind", None) == "hybrid" else {}
            pk = np.asarray(emu.pnl(k_in, z_eval, cosmo.to_dict(), **extra), dtype=float)
            if pk.shape != (z_eval.size, k_in.size):
                raise LikelihoodError(f"emulator {self.path}: pnl returned shape {pk.shape}, "
                                      f"expected ({z_eval.size}, {k_in.size})")
            if not np.all(np.isfinite(pk)) or np.any(pk <= 0):
                raise LikelihoodError(f"emulator {self.path}: pnl returned non-positive or non-finite P(k) "
                                      f"for {cosmo.label()}")
            return np.log(pk)

        return _ranged_log_pk(evaluate, (k_lo, k_hi), (z_lo, z_hi), cosmo, k, z)

    def _hybrid_log_pk(self, cosmo: Cosmology, k: np.ndarray, z: np.ndarray) -> np.ndarray:
        """ln[P_lin B_EE2(theta_LCDM) B_COLA(theta) / B_COLA(theta_LCDM)] over the linear
        emulator's k range (inside the COLA k range exactly the hybrid's pnl); above the
        COLA k_max as ``cola_response`` says (module doc), below its k_min held constant.  B_EE2 from the hybrid's EE2
        surrogate when it has one (``ee2``: 'auto'), else EuclidEmulator2 itself."""
        global _logged_cola_edge
        emu = self.emulator
        params = cosmo.to_dict()
        lcdm = {**params, "w0": -1.0, "wa": 0.0}
        c_lo, c_hi = emu.cola.k_range
        k_c = np.unique(np.clip(k, c_lo, c_hi))
        ratio_c = emu.log_cola_ratio(k_c, z, params)
        idx = np.searchsorted(k_c, np.clip(k, c_lo, c_hi))
        above = k > c_hi
        if np.any(above) and not _logged_cola_edge:
            _logged_cola_edge = True
            log.info("hybrid emulator %s: COLA response above its k_max = %.3g h/Mpc %s (cola_response=%s)",
                     self.path, c_hi, _CONTINUATIONS[self.cola_response], self.cola_response)
        if self.cola_response != "constant":
            ratio_c = ratio_c[:, idx]
            idx = np.arange(k.size)
            if self.cola_response == "unity":
                ratio_c[:, above] = 0.0
            elif np.any(above):
                ratio_c += emu.log_tail(k, z, params)
        theta_lcdm = np.array([[lcdm[n] for n in emu.params]])
        # EE2 holds B constant above its k_max: documented there, expected here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ln_ee2 = emu.ln_ee2_lcdm(theta_lcdm, z, k, self.ee2_mode)[0]
        return emu.linear.log_pk(k, z, params) + ln_ee2 + ratio_c[:, idx]

    @property
    def ee2_mode(self) -> str:
        """'surrogate' or 'exact': how a hybrid's B_EE2(theta_LCDM) is evaluated."""
        if self.ee2 == "auto":
            return "surrogate" if getattr(self.emulator, "ee2_lcdm", None) is not None else "exact"
        return self.ee2

    def sigma8(self, cosmo: Cosmology) -> float:
        """From the attached linear-power emulator at z = 0 when there is one
        (its k range must cover the top-hat integral), else one CAMB run."""
        linear = getattr(self.emulator, "linear", None)
        if getattr(self.emulator, "kind", None) == "linear":
            linear = self.emulator
        return camb_sigma8(cosmo) if linear is None else _linear_sigma8(linear, cosmo)

    def describe(self) -> dict:
        out = {"source": self.name, "path": str(self.path)}
        if getattr(self.emulator, "kind", None) == "hybrid":
            out["ee2"] = self.ee2_mode
            out["cola_response"] = self.cola_response
        return out


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

    def sigma8(self, cosmo: Cosmology) -> float:
        """The table ignores the cosmology; sigma_8 of ``cosmo`` from CAMB."""
        return camb_sigma8(cosmo)


def power_source(name: str, path: str | None = None, ee2: str = "auto", linear: str | None = None,
                 conventions=None) -> PowerSource:
    """A power source by name (module doc); ``path`` for 'emulator' and 'table';
    ``ee2`` for a hybrid emulator: 'auto' (its EE2 surrogate when it has one),
    'exact' or 'surrogate'; ``linear`` for 'ee2': an emulator file whose
    linear-power emulator replaces CAMB; ``conventions``
    (:class:`cosmopipe.likelihoods.shear.conventions.Conventions`, default the project's)
    for the neutrinos, boost_extrapolation and cola_response settings."""
    # Duck-typed: the conventions object lives with the shear likelihood (a layer above).
    neutrinos = getattr(conventions, "neutrinos", "three_degenerate")
    boost_extrapolation = getattr(conventions, "boost_extrapolation", "constant")
    cola_response = getattr(conventions, "cola_response", "constant")
    if name == "ee2":
        return EE2Power(linear=linear, neutrinos=neutrinos, boost_extrapolation=boost_extrapolation)
    if name == "hmcode":
        return HMcodePower(neutrinos=neutrinos)
    if name in ("emulator", "table"):
        if not path:
            raise LikelihoodError(f"power.path: source {name!r} needs a file path")
        if name == "emulator":
            return EmulatorPower(path=str(path), ee2=ee2, cola_response=cola_response)
        return TablePower.from_file(path)
    raise LikelihoodError(f"power.source: unknown source {name!r}; choose one of {', '.join(SOURCES)}")
