"""The ``emulator_bias`` stage: does a nonlinear-power model bias LSST-Y1 cosmic shear?

For each boost model of ``methods`` (likelihoods.theory.lcdm_boost: the emulator
under test, EE2's LCDM boost used unchanged, HMcode-2020 alone and in the hybrid
form) against the EuclidEmulator2 reference (arXiv:2404.12344, 2510.14888):

* Delta chi^2 = (d_model - d_EE2)^T C^-1 (d_model - d_EE2) at every test cosmology
  and scale cut (likelihoods.shear.bias);
* the shift of every parameter, in sigma, at each fiducial of ``shifts.fiducials``:
  Fisher (linear response of the EE2 posterior to the data-vector error, J from EE2),
  or for the emulator alone at the mock's fiducial, importance sampling of its chain
  or two chains.

Section::

    emulator_bias:
      emulator: w0wa_cola128            # shipped model name or emulator file (run-dir relative)
      reference: ee2                    # ee2 | hmcode
      methods: [emulator]               # + ee2_lcdm, hmcode, hmcode_hybrid, ee2_response[_hmcode]
      test: datasets/test.h5            # a dataset's cosmologies inside EE2's box, or
                                        # {n: 100, seed: 1}: a Latin hypercube over the box
      max_cosmologies: null
      scale_cuts: [3000, 1500, 750, 375, 187.5]
      shear: {survey: {}, theta: {}, data: {fiducial: {}}, covariance: {}, conventions: {}}
      shifts:
        method: fisher                  # fisher | chains | importance | none
        fiducials: {EE2 reference: {}, w0 = -0.8: {w0: -0.8}}   # overrides of shear.data.fiducial
        steps: {Omega_m: 0.005, ...}    # central-difference steps (fisher)
        chains: {emulator: DIR, reference: DIR}
      boost_maps: {n: 9, z: [0, 1]}     # P_model / P_EE2 error maps over the w0-wa plane (optional)
      out: emulator_bias
      docs: null                        # a directory to copy the plots and table to
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.emulators.registry import model_file
from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.sampling import read_chain_samples
from cosmopipe.likelihoods.shear import bias
from cosmopipe.likelihoods.shear.likelihood import ShearLikelihood, default_priors, from_config
from cosmopipe.likelihoods.shear.limber import nuisance_names, shear_model
from cosmopipe.likelihoods.shear.scalecuts import parse_scale_cut, scale_cut_mask
from cosmopipe.likelihoods.theory.lcdm_boost import METHODS, method_source
from cosmopipe.likelihoods.theory.matter_power import power_source
from cosmopipe.pipeline.workflow import Stage
from cosmopipe.schema import (ConfigError, Section, choice, inside_path, integer, list_of, number, optional,
                              positive_int, positive_number, string)
from cosmopipe.sims.cosmology import Cosmology

from . import bias_report
from .boost_maps import boost_error_maps, plot_boost_maps

__all__ = ["BiasSettings", "STAGES", "parse_bias", "run_bias", "plan_bias"]

_BIAS_KEYS = ("emulator", "reference", "methods", "test", "max_cosmologies", "scale_cuts", "shear", "shifts",
              "boost_maps", "out", "docs")
_SHEAR_KEYS = ("survey", "theta", "data", "covariance", "conventions")
_DEFAULT_STEPS = {"Omega_m": 0.005, "Omega_b": 0.001, "h": 0.01, "A_s": 0.05e-9, "n_s": 0.01, "w0": 0.03,
                  "A_IA": 0.1, "eta_IA": 0.2}
# Added to the default steps when the emulator varies wa (or with no emulator): a
# w0waCDM analysis samples it, a wCDM one does not.
_WA_STEP = 0.05


@dataclass(frozen=True)
class BiasSettings:
    emulator: str | None
    reference: str
    methods: tuple
    test: str | None
    latin: tuple | None              # (n, seed) of a Latin hypercube over the box, or None
    max_cosmologies: int | None
    scale_cuts: tuple
    shear: dict = field(hash=False, compare=False)
    method: str = "fisher"
    fiducials: tuple = ()            # ((name, overrides), ...)
    steps: tuple = ()
    default_steps: bool = False      # steps not given: wa is added when the emulator varies it
    chains: tuple = ()
    max_samples: int = 4000
    shift_cut: float | None = 3000.0
    boost_maps: tuple | None = None  # (n, redshifts) of the w0-wa error maps, or None
    out: str = "emulator_bias"
    docs: str | None = None
    source: str = ""
    info: dict = field(default_factory=dict, hash=False, compare=False)


def _cut_list(section: Section, key: str, default) -> list:
    raw = section.data.get(key, default)
    section.take(key, lambda v: v, default=None)
    if not isinstance(raw, list) or not raw:
        raise section.error(key, "must be a non-empty list of l_max values (or none)")
    out = []
    for i, value in enumerate(raw):
        try:
            out.append(parse_scale_cut(value))
        except ValueError as exc:
            raise section.error(f"{key}[{i}]", str(exc)) from None
    return out


def _parse_test(section: Section):
    raw = section.data.get("test")
    if isinstance(raw, dict):
        sub = section.sub("test")
        n, seed = sub.take("n", positive_int), sub.take("seed", integer, default=0)
        sub.finish(allowed_hint=["n", "seed"])
        return None, (n, seed)
    return section.take("test", string), None


def _parse_shifts(shifts: Section, nbins: int, methods: tuple, cosmo_names: tuple) -> dict:
    method = shifts.take("method", choice("fisher", "chains", "importance", "none"), default="fisher")
    max_samples = shifts.take("max_samples", positive_int, default=4000)
    try:
        shift_cut = parse_scale_cut(shifts.take("scale_cut", lambda v: v, default=3000))
    except ValueError as exc:
        raise shifts.error("scale_cut", str(exc)) from None
    allowed = list(cosmo_names) + nuisance_names(nbins)
    ssec = shifts.sub("steps", default={})
    steps = {}
    for key in list(ssec.keys()):
        if key not in allowed:
            raise ssec.error(str(key), f"unknown parameter; allowed: {', '.join(allowed)}")
        steps[key] = ssec.take(key, positive_number)
    ssec.finish()
    default_steps = not steps
    if default_steps:
        steps = {**_DEFAULT_STEPS, **{n: (0.002 if n.startswith("dz") else 0.005) for n in nuisance_names(nbins)
                                      if n.startswith(("dz_", "m_"))}}
    fsec = shifts.sub("fiducials", default={})
    fiducials = []
    for name in list(fsec.keys()):
        over = fsec.sub(str(name))
        values = {}
        for key in list(over.keys()):
            if key not in allowed:
                raise over.error(str(key), f"unknown parameter; allowed: {', '.join(allowed)}")
            values[key] = over.take(key, number)
        over.finish()
        fiducials.append((str(name), tuple(values.items())))
    fsec.finish()
    if method != "fisher" and (fiducials or methods != ("emulator",)):
        raise shifts.error("method", f"{method!r} gives the shifts of the emulator at the mock's fiducial only; "
                                     "several fiducials or methods need method: fisher")
    csec = shifts.sub("chains", default={})
    chains = {k: csec.take(k, optional(string), default=None) for k in ("emulator", "reference")}
    csec.finish()
    if method == "chains" and None in chains.values():
        raise csec.error(None, "method 'chains' needs both emulator and reference chain directories")
    if method == "importance" and chains["emulator"] is None:
        raise csec.error(None, "method 'importance' needs the emulator chain directory (chains.emulator)")
    shifts.finish(allowed_hint=["method", "fiducials", "steps", "chains", "max_samples", "scale_cut"])
    return {"method": method, "max_samples": max_samples, "shift_cut": shift_cut, "steps": tuple(steps.items()),
            "fiducials": tuple(fiducials) or (("mock fiducial", ()),), "chains": tuple(chains.items()),
            "default_steps": default_steps}


def parse_bias(section: Section, info: dict) -> BiasSettings:
    emulator = section.take("emulator", optional(string), default=None)
    reference = section.take("reference", choice("ee2", "hmcode"), default="ee2")
    methods = tuple(section.take("methods", list_of(choice(*(m for m in METHODS if m != "ee2")), unique=True),
                                 default=["emulator"]))
    if "emulator" in methods and emulator is None:
        raise section.error("emulator", "is required when methods include 'emulator'")
    test, latin = _parse_test(section)
    max_cosmo = section.take("max_cosmologies", optional(positive_int), default=None)
    cuts = _cut_list(section, "scale_cuts", [3000, 1500, 750, 375, 187.5])
    shear = section.sub("shear", default={})
    for key in shear.keys():
        if key not in _SHEAR_KEYS:
            raise shear.error(str(key), f"unknown key; allowed keys here: {', '.join(_SHEAR_KEYS)} "
                                        "(power and scale_cut are set by the bias stage)")
    nbins = int((shear.data.get("survey") or {}).get("nbins") or 5)
    shifts = _parse_shifts(section.sub("shifts", default={}), nbins, methods, Cosmology.names())
    maps = None
    if section.data.get("boost_maps") is not None:
        msec = section.sub("boost_maps")
        maps = (msec.take("n", positive_int, default=9), tuple(msec.take("z", list_of(number), default=[0.0, 1.0])))
        msec.finish(allowed_hint=["n", "z"])
        if maps[0] < 2:
            raise msec.error("n", f"needs at least 2 grid points per axis, got {maps[0]}")
    else:
        section.take("boost_maps", default=None)
    out = section.take("out", inside_path, default="emulator_bias")
    docs = section.take("docs", optional(string), default=None)
    section.finish(allowed_hint=_BIAS_KEYS)
    keep = {k: info.get(k) for k in ("data_dir", "run_dir", "workflow_dir", "name", "source")}
    return BiasSettings(emulator=emulator, reference=reference, methods=methods, test=test, latin=latin,
                        max_cosmologies=max_cosmo, scale_cuts=tuple(cuts), shear=json.loads(json.dumps(shear.data)),
                        boost_maps=maps, out=out, docs=docs, source=section.source, info=keep, **shifts)


def _run_path(ctx, value: str) -> Path:
    return ctx.resolve(value)


def emulator_path(settings: BiasSettings, ctx) -> Path | None:
    """The emulator file: a run-dir relative path, or a shipped model's verified file."""
    if settings.emulator is None:
        return None
    path = _run_path(ctx, settings.emulator)
    if path.is_file():
        return path.resolve()
    try:
        return model_file(settings.emulator)
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(settings.source, "emulator_bias.emulator", str(exc)) from None


