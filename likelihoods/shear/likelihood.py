"""The LSST-Y1 cosmic-shear likelihood and its workflow factory.

    ln L = -1/2 (d - t(p))^T C^-1 (d - t(p))      over the points kept by the scale cut

d is the xi+- data vector (a mock by default), C its covariance (analytic at
the fiducial point unless a file is given: Gaussian, plus the super-sample and
connected non-Gaussian terms when ``covariance.terms`` asks for them) and t(p) the theory of
:mod:`cosmopipe.likelihoods.shear.limber` at the parameter point p, which the
likelihood computes itself from ``params`` (it ignores ``theory``).

Workflow section (every key optional; paths are absolute, relative to the
working directory, or relative to the workflow's data_dir)::

    power:      {source: ee2 | hmcode | emulator | table | theory, path: FILE,    # default ee2;
                                                  # theory: P_nl and sigma8 from sample.theory
                 ee2: auto | exact | surrogate,   # a hybrid's EE2 part (auto: its surrogate if stored)
                 linear: FILE}    # source ee2: P_lin from this file's linear-power emulator, not CAMB
    survey:     {nz_file: FILE, nbins: 5, z0: 0.13, alpha: 0.78, sigma_z: 0.05,
                 n_eff: 10.0, sigma_e: 0.26, area: 12300.0, z_max: 4.0}
    theta:      {min: 2.5, max: 900.0, nbins: 26}                         # arcmin
    scale_cut:  3000 | 1500 | 750 | 375 | 187.5 | any l_max | none          # default 3000
    data:       {file: FILE,                      # a cosmopipe-shear-data file; else a mock:
                 fiducial: {Omega_m: 0.319, ..., A_IA: 0.5},  # truth of the mock, and the value of
                                                              # every parameter the sampler does not vary
                 noise_seed: null,                # integer: add one seeded noise realisation
                 power: {source: ee2}}            # power of the mock (EuclidEmulator2)
    covariance: {file: FILE}                      # .npy/.npz/text; or computed at the fiducial:
    covariance: {terms: [gaussian, ssc, cng],     # default [gaussian]; ssc, cng need pyccl
                 cache: DIR,                      # default $COSMOPIPE_CACHE, else <run_dir>/cache
                 non_gaussian: {ell_max: 3.0e4, n_ell: 40, n_k: 40, n_a: 12}}   # numerics of ssc, cng
    preset:     project | cosmolike               # conventions where codes differ; default project
    conventions: {xi_method: curved | flat, xi_weights: exact | cosmolike,
                  nz_rows: centres | lower_edges, nla_c1rho: '0.0134' | cosmolike,
                  neutrinos: three_degenerate | one_massive, limber_prefactor: spin2 | none,
                  boost_extrapolation: constant | boost_linear_log_k | linear_log_k,
                  cola_response: auto | hmcode | constant | unity}
                  # each overrides the preset (likelihoods.shear.conventions)

A generated mock is written with its covariance and provenance to
``<run_dir>/lsst_y1_shear_data.h5``.

The covariance terms default to the Gaussian one alone: it costs a second and
needs no halo model, which small set-ups and tests rely on.  An LSST-Y1
analysis should ask for ``[gaussian, ssc, cng]`` (the workflows in workflows/
do): at small scales SSC and cNG dominate the variance of xi+
(docs/lsst_y1_covariance.md).  The non-Gaussian terms take a minute or two of
CPU once; the result is cached on disk under a hash of its settings
(:mod:`cosmopipe.likelihoods.shear.covariance_cache`).  A relative ``cache`` is
taken relative to the run directory.  With ``data.file`` the stored covariance
is used unless ``covariance.file`` or ``covariance.terms`` is given (then it is
computed at ``data.fiducial``).  ``info['dry_run']`` true (a plan, not an
analysis) skips the non-Gaussian terms after checking that pyccl is there.  Parameters missing from ``params`` take
their fiducial values; :meth:`ShearLikelihood.parameters` lists the
nuisances with their default priors.

Hooks of the sample stage: :meth:`ShearLikelihood.derived` gives sigma8 (total
linear matter, z = 0, from the power source: the linear-power emulator or the
CAMB run already made) and S8 = sigma8 sqrt(Omega_m / 0.3);
:attr:`ShearLikelihood.fiducial` the truth of the mock (every Cosmology
parameter, the nuisances, sigma8 and S8) for the markers of posterior plots.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cosmopipe.emulators.registry import is_model_name, model_file
from cosmopipe.likelihoods.base import LikelihoodError, TheoryResult
from cosmopipe.schema import (ConfigError, Section, choice, list_of, nonnegative_int, number, optional, positive_int,
                              positive_number, string)
from cosmopipe.sims.cosmology import Cosmology

from .conventions import OPTIONS, PRESETS, Conventions, conventions_from
from .covariance import check_covariance, load_covariance
from .covariance_cache import cache_directory, check_terms, shear_covariance
from .covariance_ng import NON_GAUSSIAN_TERMS, TERMS, NGSettings, _pyccl
from .hankel import theta_edges
from .limber import ShearModel, nuisance_names, shear_model
from .mock import add_noise, read_data, write_data
from cosmopipe.likelihoods.theory.matter_power import EE2_OPTIONS, SOURCES, extend_log_pk, power_source
from .scalecuts import parse_scale_cut, scale_cut_mask
from .survey import Survey, lsst_y1_survey, survey_from_nz_file

__all__ = ["ShearLikelihood", "from_config", "default_priors", "DATA_FILE_NAME"]

log = logging.getLogger("cosmopipe.shear")
DATA_FILE_NAME = "lsst_y1_shear_data.h5"
_THEORY_KMAX = 20.0  # h/Mpc: the k range asked of a theory provider (CAMB tabulates no further)


def default_priors(nbins: int, fiducial: Mapping[str, float] | None = None) -> dict[str, dict]:
    """Nuisance priors of the LSST-Y1 set-up of CoCoA: dz_i ~ N(0, 0.002),
    m_i ~ N(0, 0.005), A_IA and eta_IA flat in [-5, 5]; with a starting point
    ('ref', the fiducial value), a proposal width and a LaTeX label."""
    fid = {"A_IA": 0.5, **(fiducial or {})}
    out: dict[str, dict] = {}
    for i in range(1, nbins + 1):
        out[f"dz_{i}"] = {"prior": "gaussian", "mean": 0.0, "sigma": 0.002, "ref": fid.get(f"dz_{i}", 0.0),
                          "proposal": 0.002, "latex": rf"\Delta z_{{{i}}}"}
    for i in range(1, nbins + 1):
        out[f"m_{i}"] = {"prior": "gaussian", "mean": 0.0, "sigma": 0.005, "ref": fid.get(f"m_{i}", 0.0),
                         "proposal": 0.005, "latex": f"m_{{{i}}}"}
    out["A_IA"] = {"prior": "flat", "min": -5.0, "max": 5.0, "ref": fid["A_IA"], "proposal": 0.1,
                   "latex": r"A_\mathrm{IA}"}
    out["eta_IA"] = {"prior": "flat", "min": -5.0, "max": 5.0, "ref": fid.get("eta_IA", 0.0), "proposal": 0.2,
                     "latex": r"\eta_\mathrm{IA}"}
    return out


@dataclass
class ShearLikelihood:
    """Gaussian xi+- likelihood (module doc).

    model  theory (its power source is the one sampled with)
    data   full data vector (2 npairs ntheta,)
    cov    its covariance
    mask   points kept (scale cut)
    truth  parameters of the data (the mock's fiducial; the model's when unknown)
    """

    model: ShearModel
    data: np.ndarray
    cov: np.ndarray
    mask: np.ndarray
    name: str = "lsst_y1_shear"
    provenance: dict = field(default_factory=dict)
    truth: dict | None = None
    _fiducial: dict | None = field(default=None, init=False, repr=False)
    _inv: np.ndarray = field(init=False, repr=False)
    _data_cut: np.ndarray = field(init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)
    pk_from_theory: bool = False     # power.source theory: P_nl from the run's theory provider

    def __post_init__(self):
        size = self.model.size
        self.data = np.asarray(self.data, dtype=float)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.data.shape != (size,) or self.mask.shape != (size,):
            raise LikelihoodError(f"{self.name}: data and mask must have the model's length {size}, "
                                  f"got {self.data.shape} and {self.mask.shape}")
        if not np.all(np.isfinite(self.data)):
            raise LikelihoodError(f"{self.name}: data vector has non-finite entries")
        if not self.mask.any():
            raise LikelihoodError(f"{self.name}: the scale cut removes every data point")
        self.cov = check_covariance(self.cov, size, f"{self.name}")
        cut = self.cov[np.ix_(self.mask, self.mask)]
        self._inv = np.linalg.inv(cut)
        self._inv = 0.5 * (self._inv + self._inv.T)
        self._data_cut = self.data[self.mask]

    # -- the Likelihood protocol -------------------------------------------------
    def requirements(self) -> dict[str, Any]:
        if not self.pk_from_theory:
            return {}
        # CAMB tabulates to 20 h/Mpc at most; beyond, a power law (as the hmcode source)
        return {"pk_nl": {"kmax": float(min(self.model.k[-1], _THEORY_KMAX)),
                          "z": [float(z) for z in self.model.z_power]}, "sigma8": True}

    def parameters(self) -> dict[str, dict]:
        return default_priors(self.model.nbins, self.model.fiducial)

    @property
    def input_params(self) -> tuple[str, ...]:
        """Cosmological parameters read from ``params`` (the rest take fiducial values)."""
        return Cosmology.names()

    def loglike(self, theory: TheoryResult | None, params: Mapping[str, float]) -> float:
        """-chi^2/2.  Parameters outside the theory's domain (Cosmology ranges, the
        power source's box, |dz| > 0.5, m <= -1) give -inf, logged once;
        non-numeric or non-finite values raise LikelihoodError."""
        try:
            vector = self.theory_vector(params) if not self.pk_from_theory else self._vector_from(theory, params)
        except LikelihoodError:
            raise
        except ValueError as exc:
            if not self._warned:
                log.warning("%s: point outside the theory's domain, ln L = -inf (%s); further cases not logged",
                            self.name, exc)
                self._warned = True
            return -math.inf
        if not np.all(np.isfinite(vector)):
            raise LikelihoodError(f"{self.name}: theory is not finite at {dict(params)}")
        return -0.5 * self.chi2_of(vector)

    def derived(self, theory: TheoryResult | None, params: Mapping[str, float]) -> dict[str, float]:
        """sigma8 [total linear matter, R = 8 Mpc/h, z = 0] and S8 = sigma8 sqrt(Omega_m / 0.3)
        at ``params`` (missing cosmological parameters take fiducial values)."""
        if self.pk_from_theory and theory is not None:
            params = {**theory.params, **params}
        cosmo, _ = self.model.split(params, strict=False)
        sigma8 = float(theory.sigma8 if self.pk_from_theory and theory is not None else self.model.power.sigma8(cosmo))
        return {"sigma8": sigma8, "S8": sigma8 * math.sqrt(cosmo.Omega_m / 0.3)}

    @property
    def fiducial(self) -> dict[str, float]:
        """Truth of the data: all Cosmology parameters, the nuisances, sigma8 and S8
        (computed once; for markers on posterior plots)."""
        if self._fiducial is None:
            values = {**self.model.fiducial, **(self.truth or {})}
            values = {k: float(v) for k, v in values.items() if k in self.model.fiducial}
            try:
                values.update(self.derived(None, values))
            except ValueError as exc:   # e.g. a truth outside the power source's box
                log.warning("%s: no sigma8 at the fiducial point (%s)", self.name, exc)
            self._fiducial = values
        return dict(self._fiducial)

    # -- helpers -----------------------------------------------------------------
    def _vector_from(self, theory: TheoryResult, params: Mapping[str, float]) -> np.ndarray:
        """Data vector with P_nl from the theory provider; the cosmology (distances, kernels)
        from the parameters in the run's vocabulary, translated by the theory layer."""
        if theory is None or theory.pk_nl is None:
            raise LikelihoodError(f"{self.name}: power.source theory, but the theory provider gave no pk_nl")
        cosmo, nuis = self.model.split({**theory.params, **params}, strict=False)
        k = self.model.k
        inside = k <= _THEORY_KMAX
        pk = np.asarray(theory.pk_nl(k[inside], self.model.z_power), dtype=float)
        lnp = extend_log_pk(k[inside], np.log(pk), k)
        xp, xm = self.model.xi_from(cosmo, nuis, self.model.z_interp @ lnp)
        return np.concatenate([xp.ravel(), xm.ravel()])

    def theory_vector(self, params: Mapping[str, float]) -> np.ndarray:
        """Full theory data vector at ``params`` (other likelihoods' names ignored)."""
        return self.model.data_vector(params, strict=False)

    def chi2_of(self, vector: np.ndarray) -> float:
        r = vector[self.mask] - self._data_cut
        return float(r @ self._inv @ r)

    def chi2(self, params: Mapping[str, float]) -> float:
        return self.chi2_of(self.theory_vector(params))

    @property
    def n_points(self) -> int:
        return int(self.mask.sum())


