"""CAMB as the theory provider: Planck-style parameters -> :class:`~likelihoods.base.TheoryResult`.

    result = camb_theory(params, requirements, settings=None)

Parameters (``params``, floats; other keys such as likelihood nuisances are ignored):

==============  ===================================================================  ===========
name            meaning                                                              default
==============  ===================================================================  ===========
ombh2           Omega_b h^2                                                          required
omch2           Omega_c h^2 (cold dark matter)                                        required
H0              Hubble constant [km/s/Mpc]  -- the primary expansion parameter        one of these
theta_MC_100    100 theta_MC (CosmoMC approximate acoustic angle), CAMB solves H0     three
cosmomc_theta   theta_MC itself (= theta_MC_100 / 100)
logA | As       ln(10^10 A_s) or A_s, at k_pivot = 0.05 / Mpc                         one required
ns              scalar spectral index                                                 required
tau             optical depth to reionisation                                        0.0544
mnu             sum of neutrino masses [eV], one massive eigenstate (Planck 2018)    0.06
f_EDE, log10_z_c, theta_i   early dark energy (see :mod:`cosmopipe.likelihoods.theory.ede`)           model
w_1 .. w_N      piecewise-constant late-time w(z) bins (see :mod:`cosmopipe.likelihoods.theory.ede`)  model
==============  ===================================================================  ===========

H0 is the primary parameter because every dark-energy model here (including
the tabulated EDE + w(z) component, whose table depends on H0) can use it;
theta_MC_100 is accepted for LCDM and CAMB's own EDE models, where CAMB solves
for H0 (it is refused for the tabulated component).  N_eff = 3.044, T_CMB =
2.7255 K, flat, BBN helium (CAMB default), no tensors.

Requirements (a mapping; keys any of):

- ``cls``: {'lmax': int, 'lensing': True, 'lens_potential_accuracy': 1,
  'spectra': [...] (accepted, all are returned)} -> lensed (or, with
  lensing False, unlensed) C_ell TT/TE/EE/BB [muK^2] and raw C_L^{phi phi}
  for ell = 0..lmax.  CAMB runs to lmax + 200 so the lensed spectra are
  accurate up to lmax; lens_potential_accuracy = 1 with non-linear (HMcode)
  lensing is the Planck 2018 setting.
- ``distances``: True or {'zmax': 10}: comoving / angular-diameter /
  luminosity distance [Mpc] and H(z) [km/s/Mpc] as callables of z, splined on
  a fine grid (relative error < 1e-7) so the result pickles.
- ``rdrag``, ``H0``, ``theta_star``: scalars (always computed; a background
  run costs milliseconds).
- ``sigma8``, ``S8``: from the z = 0 linear transfer functions.
- ``pk_lin`` / ``pk_nl``: {'kmax': h/Mpc, 'zmax': float or 'z': [...]} ->
  callables ``(k [h/Mpc], z) -> (nz, nk) [(Mpc/h)^3]`` for the total matter
  spectrum; non-linear with HMcode 2020 (``settings.halofit_version``).

Only what is required is computed: distances / r_drag alone cost one CAMB
background run, sigma8 adds the transfer functions, C_ell the full
line-of-sight integration.  CPU time per call, one thread, Planck + BAO + SN
requirements (lensed C_ell to 2508, distances, r_drag, sigma8), measured with
``benchmarks/bench_ede.py`` on the shared 2-core development machine:

    LCDM 1.8 s | EDE fluid 2.9 s | EDE scalar 3.4 s | 3 w bins 4.0 s |
    EDE + 3 w bins 4.9 s (3.6 s without the C_ell correction) | EDE + 10 w bins 5.0 s
    background only (distances, r_drag): LCDM 4 ms, EDE + 3 w bins 14 ms

(wall times were 1.5-2.5x larger at load average 7; on an idle core a LCDM
call took 1.35 s and a CAMB EDE call 2.2 s).

Errors: parameters outside the validity ranges (or a dark-energy combination
the method cannot represent) raise :class:`TheoryError` (a ValueError: a
sampler counts the point as zero likelihood) naming the parameter and the
allowed range; missing parameters or malformed requirements / settings raise
:class:`TheorySetupError` (a TypeError: a configuration mistake, not a point
to reject).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from cosmopipe.schema import choice, list_of, nonnegative_int, number, optional, positive_int

from .contract import LENS_MARGIN, TheoryError, TheoryResult, TheorySetupError
from .contract import number_param as _number
from .ede import WBins, dark_energy_model

__all__ = [
    "camb_theory", "CambSettings", "TheoryError", "TheorySetupError", "PARAMS", "PARAMETER_RANGES",
    "Background", "PowerTable", "theory_params", "settings_from_section", "merge_requirements",
]

T_CMB = 2.7255  # K
N_EFF = 3.044
TAU_DEFAULT = 0.0544  # Planck 2018 TT,TE,EE+lowE+lensing mean
MNU_DEFAULT = 0.06  # eV, minimal normal hierarchy as one massive state (Planck 2018)
MAX_WBINS = 20

# Validity ranges: outside these CAMB is untested or the model unphysical.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "ombh2": (0.005, 0.1),
    "omch2": (0.001, 0.99),
    "H0": (20.0, 100.0),
    "theta_MC_100": (0.5, 2.0),
    "cosmomc_theta": (0.005, 0.02),
    "logA": (1.61, 3.91),
    "As": (5.0e-10, 5.0e-9),
    "ns": (0.8, 1.2),
    "tau": (0.01, 0.8),
    "mnu": (0.0, 5.0),
}
BASE_PARAMS = ("ombh2", "omch2", "H0", "theta_MC_100", "cosmomc_theta", "logA", "As", "ns", "tau", "mnu")
EDE_PARAMS = ("f_EDE", "log10_z_c", "theta_i")
# Everything camb_theory may read (for samplers that check every parameter is used).
PARAMS = BASE_PARAMS + EDE_PARAMS + tuple(f"w_{i}" for i in range(1, MAX_WBINS + 1))

_REQUIREMENT_KEYS = ("cls", "distances", "rdrag", "H0", "theta_star", "sigma8", "S8", "pk_lin", "pk_nl")


@dataclass(frozen=True)
class CambSettings:
    """Model and accuracy choices that are not sampled.

    ede_model        'none' | 'fluid' (CAMB AxionEffectiveFluid, Poulin et al. 2018) |
                     'scalar' (CAMB EarlyQuintessence); None: 'fluid' when params hold f_EDE
    ede_n            power-law index n of the EDE potential (1 - cos)^n; w_n = (n-1)/(n+1)
    w_bins           None (w = -1), an int N (N equal bins over 0 < z < 3) or a
                     :class:`cosmopipe.likelihoods.theory.ede.WBins`; None also means: N bins when params hold w_1..w_N
    de_perturbations 'fluid' (c_s^2 = 1 fluid, refuses w crossing -1) | 'ppf' for the tabulated component
    ede_correction   'difference' | 'none': correct the tabulated EDE + w component's C_ell with
                     its error at w_i = -1 (two extra unlensed CAMB runs; see likelihoods.ede)
    halofit_version  CAMB non-linear model for pk_nl and lensing
    accuracy_boost, l_accuracy_boost   CAMB accuracy settings (1 = Planck default)
    threads          CAMB OpenMP threads (0: CAMB's default, OMP_NUM_THREADS)
    """

    ede_model: str | None = None
    ede_n: int = 3
    w_bins: Any = None
    de_perturbations: str = "fluid"
    ede_correction: str = "difference"
    halofit_version: str = "mead2020"
    accuracy_boost: float = 1.0
    l_accuracy_boost: float = 1.0
    threads: int = 0

    def __post_init__(self):
        allowed = {"ede_model": (None, "none", "fluid", "scalar"), "de_perturbations": ("fluid", "ppf"),
                   "ede_correction": ("difference", "none")}
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise TheorySetupError(f"CambSettings.{name} must be one of "
                                       f"{', '.join(str(v) for v in values)}, got {getattr(self, name)!r}")
        if not (isinstance(self.ede_n, int) and 2 <= self.ede_n <= 6):
            raise TheorySetupError(f"CambSettings.ede_n must be an integer in [2, 6], got {self.ede_n!r}")
        for name in ("accuracy_boost", "l_accuracy_boost"):
            if not 0.5 <= float(getattr(self, name)) <= 5.0:
                raise TheorySetupError(f"CambSettings.{name} must be in [0.5, 5], got {getattr(self, name)!r}")
        if not (isinstance(self.threads, int) and self.threads >= 0):
            raise TheorySetupError(f"CambSettings.threads must be a non-negative integer, got {self.threads!r}")


def settings_from_section(section) -> CambSettings:
    """CambSettings from a workflow section (``cosmopipe.schema.Section``), keys as the fields;
    ``w_bins`` is an int N or {'n': N, 'edges': [...], 'step_width': 0.01}."""
    kw: dict[str, Any] = {}
    kw["ede_model"] = section.take("ede_model", optional(choice("none", "fluid", "scalar")), default=None)
    kw["ede_n"] = section.take("ede_n", positive_int, default=3)
    if section.has("w_bins") and isinstance(section.data["w_bins"], Mapping):
        sub = section.sub("w_bins")
        edges = sub.take("edges", optional(list_of(number)), default=None)
        n = sub.take("n", optional(positive_int), default=None)
        width = sub.take("step_width", optional(number), default=None)
        sub.finish()
        try:
            kw["w_bins"] = (WBins(edges=tuple(edges), step_width=width) if edges
                            else WBins.equal(n or 3, step_width=width))
        except ValueError as exc:
            raise sub.error("edges" if edges else "n", str(exc)) from None
    else:
        kw["w_bins"] = section.take("w_bins", optional(nonnegative_int), default=None) or None
    kw["de_perturbations"] = section.take("de_perturbations", choice("fluid", "ppf"), default="fluid")
    kw["ede_correction"] = section.take("ede_correction", choice("difference", "none"), default="difference")
    kw["halofit_version"] = section.take("halofit_version", str, default="mead2020")
    kw["accuracy_boost"] = section.take("accuracy_boost", number, default=1.0)
    kw["l_accuracy_boost"] = section.take("l_accuracy_boost", number, default=1.0)
    kw["threads"] = section.take("threads", nonnegative_int, default=0)
    section.finish()
    try:
        return CambSettings(**kw)
    except TheorySetupError as exc:
        raise section.error(None, str(exc)) from None


# -- results containers (picklable, so a Dask worker can return them) ------------------

@dataclass(frozen=True)
class Background:
    """Distances and H(z) splined from CAMB on 0 <= z <= zmax (flat universe).

    z [-], chi comoving distance [Mpc], hubble H(z) [km/s/Mpc]."""

    z: np.ndarray
    chi: np.ndarray
    hubble_z: np.ndarray
    _splines: tuple = field(default=(), repr=False, compare=False)

    def __post_init__(self):
        from scipy.interpolate import CubicSpline

        object.__setattr__(self, "_splines", (CubicSpline(self.z, self.chi), CubicSpline(self.z, self.hubble_z)))

    def _check(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > self.z[-1] * (1 + 1e-12)):
            raise ValueError(f"redshift outside the tabulated range [0, {self.z[-1]:g}] (request a larger "
                             f"'distances': {{'zmax': ...}}); got min {np.min(z):g}, max {np.max(z):g}")
        return z

    def comoving_distance(self, z):
        """Line-of-sight comoving distance [Mpc] at redshift(s) z."""
        return self._splines[0](self._check(z))

    def angular_diameter_distance(self, z):
        """D_A = chi / (1 + z) [Mpc] (flat)."""
        z = self._check(z)
        return self._splines[0](z) / (1.0 + z)

    def luminosity_distance(self, z):
        """D_L = chi (1 + z) [Mpc] (flat)."""
        z = self._check(z)
        return self._splines[0](z) * (1.0 + z)

    def hubble(self, z):
        """H(z) [km/s/Mpc]."""
        return self._splines[1](self._check(z))


@dataclass(frozen=True)
class PowerTable:
    """Matter power P(k, z) [(Mpc/h)^3] tabulated by CAMB, bicubic in (z, ln k).

    k (nk,) [h/Mpc], z (nz,) increasing, lnpk (nz, nk) = ln P."""

    k: np.ndarray
    z: np.ndarray
    lnpk: np.ndarray
    _spline: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        from scipy.interpolate import RectBivariateSpline

        kz = min(3, len(self.z) - 1)
        object.__setattr__(self, "_spline", RectBivariateSpline(self.z, np.log(self.k), self.lnpk, kx=kz, ky=3)
                           if kz > 0 else None)

    def __call__(self, k, z) -> np.ndarray:
        """P(k, z) [(Mpc/h)^3], shape (nz, nk) for arrays (or scalars) k [h/Mpc] and z."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if np.any(~(k >= self.k[0] * (1 - 1e-9))) or np.any(~(k <= self.k[-1] * (1 + 1e-9))):
            raise ValueError(f"k outside the tabulated range [{self.k[0]:.3g}, {self.k[-1]:.3g}] h/Mpc "
                             f"(request a larger kmax); got [{np.min(k):.3g}, {np.max(k):.3g}]")
        if np.any(~(z >= self.z[0] - 1e-9)) or np.any(~(z <= self.z[-1] + 1e-9)):
            raise ValueError(f"z outside the tabulated range [{self.z[0]:g}, {self.z[-1]:g}]; "
                             f"got [{np.min(z):g}, {np.max(z):g}]")
        lnk = np.clip(np.log(k), np.log(self.k[0]), np.log(self.k[-1]))
        if self._spline is None:
            from scipy.interpolate import CubicSpline

            return np.exp(np.broadcast_to(CubicSpline(np.log(self.k), self.lnpk[0])(lnk), (len(z), len(k))))
        order = np.argsort(z)
        out = np.empty((len(z), len(k)))
        out[order] = np.exp(self._spline(np.clip(z[order], self.z[0], self.z[-1]), lnk))
        return out


# -- parameters -------------------------------------------------------------------------

def _in_range(name: str, value: float, ranges=PARAMETER_RANGES) -> float:
    lo, hi = ranges[name]
    if not lo <= value <= hi:
        raise TheoryError(f"parameter {name}={value:g} is outside the allowed range [{lo:g}, {hi:g}]")
    return value


def _one_of(params: Mapping[str, Any], names: tuple[str, ...]) -> str:
    given = [n for n in names if n in params]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise TheorySetupError(f"give exactly one of {', '.join(names)} (got {what})")
    return given[0]


def _base_params(params: Mapping[str, Any]) -> dict[str, float]:
    """Validated Planck-style base parameters (floats), with defaults filled in."""
    missing = [n for n in ("ombh2", "omch2", "ns") if n not in params]
    if missing:
        raise TheorySetupError(f"missing cosmological parameter(s) {', '.join(missing)}; "
                               f"camb_theory needs ombh2, omch2, H0 (or theta_MC_100), logA (or As), ns")
    out = {n: _in_range(n, _number(params, n)) for n in ("ombh2", "omch2", "ns")}
    h_name = _one_of(params, ("H0", "theta_MC_100", "cosmomc_theta"))
    out[h_name] = _in_range(h_name, _number(params, h_name))
    a_name = _one_of(params, ("logA", "As"))
    out[a_name] = _in_range(a_name, _number(params, a_name))
    for name, default in (("tau", TAU_DEFAULT), ("mnu", MNU_DEFAULT)):
        out[name] = _in_range(name, _number(params, name)) if name in params else default
    out["As"] = out["As"] if "As" in out else 1e-10 * math.exp(out["logA"])
    out.setdefault("logA", math.log(1e10 * out["As"]))
    return out


def _resolve_settings(params: Mapping[str, Any], settings: CambSettings | None) -> CambSettings:
    """Fill the model choices left open (None) from the parameters present."""
    settings = settings if settings is not None else CambSettings()
    ede_model = settings.ede_model
    if ede_model is None:
        ede_model = "fluid" if "f_EDE" in params else "none"
    w_bins = settings.w_bins
    if w_bins is None:
        n = 0
        while f"w_{n + 1}" in params:
            n += 1
        w_bins = WBins.equal(n) if n else None
    elif isinstance(w_bins, int) and not isinstance(w_bins, bool):
        w_bins = WBins.equal(w_bins) if w_bins > 0 else None
    elif not isinstance(w_bins, WBins):
        raise TheorySetupError(f"CambSettings.w_bins must be None, an int or a WBins, got {w_bins!r}")
    if w_bins is not None and w_bins.n > MAX_WBINS:
        raise TheorySetupError(f"at most {MAX_WBINS} w bins are supported, got {w_bins.n}")
    return replace(settings, ede_model=ede_model, w_bins=w_bins)


def theory_params(settings: CambSettings | None = None) -> tuple[str, ...]:
    """Parameter names camb_theory reads for ``settings`` (all of PARAMS when settings is None)."""
    if settings is None:
        return PARAMS
    settings = _resolve_settings({}, settings)
    names = BASE_PARAMS
    if settings.ede_model != "none":
        names += EDE_PARAMS
    if settings.w_bins is not None:
        names += settings.w_bins.names
    return names


# -- requirements -----------------------------------------------------------------------

def merge_requirements(*requirements: Mapping[str, Any]) -> dict[str, Any]:
    """Union of several likelihoods' requirements: largest lmax/kmax/zmax, lensing OR-ed,
    redshift lists united."""
    out: dict[str, Any] = {}
    for req in requirements:
        for key, value in (req or {}).items():
            if not isinstance(value, Mapping):
                # A mapping already there (e.g. distances: {zmax}) includes the plain True.
                if not isinstance(out.get(key), Mapping):
                    out[key] = bool(out.get(key, False)) or bool(value)
                continue
            merged = dict(out[key]) if isinstance(out.get(key), Mapping) else {}
            for k, v in value.items():
                if k not in merged:
                    merged[k] = list(v) if isinstance(v, (list, tuple)) else v
                elif isinstance(v, bool):
                    merged[k] = merged[k] or v
                elif isinstance(v, (list, tuple)):
                    merged[k] = sorted(set(merged[k]) | set(v), key=lambda x: (isinstance(x, str), x))
                else:
                    merged[k] = max(merged[k], v)
            out[key] = merged
    return out


@dataclass(frozen=True)
class _Needs:
    cls_lmax: int = 0
    lensing: bool = True
    lens_accuracy: int = 1
    distances_zmax: float = 0.0
    transfer: bool = False
    pk_kmax: float = 0.0
    pk_z: tuple = ()
    pk_lin: bool = False
    pk_nl: bool = False


def _parse_requirements(requirements: Mapping[str, Any]) -> _Needs:
    if requirements is None:
        requirements = {}
    if not isinstance(requirements, Mapping):
        raise TheorySetupError(f"requirements must be a mapping, got {requirements!r}")
    unknown = sorted(set(requirements) - set(_REQUIREMENT_KEYS))
    if unknown:
        raise TheorySetupError(f"unknown requirement(s) {', '.join(map(repr, unknown))}; "
                               f"known: {', '.join(_REQUIREMENT_KEYS)}")
    kw: dict[str, Any] = {}
    cls = requirements.get("cls")
    if cls:
        if not isinstance(cls, Mapping) or "lmax" not in cls:
            raise TheorySetupError("requirement 'cls' must be a mapping with 'lmax', e.g. {'lmax': 2508}")
        bad = sorted(set(cls) - {"lmax", "lensing", "lens_potential_accuracy", "spectra"})
        if bad:
            raise TheorySetupError(f"requirement cls: unknown key(s) {', '.join(bad)}; "
                                   f"known: lmax, lensing, lens_potential_accuracy, spectra")
        lmax = cls["lmax"]
        if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)) or not 2 <= lmax <= 6000:
            raise TheorySetupError(f"requirement cls.lmax must be an integer in [2, 6000], got {lmax!r}")
        spectra = set(cls.get("spectra", ())) - {"tt", "te", "ee", "bb", "pp"}
        if spectra:
            raise TheorySetupError(f"requirement cls.spectra: unknown {sorted(spectra)}; known: tt, te, ee, bb, pp")
        lpa = cls.get("lens_potential_accuracy", 1)
        if isinstance(lpa, bool) or not isinstance(lpa, (int, np.integer)) or not 0 <= lpa <= 8:
            raise TheorySetupError(f"requirement cls.lens_potential_accuracy must be an integer in [0, 8], got {lpa!r}")
        kw.update(cls_lmax=int(lmax), lensing=bool(cls.get("lensing", True)), lens_accuracy=int(lpa))
    dist = requirements.get("distances")
    if dist:
        zmax = dist.get("zmax", 10.0) if isinstance(dist, Mapping) else 10.0
        if not (isinstance(zmax, (int, float)) and 0 < zmax <= 1200):
            raise TheorySetupError(f"requirement distances.zmax must be a number in (0, 1200], got {zmax!r}")
        kw["distances_zmax"] = float(zmax)
    kmax, zs = 0.0, set()
    for name in ("pk_lin", "pk_nl"):
        spec = requirements.get(name)
        if not spec:
            continue
        if not isinstance(spec, Mapping) or "kmax" not in spec:
            raise TheorySetupError(f"requirement {name!r} must be a mapping with 'kmax' [h/Mpc] and 'zmax' or 'z'")
        bad = sorted(set(spec) - {"kmax", "zmax", "z"})
        if bad:
            raise TheorySetupError(f"requirement {name}: unknown key(s) {', '.join(bad)}; known: kmax, zmax, z")
        k = spec["kmax"]
        if not (isinstance(k, (int, float)) and not isinstance(k, bool) and 0.01 <= k <= 100):
            raise TheorySetupError(f"requirement {name}.kmax must be in [0.01, 100] h/Mpc, got {k!r}")
        kmax = max(kmax, float(k))
        if "z" in spec:
            z = np.asarray(spec["z"], dtype=float).ravel()
            if z.size == 0 or np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > 20):
                raise TheorySetupError(f"requirement {name}.z must be redshifts in [0, 20], got {spec['z']!r}")
            zs |= set(np.round(z, 10).tolist())
        if "zmax" in spec or "z" not in spec:  # merged requirements may carry both
            zmax = spec.get("zmax", 0.0)
            if not (isinstance(zmax, (int, float)) and 0 <= zmax <= 20):
                raise TheorySetupError(f"requirement {name}.zmax must be in [0, 20], got {zmax!r}")
            nz = max(2, int(math.ceil(zmax / 0.1)) + 1) if zmax > 0 else 1
            zs |= set(np.round(np.linspace(0.0, zmax, nz), 10).tolist())
        kw[name] = True
    if len(zs) > 150:
        raise TheorySetupError(f"at most 150 power-spectrum redshifts, got {len(zs)}")
    if kmax:
        kw.update(pk_kmax=kmax, pk_z=tuple(sorted(zs)))
    kw["transfer"] = bool(kmax) or bool(requirements.get("sigma8")) or bool(requirements.get("S8"))
    return _Needs(**kw)