def plan_bias(settings: BiasSettings, ctx) -> str:
    cuts = ", ".join("none" if c is None else f"{c:g}" for c in settings.scale_cuts)
    test = (f"{settings.latin[0]} Latin-hypercube cosmologies over the EE2 box (seed {settings.latin[1]})"
            if settings.latin else f"{_run_path(ctx, settings.test)} (inside the EE2 box"
            + (f", at most {settings.max_cosmologies})" if settings.max_cosmologies else ")"))
    lines = [f"boost models: {', '.join(settings.methods)}" + (f" (emulator {settings.emulator})"
                                                                 if settings.emulator else ""),
             f"reference power: {settings.reference} (one CAMB run per test cosmology, ~3-5 s each; "
             "one more for hmcode_hybrid)",
             f"test cosmologies: {test}",
             f"scale cuts (l_max): {cuts}",
             f"parameter shifts: {settings.method}"
             + (f" at {len(settings.fiducials)} fiducial(s), {len(settings.steps)} parameters "
                f"({2 * len(settings.steps)} reference evaluations each)" if settings.method == "fisher" else ""),
             f"output: {_run_path(ctx, settings.out)} (delta_chi2.h5, delta_chi2.png, emulator_bias.md, shifts.json)"]
    if settings.docs:
        lines.append(f"copies of the plots and table: {settings.docs}")
    return "\n".join(lines)