# -- factory ---------------------------------------------------------------------
def _resolve(sec, key: str, value: str, info: Mapping) -> Path:
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        if not path.exists():
            raise sec.error(key, f"file {path} not found")
        return path
    data_dir = info.get("data_dir") if info else None
    if data_dir and (Path(data_dir) / path).exists():
        return Path(data_dir) / path
    where = f" (nor under data_dir {data_dir})" if data_dir else ""
    raise sec.error(key, f"file {value} not found{where}")


def _wrap(sec, key: str, fn, *args, **kwargs):
    """Call fn; LikelihoodError/ValueError become ConfigErrors naming ``key``."""
    try:
        return fn(*args, **kwargs)
    except ConfigError:
        raise
    except ValueError as exc:
        raise sec.error(key, str(exc)) from None


def _conventions_from(section) -> Conventions:
    preset = section.take("preset", choice(*PRESETS), default="project")
    csec = section.sub("conventions", default={})
    overrides = {}
    for key in list(csec.keys()):
        if key not in OPTIONS:
            raise csec.error(str(key), f"unknown convention; allowed: {', '.join(OPTIONS)}")
        allowed = choice(*OPTIONS[key])
        # YAML reads nla_c1rho: 0.0134 as a number; the option is named by its text
        overrides[key] = csec.take(key, lambda v, ok=allowed: ok(str(v) if isinstance(v, float) else v))
    csec.finish()
    return conventions_from(preset, overrides)