# -- the CAMB run -----------------------------------------------------------------------

def _camb_params(base: Mapping[str, float], settings: CambSettings, dark_energy=None):
    """CAMBparams for the base parameters; dark_energy (a CAMB DarkEnergyModel) is set
    before the cosmology so a theta_MC -> H0 solve sees it."""
    import camb

    pars = camb.CAMBparams()
    if dark_energy is not None:
        pars.DarkEnergy = dark_energy
    kw = dict(ombh2=base["ombh2"], omch2=base["omch2"], mnu=base["mnu"], nnu=N_EFF,
              num_massive_neutrinos=1 if base["mnu"] > 0 else 0, neutrino_hierarchy="degenerate",
              tau=base["tau"], TCMB=T_CMB, omk=0.0)
    if "H0" in base:
        kw["H0"] = base["H0"]
    else:
        kw["cosmomc_theta"] = base["theta_MC_100"] / 100.0 if "theta_MC_100" in base else base["cosmomc_theta"]
        kw["theta_H0_range"] = PARAMETER_RANGES["H0"]
    try:
        pars.set_cosmology(**kw)
    except camb.CAMBError as exc:
        raise TheoryError(f"CAMB could not set the cosmology ({exc}); parameters {dict(base)}") from None
    pars.InitPower.set_params(As=base["As"], ns=base["ns"], pivot_scalar=0.05)
    pars.WantTensors = False
    pars.set_accuracy(AccuracyBoost=settings.accuracy_boost, lAccuracyBoost=settings.l_accuracy_boost)
    return pars