def check_bias(settings: BiasSettings, ctx) -> None:
    """Inputs exist (``cosmopipe run --dry-run``): the emulator and a test dataset."""
    emulator_path(settings, ctx)
    if settings.test is not None and not _run_path(ctx, settings.test).is_file():
        raise ConfigError(settings.source, "emulator_bias.test", f"file {_run_path(ctx, settings.test)} not found")


def test_cosmologies(settings: BiasSettings, ctx, emulator, log, fiducial_m_nu: float = 0.058
                     ) -> tuple[list[str], list[Cosmology]]:
    """(ids, cosmologies): the dataset's inside EE2's box, or a Latin hypercube over the
    box the emulator and EE2 share (fixed parameters at the emulator's values; without an
    emulator m_nu at the mock's fiducial, so that the shortcuts alone see the same points)."""
    if settings.latin is None:
        path = _run_path(ctx, settings.test).resolve()
        ids, cosmos, dropped = bias.read_test_cosmologies(path, limit=settings.max_cosmologies)
        if dropped:
            log.info("%d test cosmologies outside the EE2 box left out: %s", len(dropped), ", ".join(dropped))
        if not cosmos:
            raise ConfigError(settings.source, "emulator_bias.test", f"no cosmology of {path} lies in the EE2 box")
        return ids, cosmos
    from scipy.stats import qmc

    n, seed = settings.latin
    box = {name: tuple(lim) for name, lim in EE2_BOX.items()}
    fixed = {"m_nu": float(fiducial_m_nu)}
    if emulator is not None:
        fixed = dict(emulator.fixed)
        for name, (lo, hi) in emulator.box.items():
            if name in box:
                box[name] = (max(lo, box[name][0]), min(hi, box[name][1]))
    names = [nm for nm in box if nm not in fixed]
    u = qmc.LatinHypercube(d=len(names), seed=seed).random(n)
    lo, hi = np.array([box[nm][0] for nm in names]), np.array([box[nm][1] for nm in names])
    rows = lo + u * (hi - lo)
    fid = Cosmology().to_dict()
    cosmos = [Cosmology.from_dict({**fid, **fixed, **dict(zip(names, map(float, row)))}) for row in rows]
    return [f"lhs-{i:04d}" for i in range(n)], cosmos[:settings.max_cosmologies]