def _power_from(sec, info, default_source: str = "ee2", conventions: Conventions | None = None,
                theory_ok: bool = False):
    source = sec.take("source", choice(*SOURCES, *(("theory",) if theory_ok else ())), default=default_source)
    if source == "theory":
        sec.finish()
        return None
    path = sec.take("path", optional(string), default=None)
    ee2 = sec.take("ee2", choice(*EE2_OPTIONS), default="auto")
    linear = sec.take("linear", optional(string), default=None)
    sec.finish()
    if ee2 != "auto" and source != "emulator":
        raise sec.error("ee2", f"is only used by source 'emulator' (a hybrid emulator), not {source!r}")
    if linear is not None and source != "ee2":
        raise sec.error("linear", f"is only used by source 'ee2', not {source!r}")
    if linear is not None:
        linear = str(_resolve(sec, "linear", linear, info))
    if source in ("emulator", "table") and path is None:
        raise sec.error("path", f"is required for source {source!r}")
    if source not in ("emulator", "table") and path is not None:
        raise sec.error("path", f"is only used by sources emulator and table, not {source!r}")
    if source == "emulator" and path is not None and is_model_name(path):
        resolved = _wrap(sec, "path", model_file, path)
    else:
        resolved = _resolve(sec, "path", path, info) if path else None
    return _wrap(sec, "path" if path else ("linear" if linear else "source"), power_source, source, resolved, ee2,
                 linear, conventions)