def _configure(pars, needs: _Needs, settings: CambSettings) -> None:
    """Switch on exactly the calculations ``needs`` asks for."""
    import camb

    pars.WantCls = bool(needs.cls_lmax)
    pars.Want_CMB = bool(needs.cls_lmax)
    pars.Want_CMB_lensing = bool(needs.cls_lmax)
    pars.DoLensing = bool(needs.cls_lmax) and needs.lensing
    pars.WantTransfer = needs.transfer
    pars.NonLinear = camb.model.NonLinear_none
    if needs.cls_lmax:
        # The last ~100 multipoles CAMB computes are inaccurate: compute LENS_MARGIN beyond
        # lmax with or without lensing (set_for_lmax adds it only for lensing).
        pars.set_for_lmax(needs.cls_lmax + (0 if needs.lensing else LENS_MARGIN),
                          lens_potential_accuracy=needs.lens_accuracy, lens_output_margin=LENS_MARGIN)
    if needs.transfer:
        h = pars.H0 / 100.0
        kmax = max(needs.pk_kmax, 5.0)  # sigma8 converges to 1e-4 by k = 5 h/Mpc
        zs = sorted(set(needs.pk_z) | {0.0}, reverse=True)
        # CAMB's k table stops a little short of the requested kmax: ask for margin.
        # nonlinear=True keeps non-linear lensing on (NonLinear_both) when set_for_lmax set it.
        pars.set_matter_power(redshifts=zs, kmax=1.2 * kmax * h, nonlinear=needs.pk_nl, silent=True)
    if needs.pk_nl or (needs.cls_lmax and needs.lens_accuracy > 0):
        pars.NonLinearModel.set_params(halofit_version=settings.halofit_version)