def run_bias(settings: BiasSettings, ctx) -> None:
    log = ctx.log
    out_dir = _run_path(ctx, settings.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    emu_path = emulator_path(settings, ctx)
    info = dict(settings.info, run_dir=out_dir)
    raw = {**settings.shear, "power": {"source": settings.reference}, "scale_cut": "none"}
    raw["data"] = {**raw.get("data", {}), "power": {"source": settings.reference}}
    t0 = time.perf_counter()
    try:
        ref = from_config(Section(raw, "emulator_bias.shear", settings.source), info)
        conv = ref.model.conventions
        models = {m: shear_model(ref.model.survey, method_source(m, emulator=str(emu_path) if emu_path else None,
                                                                 conventions=conv),
                                 ref.model.theta_edges, fiducial=ref.model.fiducial, conventions=conv)
                  for m in settings.methods}
    except LikelihoodError as exc:
        raise ConfigError(settings.source, "emulator_bias", str(exc)) from None
    log.info("reference mock and covariance (%s) in %.1f s", settings.reference, time.perf_counter() - t0)
    emulator = models["emulator"].power.emulator if "emulator" in models else None
    cuts = bias.scale_cuts(ref.model.theta_edges, len(ref.model.survey.pairs), settings.scale_cuts)
    ids, cosmos = test_cosmologies(settings, ctx, emulator, log, ref.model.fiducial["m_nu"])
    fid_nuis = {k: v for k, v in ref.model.fiducial.items() if k not in Cosmology.names()}
    vectors, seconds = _test_vectors(settings, ctx, ref, models, ids, cosmos, fid_nuis, out_dir, log)
    d_ref = vectors.pop(settings.reference)
    dchi2 = {m: bias.delta_chi2(vectors[m], d_ref, ref.cov, [c.mask for c in cuts]) for m in settings.methods}
    shifts, note = _shifts(settings, ctx, ref, models, cuts, emu_path, info, log)
    meta = {"emulator": str(emu_path) if emu_path else "", "reference": settings.reference,
            "methods": list(settings.methods), "ids": ids, "seconds": seconds}
    bias_report.write(out_dir, meta, cuts, cosmos, dchi2, d_ref, vectors, shifts, note, settings, log)
    if settings.boost_maps is not None:
        _boost_maps(settings, ctx, ref, emu_path, out_dir, log)
    if settings.docs:
        docs = Path(settings.docs)
        docs.mkdir(parents=True, exist_ok=True)
        for path in sorted(out_dir.glob("*.png")) + [out_dir / "emulator_bias.md"]:
            shutil.copy2(path, docs / f"{settings.info.get('name') or 'emulator_bias'}_{path.name}")


def _cached(path: Path, fingerprint: str, resume: bool, log) -> dict:
    """The arrays of an .npz cache written for the same ``fingerprint`` (with --resume)."""
    if not (resume and path.is_file()):
        return {}
    with np.load(path, allow_pickle=False) as f:
        if str(f["fingerprint"]) != fingerprint:
            log.info("%s was written for other settings: recomputed", path)
            return {}
        return {name: f[name] for name in f.files if name != "fingerprint"}


def _store(path: Path, fingerprint: str, arrays: dict) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, fingerprint=np.array(fingerprint), **arrays)
    tmp.replace(path)