def _survey_from(sec, info, nz_rows: str = "centres") -> Survey:
    nz_file = sec.take("nz_file", optional(string), default=None)
    nbins = sec.take("nbins", positive_int, default=None)
    n_eff = sec.take("n_eff", positive_number, default=10.0)
    sigma_e = sec.take("sigma_e", positive_number, default=0.26)
    area = sec.take("area", positive_number, default=12300.0)
    analytic = {name: sec.take(name, number, default=None) for name in ("z0", "alpha", "sigma_z", "z_max")}
    sec.finish()
    if nz_file is not None:
        given = [k for k, v in analytic.items() if v is not None]
        if given:
            raise sec.error(given[0], "applies to the analytic SRD n(z) only, not with nz_file")
        path = _resolve(sec, "nz_file", nz_file, info)
        return _wrap(sec, "nz_file", survey_from_nz_file, path, n_eff_total=n_eff, sigma_e=sigma_e,
                     area_deg2=area, nbins=nbins, rows=nz_rows)
    defaults = {"z0": 0.13, "alpha": 0.78, "sigma_z": 0.05, "z_max": 4.0}
    kwargs = {k: (v if v is not None else defaults[k]) for k, v in analytic.items()}
    return _wrap(sec, "nz_file", lsst_y1_survey, nbins=nbins or 5, n_eff_total=n_eff, sigma_e=sigma_e,
                 area_deg2=area, **kwargs)