def _derived(results, base: Mapping[str, float]) -> dict[str, float]:
    pars = results.Params
    h = pars.H0 / 100.0
    thermo = results.get_derived_params()
    omegam = (pars.ombh2 + pars.omch2 + pars.omnuh2) / h**2
    out = {
        "H0": float(pars.H0), "h": h, "Omega_m": float(omegam), "Omega_b": pars.ombh2 / h**2,
        "Omega_c": pars.omch2 / h**2, "Omega_de": float(results.get_Omega("de")), "omegamh2": omegam * h**2,
        "omnuh2": float(pars.omnuh2), "ombh2": float(pars.ombh2), "omch2": float(pars.omch2),
        "As": base["As"], "logA": base["logA"], "ns": base["ns"], "tau": base["tau"], "mnu": base["mnu"],
        "YHe": float(pars.YHe), "theta_MC_100": 100.0 * float(results.cosmomc_theta()),
        "age": float(thermo["age"]), "zstar": float(thermo["zstar"]), "rstar": float(thermo["rstar"]),
        "theta_star": float(thermo["thetastar"]), "zdrag": float(thermo["zdrag"]),
        "rdrag": float(thermo["rdrag"]), "zeq": float(thermo["zeq"]),
    }
    return out


def _background(results, zmax: float) -> Background:
    # Fine at low z where BAO / SN live, coarser beyond; cubic splines then agree with
    # CAMB's own integrals to < 1e-7 (tests/test_camb_theory.py).
    z = np.unique(np.concatenate([np.linspace(0.0, min(zmax, 4.0), 801),
                                  np.geomspace(4.0, max(zmax, 4.0), 200) if zmax > 4.0 else []]))
    chi = np.asarray(results.comoving_radial_distance(z), dtype=float)
    hub = np.asarray(results.hubble_parameter(z), dtype=float)
    return Background(z=z, chi=chi, hubble_z=hub)