_HMCODE_FIRST = ("hmcode", "hmcode_hybrid", "ee2_response_hmcode")


def _vector_settings(settings, ref) -> dict:
    """What the data vectors depend on: the shear settings but the covariance, and the
    code that computes them, which the reference's mock at its fiducial stands for (a
    change of conventions or of the power source since the cache was written changes
    those bytes, and the cache is then recomputed instead of mixed with new vectors)."""
    return {**{k: v for k, v in settings.shear.items() if k != "covariance"},
            "mock_sha256": hashlib.sha256(np.ascontiguousarray(ref.data, dtype=float).tobytes()).hexdigest()}


def _test_vectors(settings, ctx, ref, models, ids, cosmos, fid_nuis, out_dir, log):
    """{model: (n, N) data vectors} at the test cosmologies.  Those of the CAMB-based models
    (the reference and the shortcuts) are kept in ``test_vectors.npz``, every 10
    cosmologies, and reused by --resume (a killed study loses at most 10 cosmologies; a
    new emulator costs only its own evaluations); evaluated cosmology by cosmology so
    that the models of one cosmology share its CAMB runs."""
    from tqdm import tqdm

    cache = out_dir / "test_vectors.npz"
    fingerprint = json.dumps({"cosmologies": [c.to_dict() for c in cosmos], "shear": _vector_settings(settings, ref)},
                             sort_keys=True)
    stored = _cached(cache, fingerprint, ctx.resume, log)
    # HMcode first: its CAMB run then serves every CAMB-based model's linear power
    order = [m for m in (*_HMCODE_FIRST, settings.reference, *settings.methods) if m in models or m == settings.reference]
    rows = {m: ([] if m == "emulator" else list(stored.get(m, []))) for m in dict.fromkeys(order)}
    reused = {m: len(v) for m, v in rows.items() if v}
    if reused:
        log.info("test data vectors reused from %s: %s", cache, ", ".join(f"{m} {n}" for m, n in reused.items()))
    seconds = dict.fromkeys(rows, 0.0)
    start = min(len(v) for v in rows.values())
    for i in tqdm(range(start, len(cosmos)), desc="test data vectors", disable=not ctx.progress):
        params = {**fid_nuis, **cosmos[i].to_dict()}
        for m, done in rows.items():
            if len(done) > i:
                continue
            t0 = time.perf_counter()
            model = ref.model if m == settings.reference else models[m]
            done.append(np.asarray(model.data_vector(params, strict=False), dtype=float))
            seconds[m] += time.perf_counter() - t0
        if (i + 1) % 10 == 0 or i + 1 == len(cosmos):
            _store(cache, fingerprint, {m: np.stack(v) for m, v in rows.items() if m != "emulator" and v})
            log.info("test data vectors: %d of %d cosmologies", i + 1, len(cosmos))
    log.info("data vectors of %d test cosmologies: %s", len(ids),
             ", ".join(f"{m} {s:.1f} s" for m, s in seconds.items() if s) or "all reused")
    return {m: np.stack(v) for m, v in rows.items()}, seconds