def _fiducial_from(sec, nbins: int) -> dict:
    allowed = list(Cosmology.names()) + nuisance_names(nbins)
    out = {}
    for key in list(sec.keys()):
        if key not in allowed:
            raise sec.error(str(key), f"unknown parameter; allowed: {', '.join(allowed)}")
        out[key] = sec.take(key, number)
    sec.finish()
    try:
        Cosmology.from_dict({k: v for k, v in out.items() if k in Cosmology.names()})
    except ValueError as exc:
        raise sec.error(None, str(exc)) from None
    return out


def _covariance_settings(csec, cov_file) -> tuple[tuple[str, ...] | None, NGSettings, str | None]:
    """(terms or None, non-Gaussian numerics, cache directory or None) of the covariance section."""
    terms = csec.take("terms", list_of(choice(*TERMS), unique=True), default=None)
    cache = csec.take("cache", optional(string), default=None)
    ngsec = csec.sub("non_gaussian", default={})
    numerics = {key: ngsec.take(key, check, default=None)
                for key, check in (("ell_min", positive_number), ("ell_max", positive_number),
                                   ("n_ell", positive_int), ("k_min", positive_number), ("k_max", positive_number),
                                   ("n_k", positive_int), ("n_a", positive_int), ("z_max", positive_number))}
    ngsec.finish()
    csec.finish()
    if terms is not None:
        terms = _wrap(csec, "terms", check_terms, terms)
    if cov_file is not None:
        given = [k for k in ("terms", "cache", "non_gaussian") if csec.has(k)]
        if given:
            raise csec.error(given[0], "applies to a computed covariance, not with covariance.file")
    numerics = {k: v for k, v in numerics.items() if v is not None}
    if numerics and not set(terms or ()) & set(NON_GAUSSIAN_TERMS):
        raise csec.error("non_gaussian", f"sets the numerics of the terms {', '.join(NON_GAUSSIAN_TERMS)}; "
                                         f"covariance.terms has neither")
    settings = _wrap(ngsec, next(iter(numerics), "n_ell"), NGSettings, **numerics)
    return terms, settings, cache