def _power_table(results, nonlinear: bool, needs: _Needs) -> PowerTable:
    getter = results.get_nonlinear_matter_power_spectrum if nonlinear else results.get_linear_matter_power_spectrum
    kh, z, pk = getter(var1="delta_tot", var2="delta_tot", hubble_units=True, k_hunit=True)
    keep = kh <= needs.pk_kmax * 1.0001
    keep[: np.argmax(kh > needs.pk_kmax) + 1] = True  # one point past kmax for the spline
    z = np.asarray(z, dtype=float)
    order = np.argsort(z)
    zsel = np.isin(np.round(z[order], 8), np.round(np.asarray(needs.pk_z), 8))
    return PowerTable(k=np.asarray(kh)[keep], z=z[order][zsel], lnpk=np.log(np.asarray(pk)[order][zsel][:, keep]))


def _cmb_spectra(results, lmax: int, lensing: bool) -> dict[str, np.ndarray]:
    cl = (results.get_lensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True) if lensing
          else results.get_unlensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True))
    pp = results.get_lens_potential_cls(lmax=lmax, raw_cl=True)[:, 0]
    return {"tt": cl[:, 0].copy(), "ee": cl[:, 1].copy(), "bb": cl[:, 2].copy(), "te": cl[:, 3].copy(),
            "pp": np.asarray(pp, dtype=float).copy()}