def _boost_maps(settings, ctx, ref, emu_path, out_dir: Path, log) -> None:
    n, z = settings.boost_maps
    t0 = time.perf_counter()
    # the maps cover k <= 1 h/Mpc, where the ee2_response floors are EE2 itself
    methods = [m for m in settings.methods if not m.startswith("ee2_response")]
    maps = boost_error_maps(methods, str(emu_path) if emu_path else None, ref.model.fiducial, n, z,
                            conventions=ref.model.conventions, progress=ctx.progress)
    np.savez(out_dir / "boost_maps.npz", **{k: np.asarray(v) for k, v in maps.items()})
    plot_boost_maps(maps, out_dir / "boost_maps.png", bias_report.LABELS)
    log.info("w0-wa boost maps (%d x %d points) in %.0f s: %s", n, n, time.perf_counter() - t0,
             ", ".join(f"{m} median {100 * np.median(maps[m]):.2f} %" for m in methods))


def _shifts(settings, ctx, ref, models, cuts, emu_path, info, log):
    """({fiducial: {method: [FisherShift per cut]}}, note)."""
    if settings.method == "none":
        return {}, ""
    if settings.method == "chains":
        chains = dict(settings.chains)
        posterior = bias.posterior_shifts(_run_path(ctx, chains["emulator"]), _run_path(ctx, chains["reference"]))
        shift = bias.FisherShift("chains", tuple(posterior), np.array(list(posterior.values())),
                                 np.ones(len(posterior)))
        return {"mock fiducial": {"emulator": [shift]}}, "from chains: (mean_emu - mean_ref) / std_ref"
    if settings.method == "importance":
        shift, note = _importance(settings, ctx, ref, emu_path, log)
        return {"mock fiducial": {"emulator": [shift]}}, note
    priors = {n: spec["sigma"] for n, spec in default_priors(ref.model.nbins).items()
              if spec.get("prior") == "gaussian"}
    steps = dict(settings.steps)
    emulator = models["emulator"].power.emulator if "emulator" in models else None
    if settings.default_steps and (emulator is None or "wa" in emulator.params):
        steps["wa"] = _WA_STEP
    out = {}
    cache = _run_path(ctx, settings.out) / "fisher_vectors.npz"
    fingerprint = json.dumps({"fiducials": settings.fiducials, "steps": steps, "shear": _vector_settings(settings, ref)},
                             sort_keys=True)
    stored = _cached(cache, fingerprint, ctx.resume, log)
    for i, (name, overrides) in enumerate(settings.fiducials):
        fid = {**ref.model.fiducial, **dict(overrides)}
        t0 = time.perf_counter()
        memo = _VectorMemo(ref.model, stored, f"f{i}")
        try:
            d_ref = memo(fid)
            deltas = {m: (memo.get(f"f{i}_{m}", lambda: models[m].data_vector(fid)) if m != "emulator"
                          else models[m].data_vector(fid)) - d_ref for m in settings.methods}
            out[name] = bias.fisher_shifts_many(memo, fid, steps, deltas, ref.cov, cuts, prior_sigma=priors)
        except (LikelihoodError, ValueError) as exc:
            raise ConfigError(settings.source, f"emulator_bias.shifts.fiducials.{name}", str(exc)) from None
        _store(cache, fingerprint, stored)
        worst = {m: max(abs(s.in_sigma).max() for s in shifts) for m, shifts in out[name].items()}
        log.info("shifts at %s (%.0f s): largest |shift| / sigma over the cuts: %s", name, time.perf_counter() - t0,
                 ", ".join(f"{m} {v:.3f}" for m, v in worst.items()))
    note = ("Gaussian (Fisher) approximation at each fiducial, noiseless EE2 mock there: shift = F^-1 J^T C^-1 "
            "(d_model - d_EE2) / sigma with J and F from EE2, Gaussian nuisance priors included; the covariance is "
            "the one at the mock's fiducial")
    return out, note