def _cache_path(value: str | None, info: Mapping) -> str | None:
    """A configured cache directory; a relative one lies in the run directory (cwd without one)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    run_dir = info.get("run_dir")
    return str(path if path.is_absolute() or not run_dir else Path(run_dir) / path)


def from_config(section, info: Mapping | None = None) -> ShearLikelihood:
    """Build the likelihood from its workflow section (module doc)."""
    info = dict(info or {})
    if not isinstance(section, Section):
        section = Section(section, "lsst_y1_shear")
    conventions = _conventions_from(section)
    survey = _survey_from(section.sub("survey", default={}), info, conventions.nz_rows)
    tsec = section.sub("theta", default={})
    tmin = tsec.take("min", positive_number, default=2.5)
    tmax = tsec.take("max", positive_number, default=900.0)
    nt = tsec.take("nbins", positive_int, default=26)
    tsec.finish()
    edges = _wrap(tsec, "min", theta_edges, tmin, tmax, nt)
    lmax = section.take("scale_cut", parse_scale_cut, default=3000.0)
    power = _power_from(section.sub("power", default={}), info, conventions=conventions, theory_ok=True)
    from_theory = power is None

    dsec = section.sub("data", default={})
    data_file = dsec.take("file", optional(string), default=None)
    fiducial = _fiducial_from(dsec.sub("fiducial", default={}), survey.nbins)
    noise_seed = dsec.take("noise_seed", optional(nonnegative_int), default=None)
    dpower_sec = dsec.sub("power", default={})
    csec = section.sub("covariance", default={})
    cov_file = csec.take("file", optional(string), default=None)
    cov_terms, ng_settings, cov_cache = _covariance_settings(csec, cov_file)
    section.finish()
    if from_theory:
        # The model's own source serves the mock and the covariance; sampling reads P_nl from the theory.
        power = _power_from(Section(dict(dpower_sec.data), dpower_sec.path, dpower_sec.source), info,
                            default_source="ee2", conventions=conventions)

    model = _wrap(section, "data.fiducial", shear_model, survey, power, edges, fiducial=fiducial,
                  conventions=conventions)
    provenance: dict[str, Any] = {"power": {"source": "theory"} if from_theory else power.describe(), "survey": survey.describe(), "scale_cut_lmax": lmax,
                                  "conventions": conventions.to_dict()}

    def analytic(cov_model):
        terms = cov_terms or ("gaussian",)
        if cov_terms is None:
            log.info("%s: Gaussian-only covariance (covariance.terms not given); an LSST-Y1 analysis should "
                     "ask for [gaussian, ssc, cng]", section.path or "lsst_y1_shear")
        if info.get("dry_run") and terms != ("gaussian",):
            # a plan, not an analysis: check that the halo model is at hand, skip its minutes of work
            _wrap(csec, "terms", _pyccl)
            log.info("%s: dry run: covariance terms %s not computed (Gaussian only)", section.path or "lsst_y1_shear",
                     ", ".join(t for t in terms if t != "gaussian"))
            terms = ("gaussian",)
        cache = cache_directory(_cache_path(cov_cache, info), info.get("run_dir"))
        result = _wrap(csec, "terms", shear_covariance, cov_model, {}, terms, ng_settings, cache)
        provenance["covariance"] = f"{' + '.join(terms)} analytic at the fiducial"
        if set(terms) & set(NON_GAUSSIAN_TERMS):
            provenance["covariance_settings"] = {"key": result.key, "file": str(result.path) if result.path else None,
                                                 "non_gaussian": ng_settings.to_dict()}
        return result.total

    cov = None
    if cov_file is not None:
        cov = _wrap(csec, "file", load_covariance, _resolve(csec, "file", cov_file, info), model.size)
        provenance["covariance"] = str(cov_file)

    if data_file is not None:
        if noise_seed is not None or dsec.has("power"):
            given = [k for k in ("noise_seed", "power") if dsec.has(k)][0]
            raise dsec.error(given, "describes a generated mock; it cannot be combined with data.file")
        dpower_sec.finish()
        stored = _wrap(dsec, "file", read_data, _resolve(dsec, "file", data_file, info))
        data = stored["data"]
        if data.shape != (model.size,):
            raise dsec.error("file", f"data vector has length {data.size}, the model expects {model.size}")
        if cov is None and cov_terms is not None:
            cov = analytic(model)
        elif cov is None:
            cov = stored["covariance"]
            provenance["covariance"] = f"from {data_file}"
        dsec.finish()
        provenance["data"] = {"file": str(data_file), "fiducial": stored["fiducial"], "noise_seed": stored["noise_seed"],
                              "power": stored["power"]}
        truth = stored["fiducial"] if isinstance(stored["fiducial"], Mapping) else None
    else:
        dpower = _power_from(dpower_sec, info, default_source="ee2", conventions=conventions)
        dsec.finish()
        same = type(dpower) is type(power) and dpower.describe() == power.describe()
        data_model = model if same else _wrap(dsec, "fiducial", shear_model, survey, dpower, edges,
                                              fiducial=fiducial, conventions=conventions)
        noiseless = _wrap(dsec, "fiducial", data_model.data_vector, {})
        if cov is None:
            cov = analytic(data_model)
        data = noiseless if noise_seed is None else add_noise(noiseless, cov, noise_seed)
        provenance["data"] = {"mock": True, "fiducial": dict(data_model.fiducial), "noise_seed": noise_seed,
                              "power": dpower.describe()}
        truth = dict(data_model.fiducial)
        run_dir = info.get("run_dir")
        if run_dir:
            path = write_data(Path(run_dir) / DATA_FILE_NAME, data, noiseless, cov, data_model, data_model.fiducial,
                              noise_seed)
            provenance["data"]["file"] = str(path)
    mask = scale_cut_mask(edges, len(survey.pairs), lmax)
    return ShearLikelihood(model=model, data=data, cov=cov, mask=mask, provenance=provenance, truth=truth,
                           pk_from_theory=from_theory)