def camb_theory(params: Mapping[str, Any], requirements: Mapping[str, Any] | None = None,
                settings: CambSettings | None = None) -> TheoryResult:
    """Observables for one parameter point (see the module docstring for names and units).

    Raises TheoryError for parameters outside the validity ranges, TheorySetupError for
    missing parameters or malformed requirements."""
    import camb

    needs = _parse_requirements(requirements)
    settings = _resolve_settings(params, settings)
    base = _base_params(params)
    if settings.threads:
        camb.config.ThreadNum = settings.threads

    model = dark_energy_model(params, settings, base, _camb_params)
    pars = model.pars
    _configure(pars, needs, settings)
    try:
        if needs.cls_lmax or needs.transfer:
            results = camb.get_results(pars)
        else:
            results = camb.get_background(pars)
    except camb.CAMBError as exc:
        raise TheoryError(f"CAMB failed for parameters {dict(base)}: {exc}") from None

    derived = _derived(results, base)
    derived.update(model.derived)
    out = TheoryResult(params={**base, **model.params}, H0=derived["H0"], rdrag=derived["rdrag"],
                       theta_star=derived["theta_star"], derived=derived)
    if needs.cls_lmax:
        cls = _cmb_spectra(results, needs.cls_lmax, needs.lensing)
        out.cls = model.correct_cls(cls, needs, results) if model.correct_cls is not None else cls
    if needs.distances_zmax:
        bg = _background(results, needs.distances_zmax)
        out.comoving_distance, out.angular_diameter_distance = bg.comoving_distance, bg.angular_diameter_distance
        out.luminosity_distance, out.hubble = bg.luminosity_distance, bg.hubble
    if needs.transfer:
        sigma8 = float(results.get_sigma8_0())
        out.sigma8 = sigma8
        out.S8 = sigma8 * math.sqrt(derived["Omega_m"] / 0.3)
        derived.update(sigma8=out.sigma8, S8=out.S8)
        if needs.pk_lin:
            out.pk_lin = _power_table(results, False, needs)
        if needs.pk_nl:
            out.pk_nl = _power_table(results, True, needs)
    return out