class _VectorMemo:
    """The reference model's data vector at a point, kept in ``stored`` (an .npz cache's
    arrays) under ``prefix`` and the point's parameters, so that --resume recomputes no
    Fisher derivative (each costs a CAMB run)."""

    def __init__(self, model, stored: dict, prefix: str):
        self.model, self.stored, self.prefix = model, stored, prefix

    def get(self, key: str, compute):
        if key not in self.stored:
            self.stored[key] = np.asarray(compute(), dtype=float)
        return self.stored[key]

    def __call__(self, params: dict) -> np.ndarray:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
        key = f"{self.prefix}_{digest}"
        return self.get(key, lambda: self.model.data_vector(params))


def _importance(settings, ctx, ref, emu_path: Path, log):
    """Shift of the emulator at the mock's fiducial from its chain reweighted to EE2
    (bias.importance_shifts), EE2 on the emulator's linear-power emulator so that
    only the nonlinear boost differs."""
    from tqdm import tqdm

    chain_dir = _run_path(ctx, dict(settings.chains)["emulator"])
    try:
        names, samples = read_chain_samples(chain_dir, settings.max_samples)
        ee2 = power_source("ee2", linear=str(emu_path), conventions=ref.model.conventions)
    except (LikelihoodError, ValueError) as exc:
        raise ConfigError(settings.source, "emulator_bias.shifts.chains.emulator", str(exc)) from None
    survey, edges, fid = ref.model.survey, ref.model.theta_edges, ref.model.fiducial
    mask = scale_cut_mask(edges, len(survey.pairs), settings.shift_cut)
    conv = ref.model.conventions
    liks = {label: ShearLikelihood(model=shear_model(survey, source, edges, fiducial=fid, conventions=conv),
                                   data=ref.data, cov=ref.cov, mask=mask)
            for label, source in (("emu", power_source("emulator", str(emu_path), conventions=conv)), ("ref", ee2))}
    t0 = time.perf_counter()
    lnl = {label: np.empty(len(samples)) for label in liks}
    for i, row in enumerate(tqdm(samples, desc="importance weights", disable=not ctx.progress)):
        params = {**fid, **dict(zip(names, map(float, row)))}
        for label, lik in liks.items():
            lnl[label][i] = lik.loglike(None, params)
    shift, ess = bias.importance_shifts(samples, lnl["emu"], lnl["ref"], names)
    cut = "none" if settings.shift_cut is None else f"lmax{settings.shift_cut:g}"
    log.info("importance sampling: %d samples of %s reweighted to EE2 in %.1f s; effective sample size %.0f",
             len(samples), chain_dir, time.perf_counter() - t0, ess)
    note = (f"importance sampling: {len(samples)} samples of the emulator chain ({chain_dir}) reweighted by "
            f"L_EE2 / L_emu, EE2 with the emulator's linear-power emulator; effective sample size {ess:.0f}; "
            "shift = (mean_emu - mean_EE2) / std_EE2")
    return bias.FisherShift(cut, tuple(shift), np.array(list(shift.values())), np.ones(len(shift))), note


STAGES = [Stage("emulator_bias", parse_bias, run_bias, plan_bias,
                help="Delta chi^2 and parameter shifts of boost models against EE2 (LSST-Y1 shear)")]
