"""The ``sample`` workflow stage: MCMC of the posterior of a set of likelihoods.

Section (see likelihoods.sampling for the convergence tests)::

    sample:
      likelihoods:                  # registry name -> the likelihood's own settings
        lsst_y1_shear: {...}
      theory: {provider: none}      # or camb, emulator, ee2, hmcode, pk_emulator (likelihoods.theory)
      params:
        Omega_m: {prior: {min: 0.24, max: 0.40}, ref: 0.319, proposal: 0.01, latex: '\\Omega_m'}
        dz_1: {prior: {dist: gaussian, mean: 0, sigma: 0.002}}
        m_nu: 0.058                 # fixed
        S8: {derived: true, latex: 'S_8'}
      sampler:
        walkers: 64                 # default 2 x (sampled parameters) + 2
        seed: 1
        chains: 4                   # independent ensembles (Gelman-Rubin)
        max_steps: 20000            # budget per chain
        check_every: 200
        convergence: {tau_factor: 50, tau_rtol: 0.01, rminus1: 0.01}
        parallel: auto              # auto | vectorize | dask | chains | none
        moves: stretch              # stretch (emcee's default) | de (differential evolution + snooker)
        restart: false              # true: delete existing chains instead of refusing them
      out: chains                   # under the run directory
      allow_unvalidated_emulator: false   # true: sample an emulator the guards refuse (loud warning)

Guards (pipeline/stages/emulator_guard.py): an emulator file the workflow reads must
meet its validation target, its box must cover the sampled priors and it must not hold
a sampled parameter fixed; else the stage refuses to start.

Nuisance parameters a likelihood announces (``parameters()``) and the
workflow does not list are sampled with the likelihood's default prior (logged).
A listed parameter that no likelihood or theory reads is an error.  Which
parameters a likelihood reads: its nuisance parameters, plus ``input_params``
when it defines that attribute, else the Cosmology parameters when it computes
its own theory (empty ``requirements()``); a theory provider adds the
parameters it reads.

Outputs in ``<run_dir>/<out>``: ``chain_<i>.h5`` (emcee HDF5), GetDist text
chains ``<name>_<i>.txt`` + ``.paramnames`` + ``.ranges`` (after burn-in,
thinned by tau/2), ``summary.json`` and ``summary.md``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cosmopipe.schema import (ConfigError, Section, boolean, choice, inside_path, nonnegative_int, number, optional,
                             positive_int, positive_number, string)
from cosmopipe.pipeline.workflow import Stage

from cosmopipe.likelihoods.priors import Prior, parse_prior, prior_from_default
from cosmopipe.likelihoods.sampling import (MOVES, PARALLEL_MODES, ChainRun, Convergence, DerivedParam, Posterior, SampledParam,
                       SamplerSettings, SamplingError, read_chain, run_chains, write_getdist)
from cosmopipe.likelihoods.theory import TheorySpec, make_theory, parse_theory

from .emulator_guard import GuardRefusal, check_emulators, emulator_refs
from .sample_support import not_converged_line

__all__ = ["STAGES", "SampleSettings", "ParamEntry", "parse", "run", "plan", "build_posterior", "BiasSettings",
           "parse_bias", "run_bias", "plan_bias"]

_PARAM_KEYS = ("prior", "ref", "proposal", "latex", "value", "derived")
_SECTION_KEYS = ("likelihoods", "theory", "params", "sampler", "out", "allow_unvalidated_emulator")
_SAMPLER_KEYS = ("walkers", "seed", "chains", "max_steps", "check_every", "convergence", "parallel", "moves",
                 "restart")
# Initial walker scatter in units of the prior width when no proposal is given.
_DEFAULT_PROPOSAL_FRACTION = 0.1


@dataclass(frozen=True)
class ParamEntry:
    """One ``sample.params`` entry: kind 'sampled' (prior may be None: the likelihood's default),
    'fixed' (value) or 'derived'."""

    name: str
    kind: str
    prior: Prior | None = None
    ref: float | None = None
    proposal: float | None = None
    latex: str = ""
    value: float | None = None


@dataclass(frozen=True)
class SampleSettings:
    likelihoods: tuple[tuple[str, Any], ...]     # (registry name, raw settings mapping)
    theory: TheorySpec
    params: tuple[ParamEntry, ...]
    sampler: SamplerSettings
    out: str
    source: str
    name: str                                     # run name: root of the GetDist files
    info: dict = field(default_factory=dict, hash=False, compare=False)
    allow_unvalidated: bool = False               # waive the emulator guards (recorded in the summary)


# -- parsing --------------------------------------------------------------------------
def _parse_param(section: Section, name: str) -> ParamEntry:
    raw = section.data[name]
    key = section.key(name)
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(section.source, key, "parameter names must be identifiers (letters, digits, _)")
    if isinstance(raw, bool) or raw is None:
        raise ConfigError(section.source, key, f"must be a number (fixed value) or a mapping with prior / value / "
                                               f"derived, got {raw!r}")
    if isinstance(raw, (int, float)):
        return ParamEntry(name, "fixed", value=section.take(name, number))
    sub = section.sub(name)
    latex = sub.take("latex", string, default="")
    if sub.has("value"):
        value = sub.take("value", number)
        sub.finish(allowed_hint=["value", "latex"])
        return ParamEntry(name, "fixed", value=value, latex=latex)
    if sub.take("derived", boolean, default=False):
        sub.finish(allowed_hint=["derived", "latex"])
        return ParamEntry(name, "derived", latex=latex)
    prior = parse_prior(sub.sub("prior")) if sub.has("prior") else None
    ref = sub.take("ref", optional(number), default=None)
    proposal = sub.take("proposal", optional(positive_number), default=None)
    sub.finish(allowed_hint=_PARAM_KEYS)
    if prior is not None and ref is not None and not prior.lower <= ref <= prior.upper:
        raise sub.error("ref", f"{ref:g} is outside the prior {prior.describe()}")
    return ParamEntry(name, "sampled", prior=prior, ref=ref, proposal=proposal, latex=latex)


def _parse_sampler(section: Section) -> SamplerSettings:
    conv = section.sub("convergence", default={})
    convergence = Convergence(
        tau_factor=conv.take("tau_factor", positive_number, default=50.0),
        tau_rtol=conv.take("tau_rtol", positive_number, default=0.01),
        rminus1=conv.take("rminus1", positive_number, default=0.01),
    )
    conv.finish(allowed_hint=["tau_factor", "tau_rtol", "rminus1"])
    walkers = section.take("walkers", optional(positive_int), default=None)
    if walkers is not None and walkers % 2:
        raise section.error("walkers", f"must be even (emcee moves half of the ensemble at a time), got {walkers}")
    settings = SamplerSettings(
        walkers=walkers,
        seed=section.take("seed", nonnegative_int, default=1),
        chains=section.take("chains", positive_int, default=4),
        max_steps=section.take("max_steps", positive_int, default=20000),
        check_every=section.take("check_every", positive_int, default=200),
        convergence=convergence,
        parallel=section.take("parallel", choice(*PARALLEL_MODES), default="auto"),
        moves=section.take("moves", choice(*MOVES), default="stretch"),
        restart=section.take("restart", boolean, default=False),
    )
    section.finish(allowed_hint=_SAMPLER_KEYS)
    if settings.check_every > settings.max_steps:
        raise section.error("check_every", f"must not exceed max_steps ({settings.max_steps}), "
                                           f"got {settings.check_every}")
    return settings


def parse(section: Section, info: dict) -> SampleSettings:
    from cosmopipe.likelihoods.base import LIKELIHOODS

    liks = section.sub("likelihoods")
    if not list(liks.keys()):
        raise liks.error(None, f"name at least one likelihood; known: {', '.join(sorted(LIKELIHOODS))}")
    likelihoods = []
    for name in liks.keys():
        if name not in LIKELIHOODS:
            raise liks.error(str(name), f"unknown likelihood; known: {', '.join(sorted(LIKELIHOODS))}")
        raw = liks.sub(name).data          # checked when the likelihood is built (it may need earlier stages)
        likelihoods.append((name, json.loads(json.dumps(raw))))
    theory = parse_theory(section.sub("theory", default={}))
    params_sec = section.sub("params", default={})
    params = tuple(_parse_param(params_sec, name) for name in list(params_sec.keys()))
    sampler = _parse_sampler(section.sub("sampler", default={}))
    out = section.take("out", inside_path, default="chains")
    allow = section.take("allow_unvalidated_emulator", boolean, default=False)
    section.finish(allowed_hint=_SECTION_KEYS)
    keep = {k: info.get(k) for k in ("data_dir", "run_dir", "workflow_dir", "name", "source")}
    return SampleSettings(likelihoods=tuple(likelihoods), theory=theory, params=params, sampler=sampler, out=out,
                          source=section.source, name=str(info.get("name") or "chain"), info=keep,
                          allow_unvalidated=allow)


def guard_emulators(settings: SampleSettings, posterior: Posterior, log) -> list[str]:
    """The emulator guards (module emulator_guard); the warnings of waived refusals."""
    refs = emulator_refs(settings.likelihoods, settings.theory.provider, settings.theory.settings)
    priors = {p.name: (p.prior.lower, p.prior.upper) for p in posterior.sampled}
    try:
        return check_emulators(refs, priors, settings.allow_unvalidated, log)
    except GuardRefusal as exc:
        raise ConfigError(settings.source, "sample", str(exc)) from None


# -- building the posterior -----------------------------------------------------------
def _build_likelihoods(settings: SampleSettings, run_dir: Path) -> list:
    from cosmopipe.likelihoods.base import LikelihoodError, likelihood_factory

    info = dict(settings.info, run_dir=run_dir)
    out = []
    for name, raw in settings.likelihoods:
        key = f"sample.likelihoods.{name}"
        try:
            factory = likelihood_factory(name)
        except ModuleNotFoundError as exc:
            raise ConfigError(settings.source, key, f"the module of this likelihood is not available ({exc})") from None
        section = Section(json.loads(json.dumps(raw)), key, settings.source)
        try:
            lik = factory(section, info)
        except LikelihoodError as exc:
            raise ConfigError(settings.source, key, str(exc)) from None
        section.finish()
        out.append(lik)
    return out


def _reads(lik) -> tuple[str, ...]:
    """Non-nuisance parameters a likelihood reads."""
    from cosmopipe.sims.cosmology import Cosmology

    declared = getattr(lik, "input_params", None)
    if declared is not None:
        return tuple(declared)
    return () if lik.requirements() else Cosmology.names()


def build_posterior(settings: SampleSettings, likelihoods: list, log) -> Posterior:
    """The Posterior of built likelihoods and the parsed parameters; usage errors name key paths."""
    source = settings.source
    requirements = [lik.requirements() or {} for lik in likelihoods]
    needy = [lik.name for lik, req in zip(likelihoods, requirements) if req]
    if needy and settings.theory.provider == "none":
        wanted = sorted({k for req in requirements for k in req})
        raise ConfigError(source, "sample.theory.provider",
                          f"likelihood(s) {', '.join(needy)} need a theory provider ({', '.join(wanted)}); "
                          "set provider: camb")
    derived_names = [e.name for e in settings.params if e.kind == "derived"]
    theory = make_theory(settings.theory, {"requirements": requirements, "derived": derived_names, "source": source,
                                          "names": [lik.name for lik in likelihoods]})
    defaults: dict[str, tuple[str, dict]] = {}
    used: dict[str, list[str]] = {}
    for lik in likelihoods:
        for pname, spec in (lik.parameters() or {}).items():
            defaults.setdefault(pname, (lik.name, spec))
            used.setdefault(pname, []).append(lik.name)
        for pname in _reads(lik):
            used.setdefault(pname, []).append(lik.name)
    for pname in theory.params():
        used.setdefault(pname, []).append(f"theory {settings.theory.provider}")

    sampled, fixed, derived = [], {}, []
    listed = set()
    for entry in settings.params:
        key = f"sample.params.{entry.name}"
        listed.add(entry.name)
        if entry.kind == "derived":
            derived.append(DerivedParam(entry.name, entry.latex))
            continue
        if entry.name not in used:
            raise ConfigError(source, key, f"no likelihood or theory uses parameter {entry.name!r}; "
                                           f"parameters in use: {', '.join(sorted(used)) or 'none'}")
        if entry.kind == "fixed":
            fixed[entry.name] = entry.value
            continue
        prior, ref, proposal, latex = entry.prior, entry.ref, entry.proposal, entry.latex
        if entry.name in defaults:
            # What the workflow leaves out comes from the likelihood's default.
            lname, spec = defaults[entry.name]
            default_prior, extras = prior_from_default(spec, f"likelihood {lname}, parameter {entry.name}")
            if prior is None:
                prior = default_prior
                log.info("parameter %s: default prior of likelihood %s: %s", entry.name, lname, prior.describe())
            latex = latex or extras.get("latex", "")
            proposal = proposal if proposal is not None else extras.get("proposal")
            if ref is None and extras.get("ref") is not None and prior.lower <= extras["ref"] <= prior.upper:
                ref = extras["ref"]
        elif prior is None:
            raise ConfigError(source, f"{key}.prior", "is required (no likelihood gives a default prior for "
                                                      f"{entry.name})")
        sampled.append(_sampled(entry.name, prior, ref, proposal, latex, source, key))
    for pname, (lname, spec) in defaults.items():
        if pname in listed:
            continue
        prior, extras = prior_from_default(spec, f"likelihood {lname}, parameter {pname}")
        log.info("parameter %s: not in sample.params, sampled with the default prior of likelihood %s: %s",
                 pname, lname, prior.describe())
        sampled.append(_sampled(pname, prior, extras.get("ref"), extras.get("proposal"), extras.get("latex", ""),
                                f"likelihood {lname}", pname))
    if not sampled:
        raise ConfigError(source, "sample.params", "no parameter is sampled; give at least one a prior")
    unset = sorted(n for n in used if n not in fixed and n not in {p.name for p in sampled} and n not in defaults)
    if unset:
        log.info("parameters the theory / likelihoods can read but neither sampled nor fixed (their defaults or "
                 "alternatives apply): %s", ", ".join(unset))
    return Posterior(sampled, fixed, derived, likelihoods, theory)


def _sampled(name, prior: Prior, ref, proposal, latex, source, key) -> SampledParam:
    ref = prior.centre() if ref is None else float(ref)
    if not prior.lower <= ref <= prior.upper:
        raise ConfigError(source, f"{key}.ref" if key.startswith("sample.") else key,
                          f"{ref:g} is outside the prior {prior.describe()}")
    proposal = _DEFAULT_PROPOSAL_FRACTION * prior.width() if proposal is None else float(proposal)
    return SampledParam(name, prior, ref, proposal, latex)


def _fingerprint(settings: SampleSettings, posterior: Posterior) -> dict:
    return {
        "likelihoods": json.dumps(settings.likelihoods, sort_keys=True),
        "theory": repr(settings.theory),
        "priors": json.dumps(posterior.priors.describe(), sort_keys=True),
        "fixed": json.dumps(posterior.fixed, sort_keys=True),
    }


def _fiducial(settings: SampleSettings, likelihoods: list) -> dict[str, float]:
    """Fiducial parameter values of the mock data, if the likelihoods say (for plots)."""
    out: dict[str, float] = {}
    for lik in likelihoods:
        values = getattr(lik, "fiducial", None)
        if isinstance(values, Mapping):
            out.update({k: float(v) for k, v in values.items() if isinstance(v, (int, float))})
    if not out:
        from cosmopipe.sims.cosmology import Cosmology

        for _, raw in settings.likelihoods:
            given = (raw.get("data") or {}).get("fiducial") if isinstance(raw.get("data"), Mapping) else None
            if isinstance(given, Mapping):
                numbers = {k: float(v) for k, v in given.items() if isinstance(v, (int, float))}
                cosmo = {k: v for k, v in numbers.items() if k in Cosmology.names()}
                try:
                    # Cosmology parameters the mock does not name take the reference values.
                    out.update(Cosmology.from_dict(cosmo).to_dict())
                except ValueError:
                    pass
                out.update(numbers)
    return out


# -- running --------------------------------------------------------------------------
def _out_dir(settings: SampleSettings, ctx) -> Path:
    return ctx.resolve(settings.out)


def run(settings: SampleSettings, ctx) -> None:
    log = ctx.log
    out_dir = _out_dir(settings, ctx)
    likelihoods = _build_likelihoods(settings, Path(ctx.run_dir))
    posterior = build_posterior(settings, likelihoods, log)
    warnings = guard_emulators(settings, posterior, log)
    log.info("sampling %d parameters (%s) with %s; %d fixed; derived: %s", posterior.ndim,
             ", ".join(posterior.names), ", ".join(lik.name for lik in likelihoods), len(posterior.fixed),
             ", ".join(d.name for d in posterior.derived) or "none")
    log.info("chains in %s (%d x %d walkers, budget %d steps each)", out_dir, settings.sampler.chains,
             settings.sampler.nwalkers(posterior.ndim), settings.sampler.max_steps)
    try:
        result = run_chains(posterior, settings.sampler, out_dir, fingerprint=_fingerprint(settings, posterior),
                            resume=ctx.resume, progress=ctx.progress, client=ctx.client, log_=log)
        write_outputs(settings, posterior, result, out_dir, _fiducial(settings, likelihoods), log, warnings)
    except SamplingError as exc:
        raise ConfigError(settings.source, "sample", str(exc)) from None


def write_outputs(settings: SampleSettings, posterior: Posterior, result: ChainRun, out_dir: Path,
                  fiducial: Mapping[str, float], log, warnings: tuple | list = ()) -> dict:
    """GetDist chains and the JSON/Markdown summary; returns the summary.  ``warnings``
    (waived guards) go into both; an unconverged run is logged as a warning."""
    report = result.report
    tau = np.array(report.tau)
    discard = report.burn
    thin = max(1, int(0.5 * np.min(tau))) if np.all(np.isfinite(tau)) else 1
    root = out_dir / settings.name
    files = write_getdist(root, posterior, result.chain_files, discard, thin)
    samples = np.concatenate([read_chain(p, discard, thin)[0] for p in result.chain_files])
    conv = settings.sampler.convergence
    summary = {
        "status": result.status,
        "stopped_because": ("all convergence tests passed" if result.status == "converged"
                            else f"budget of {settings.sampler.max_steps} steps per chain used up"),
        "steps_per_chain": report.steps,
        "chains": len(result.chain_files),
        "walkers": result.nwalkers,
        "steps_this_run": result.steps_this_run,
        "resumed_from": list(result.resumed_from),
        "wall_s": round(result.wall_s, 3),
        "parallel": result.parallel,
        "parallel_reason": result.parallel_reason,
        "eval_cost_ms": None if result.eval_cost_s is None else result.eval_cost_s * 1e3,
        "tests": {
            "tau_long_enough": report.tau_ok, "tau_factor": conv.tau_factor,
            "tau_stable": report.tau_stable, "tau_change": report.tau_change, "tau_rtol": conv.tau_rtol,
            "rminus1": report.rminus1, "rminus1_ok": report.rminus1_ok, "rminus1_limit": conv.rminus1,
            "gelman_rubin": "skipped (one chain)" if report.rminus1 is None else "done",
        },
        "tau": dict(zip(posterior.names, report.tau)),
        "rminus1_params": None if report.rminus1_params is None else dict(zip(posterior.names, report.rminus1_params)),
        "acceptance": list(result.acceptance),
        "burn_in_steps": discard,
        "thin": thin,
        "samples": int(samples.shape[0]),
        "getdist_root": str(root),
        "files": [str(p) for p in files],
        "params": {n: {"mean": float(m), "std": float(s)}
                   for n, m, s in zip(posterior.names, samples.mean(axis=0), samples.std(axis=0, ddof=1))},
        "fiducial": dict(fiducial),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "workflow": settings.info.get("name") or settings.name,
        # What the likelihoods announce as their own parameters: hidden by `cosmopipe plot` without --all.
        "nuisance": [p.name for p in posterior.sampled
                     if any(p.name in (lik.parameters() or {}) for lik in posterior.likelihoods)],
        "warnings": list(warnings),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    (out_dir / "summary.md").write_text(_summary_markdown(summary))
    log.info("GetDist chains: %s_*.txt (%d samples after %d burn-in steps, thinned by %d); summary in %s",
             root, summary["samples"], discard, thin, out_dir / "summary.md")
    if result.status != "converged":
        log.warning("%s", not_converged_line(summary))
    return summary



def _summary_markdown(s: dict) -> str:
    t = s["tests"]
    gr = "skipped (one chain)" if t["rminus1"] is None else f"{t['rminus1']:.4g} (limit {t['rminus1_limit']:g})"
    lines = [
        f"# Sampling summary: {s['status']}",
        "",
        *([f"**{not_converged_line(s)}**: do not quote these constraints.", ""] if s["status"] != "converged" else []),
        *[f"**WARNING: {w}**" for w in s.get("warnings") or []],
        *([""] if s.get("warnings") else []),
        f"Stopped because: {s['stopped_because']}.",
        "",
        f"- steps per chain: {s['steps_per_chain']} ({s['chains']} chains x {s['walkers']} walkers); "
        f"{s['steps_this_run']} steps in this run, {s['wall_s']:.1f} s",
        f"- parallel: {s['parallel']} ({s['parallel_reason']})",
        f"- chain length >= {t['tau_factor']:g} tau: {'yes' if t['tau_long_enough'] else 'no'}",
        f"- tau stable to {t['tau_rtol']:.3g}: {'yes' if t['tau_stable'] else 'no'} (change {t['tau_change']:.3g})",
        f"- Gelman-Rubin R-1: {gr}",
        f"- burn-in {s['burn_in_steps']} steps, thinned by {s['thin']}: {s['samples']} samples",
        "",
        "| parameter | tau [steps] | R-1 | mean | std |",
        "|---|---|---|---|---|",
    ]
    for name, stats in s["params"].items():
        r = "" if s["rminus1_params"] is None else f"{s['rminus1_params'][name]:.3g}"
        lines.append(f"| {name} | {s['tau'][name]:.3g} | {r} | {stats['mean']:.6g} | {stats['std']:.4g} |")
    return "\n".join(lines) + "\n"


def plan(settings: SampleSettings, ctx) -> str:
    s = settings.sampler
    lines = [f"likelihoods: {', '.join(name for name, _ in settings.likelihoods)}",
             f"theory provider: {settings.theory.provider}"]
    for p in settings.params:
        if p.kind == "fixed":
            lines.append(f"  {p.name} = {p.value:g} (fixed)")
        elif p.kind == "derived":
            lines.append(f"  {p.name} (derived)")
        else:
            prior = p.prior.describe() if p.prior is not None else "the likelihood's default prior"
            lines.append(f"  {p.name}: {prior}")
    lines.append("  (+ likelihood nuisance parameters not listed, with their default priors)")
    walkers = s.walkers if s.walkers is not None else "2 x (sampled parameters) + 2"
    lines.append(f"sampler: emcee, {s.chains} chain(s) x {walkers} walkers, seed {s.seed}, at most {s.max_steps} "
                 f"steps per chain, checks every {s.check_every}")
    c = s.convergence
    lines.append(f"convergence: length >= {c.tau_factor:g} tau, tau stable to {c.tau_rtol:g}, R-1 < {c.rminus1:g}")
    lines.append(f"parallel: {s.parallel}")
    out_dir = _out_dir(settings, ctx)
    existing = sorted(out_dir.glob("chain_*.h5")) if out_dir.is_dir() else []
    if existing:
        action = ("continued (--resume)" if ctx.resume else "deleted (restart: true)" if s.restart
                  else "refused: run with --resume or set restart: true")
        lines.append(f"existing chains: {len(existing)} in {out_dir}, {action}")
    lines.append(f"output: {out_dir} (HDF5 chains, GetDist {settings.name}_*.txt, summary.md)")
    return "\n".join(lines)


# -- emulator_bias -----------------------------------------------------------------------
# Section (likelihoods.shear.bias for the definitions)::
#
#   emulator_bias:
#     emulator: emulators/hybrid.h5     # the emulator under test (power source 'emulator')
#     reference: ee2                    # power of the reference vectors: ee2 | hmcode
#     test: datasets/test.h5            # consolidated dataset: its cosmologies inside EE2's box
#     max_cosmologies: null
#     scale_cuts: [3000, 1500, 750, 375, 187.5]
#     shear: {survey: {}, theta: {}, data: {fiducial: {}}, covariance: {}}   # as lsst_y1_shear
#     shifts:
#       method: fisher                  # fisher | chains | none
#       steps: {Omega_m: 0.005, ...}    # central-difference steps (fisher); default: all 18 parameters
#       chains: {emulator: DIR, reference: DIR}   # sample-stage chain directories (chains)
#     out: emulator_bias                # under the run directory
#     docs: null                        # optional directory to copy the plot and table to
#
# Relative paths of emulator, test and chains are taken relative to the run directory.
_BIAS_KEYS = ("emulator", "reference", "test", "max_cosmologies", "scale_cuts", "shear", "shifts", "out", "docs")
_SHEAR_KEYS = ("survey", "theta", "data", "covariance")
_DEFAULT_STEPS = {"Omega_m": 0.005, "Omega_b": 0.001, "h": 0.01, "A_s": 0.05e-9, "n_s": 0.01, "w0": 0.03,
                  "A_IA": 0.1, "eta_IA": 0.2}


@dataclass(frozen=True)
class BiasSettings:
    emulator: str
    reference: str
    test: str
    max_cosmologies: int | None
    scale_cuts: tuple
    shear: dict = field(hash=False, compare=False)
    method: str = "fisher"
    steps: tuple = ()
    chains: tuple = ()
    max_samples: int = 4000
    shift_cut: float | None = 3000.0
    out: str = "emulator_bias"
    docs: str | None = None
    source: str = ""
    info: dict = field(default_factory=dict, hash=False, compare=False)


def parse_bias(section: Section, info: dict) -> BiasSettings:
    from cosmopipe.likelihoods.shear.limber import nuisance_names
    from cosmopipe.likelihoods.shear.scalecuts import parse_scale_cut

    emulator = section.take("emulator", string)
    reference = section.take("reference", choice("ee2", "hmcode"), default="ee2")
    test = section.take("test", string)
    max_cosmo = section.take("max_cosmologies", optional(positive_int), default=None)
    raw_cuts = section.data.get("scale_cuts", [3000, 1500, 750, 375, 187.5])
    section.take("scale_cuts", lambda v: v, default=None)
    if not isinstance(raw_cuts, list) or not raw_cuts:
        raise section.error("scale_cuts", "must be a non-empty list of l_max values (or none)")
    cuts = []
    for i, value in enumerate(raw_cuts):
        try:
            cuts.append(parse_scale_cut(value))
        except ValueError as exc:
            raise section.error(f"scale_cuts[{i}]", str(exc)) from None
    shear = section.sub("shear", default={})
    for key in shear.keys():
        if key not in _SHEAR_KEYS:
            raise shear.error(str(key), f"unknown key; allowed keys here: {', '.join(_SHEAR_KEYS)} "
                                        "(power and scale_cut are set by the bias stage)")
    shifts = section.sub("shifts", default={})
    method = shifts.take("method", choice("fisher", "chains", "importance", "none"), default="fisher")
    max_samples = shifts.take("max_samples", positive_int, default=4000)
    shift_cut = shifts.take("scale_cut", lambda v: v, default=3000)
    try:
        shift_cut = parse_scale_cut(shift_cut)
    except ValueError as exc:
        raise shifts.error("scale_cut", str(exc)) from None
    ssec = shifts.sub("steps", default={})
    nbins = ((shear.data.get("survey") or {}).get("nbins") or 5)
    allowed = list(_cosmology_names()) + nuisance_names(int(nbins))
    steps = {}
    for key in list(ssec.keys()):
        if key not in allowed:
            raise ssec.error(str(key), f"unknown parameter; allowed: {', '.join(allowed)}")
        steps[key] = ssec.take(key, positive_number)
    ssec.finish()
    if not steps:
        steps = {**_DEFAULT_STEPS, **{n: (0.002 if n.startswith("dz") else 0.005) for n in nuisance_names(int(nbins))
                                      if n.startswith(("dz_", "m_"))}}
    csec = shifts.sub("chains", default={})
    chains = {k: csec.take(k, optional(string), default=None) for k in ("emulator", "reference")}
    csec.finish()
    if method == "chains" and None in chains.values():
        raise csec.error(None, "method 'chains' needs both emulator and reference chain directories")
    if method == "importance" and chains["emulator"] is None:
        raise csec.error(None, "method 'importance' needs the emulator chain directory (chains.emulator)")
    shifts.finish(allowed_hint=["method", "steps", "chains", "max_samples", "scale_cut"])
    out = section.take("out", inside_path, default="emulator_bias")
    docs = section.take("docs", optional(string), default=None)
    section.finish(allowed_hint=_BIAS_KEYS)
    keep = {k: info.get(k) for k in ("data_dir", "run_dir", "workflow_dir", "name", "source")}
    return BiasSettings(emulator=emulator, reference=reference, test=test, max_cosmologies=max_cosmo,
                        scale_cuts=tuple(cuts), shear=json.loads(json.dumps(shear.data)), method=method,
                        steps=tuple(steps.items()), chains=tuple(chains.items()), max_samples=max_samples,
                        shift_cut=shift_cut, out=out, docs=docs,
                        source=section.source, info=keep)


def _cosmology_names():
    from cosmopipe.sims.cosmology import Cosmology

    return Cosmology.names()


def _run_path(ctx, value: str) -> Path:
    return ctx.resolve(value)


def plan_bias(settings: BiasSettings, ctx) -> str:
    cuts = ", ".join("none" if c is None else f"{c:g}" for c in settings.scale_cuts)
    lines = [f"emulator under test: {_run_path(ctx, settings.emulator)}",
             f"reference power: {settings.reference} (one CAMB run per test cosmology, ~3-5 s each)",
             f"test cosmologies: {_run_path(ctx, settings.test)} (inside the EE2 box"
             + (f", at most {settings.max_cosmologies})" if settings.max_cosmologies else ")"),
             f"scale cuts (l_max): {cuts}",
             f"parameter shifts: {settings.method}"
             + (f" ({len(settings.steps)} parameters, {2 * len(settings.steps)} emulator evaluations)"
                if settings.method == "fisher" else "")
             + (f" (up to {settings.max_samples} samples of {_run_path(ctx, dict(settings.chains)['emulator'])} "
                f"reweighted to EE2, ~16 ms each)" if settings.method == "importance" else ""),
             f"output: {_run_path(ctx, settings.out)} (delta_chi2.h5, delta_chi2.png, emulator_bias.md, shifts.json)"]
    if settings.docs:
        lines.append(f"copies of the plot and table: {settings.docs}")
    return "\n".join(lines)


def run_bias(settings: BiasSettings, ctx) -> None:
    import shutil


    from cosmopipe.likelihoods.base import LikelihoodError
    from cosmopipe.likelihoods.shear import bias
    from cosmopipe.likelihoods.shear.likelihood import default_priors, from_config
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.theory.matter_power import power_source

    log = ctx.log
    out_dir = _run_path(ctx, settings.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    emu_path, test_path = _run_path(ctx, settings.emulator).resolve(), _run_path(ctx, settings.test).resolve()
    for key, path in (("emulator", emu_path), ("test", test_path)):
        if not path.is_file():
            raise ConfigError(settings.source, f"emulator_bias.{key}", f"file {path} not found")
    info = dict(settings.info, run_dir=out_dir)
    raw = {**settings.shear, "power": {"source": settings.reference}, "scale_cut": "none"}
    raw.setdefault("data", {})
    raw["data"] = {**raw["data"], "power": {"source": settings.reference}}
    t0 = time.perf_counter()
    try:
        ref = from_config(Section(raw, "emulator_bias.shear", settings.source), info)
        conv = ref.model.conventions
        emu_model = shear_model(ref.model.survey, power_source("emulator", str(emu_path), conventions=conv),
                                ref.model.theta_edges, fiducial=ref.model.fiducial, conventions=conv)
    except LikelihoodError as exc:
        raise ConfigError(settings.source, "emulator_bias", str(exc)) from None
    log.info("reference mock and Gaussian covariance (%s) in %.1f s", settings.reference, time.perf_counter() - t0)
    cuts = bias.scale_cuts(ref.model.theta_edges, len(ref.model.survey.pairs), settings.scale_cuts)
    ids, cosmos, dropped = bias.read_test_cosmologies(test_path, limit=settings.max_cosmologies)
    if dropped:
        log.info("%d test cosmologies outside the EE2 box left out: %s", len(dropped), ", ".join(dropped))
    if not cosmos:
        raise ConfigError(settings.source, "emulator_bias.test", f"no cosmology of {test_path} lies in the EE2 box")
    fid_nuis = {k: v for k, v in ref.model.fiducial.items() if k not in _cosmology_names()}

    def vec(model):
        return lambda p: model.data_vector({**fid_nuis, **p}, strict=False)

    cache = out_dir / "reference_vectors.npz"
    fingerprint = json.dumps({"ids": ids, "reference": settings.reference, "shear": settings.shear}, sort_keys=True)
    d_ref, reused = None, False
    if ctx.resume and cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            if str(f["fingerprint"]) == fingerprint:
                d_ref, reused = f["d_ref"], True
                log.info("reference vectors of %d cosmologies reused from %s", len(ids), cache)
    t0 = time.perf_counter()
    if d_ref is None:
        d_ref = bias.data_vectors(vec(ref.model), cosmos)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, d_ref=d_ref, fingerprint=np.array(fingerprint))
        tmp.replace(cache)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    d_emu = bias.data_vectors(vec(emu_model), cosmos)
    t_emu = time.perf_counter() - t0
    log.info("data vectors of %d test cosmologies: reference %.1f s, emulator %.1f s", len(ids), t_ref, t_emu)
    dchi2 = bias.delta_chi2(d_emu, d_ref, ref.cov, [c.mask for c in cuts])

    shifts, shift_note = [], ""
    names = _cosmology_names()
    if settings.method == "fisher":
        fid = dict(ref.model.fiducial)
        d_emu_fid = emu_model.data_vector(fid)
        priors = {n: spec["sigma"] for n, spec in default_priors(ref.model.nbins).items()
                  if spec.get("prior") == "gaussian"}
        try:
            shifts = bias.fisher_shifts(lambda p: emu_model.data_vector(p), fid, dict(settings.steps),
                                        d_emu_fid - ref.data, ref.cov, cuts, prior_sigma=priors)
        except (LikelihoodError, ValueError) as exc:
            raise ConfigError(settings.source, "emulator_bias.shifts", str(exc)) from None
        shift_note = ("Gaussian (Fisher) approximation at the fiducial, noiseless reference mock: "
                      "shift = F^-1 J^T C^-1 (d_emu - d_ref) / sigma, Gaussian nuisance priors included")
    elif settings.method == "chains":
        chains = dict(settings.chains)
        posterior = bias.posterior_shifts(_run_path(ctx, chains["emulator"]), _run_path(ctx, chains["reference"]))
        shifts = [bias.FisherShift("chains", tuple(posterior), np.array(list(posterior.values())),
                                   np.ones(len(posterior)))]
        shift_note = "from chains: (mean_emu - mean_ref) / std_ref"
    elif settings.method == "importance":
        shifts, shift_note = _importance(settings, ctx, ref, emu_path, info, log)

    with _atomic_h5(out_dir / "delta_chi2.h5") as f:
        f.attrs["emulator"] = str(emu_path)
        f.attrs["reference"] = settings.reference
        f.attrs["cuts"] = json.dumps([c.name for c in cuts])
        f.create_dataset("delta_chi2", data=dchi2)
        f.create_dataset("lmax", data=np.array([np.nan if c.lmax is None else c.lmax for c in cuts]))
        f.create_dataset("n_points", data=np.array([c.n_points for c in cuts]))
        f.create_dataset("params", data=np.array([[c.to_dict()[n] for n in names] for c in cosmos]))
        f.attrs["param_names"] = json.dumps(list(names))
        f.attrs["sim_ids"] = json.dumps(ids)
        f.create_dataset("d_emu", data=d_emu)
        f.create_dataset("d_ref", data=d_ref)
    shown = [n for n in names if n in dict(settings.steps)] + [n for n in ("A_IA", "eta_IA") if n in dict(settings.steps)]
    (out_dir / "shifts.json").write_text(json.dumps(
        {"method": settings.method, "note": shift_note,
         "cuts": [{"cut": s.cut, "shift": dict(zip(s.names, s.shift.tolist())),
                   "sigma": dict(zip(s.names, s.sigma.tolist())), "in_sigma": dict(zip(s.names, s.in_sigma.tolist()))}
                  for s in shifts]}, indent=1))
    png = bias.plot_delta_chi2(cuts, dchi2, out_dir / "delta_chi2.png",
                               title=f"{Path(emu_path).name} vs {settings.reference}, {len(ids)} test cosmologies")
    md = [f"# Emulator bias: {emu_path.name} vs {settings.reference}", "",
          f"{len(ids)} test cosmologies of `{test_path}` inside the EE2 box"
          + (f" ({len(dropped)} outside left out)" if dropped else "") + "; Gaussian covariance of LSST-Y1 at the "
          "fiducial; Delta chi^2 = (d_emu - d_ref)^T C^-1 (d_emu - d_ref).", "", bias.chi2_table(cuts, dchi2)]
    if shifts:
        md += ["## Parameter shifts in units of sigma", "", shift_note + ".", "",
               bias.shift_table(shifts, show=shown if settings.method == "fisher" else None)]
    ref_time = "reused from an earlier run (--resume)" if reused else f"{t_ref:.1f} s"
    md += [f"Wall time for {len(ids)} data vectors: reference ({settings.reference}) {ref_time}, emulator "
           f"{t_emu:.1f} s.", ""]
    table = out_dir / "emulator_bias.md"
    table.write_text("\n".join(md))
    log.info("emulator bias: %s, %s", table, png)
    for cut, row in zip(cuts, dchi2):
        log.info("  %s: median Delta chi2 %.3g, 95th pct %.3g, max %.3g", cut.name, np.median(row),
                 np.percentile(row, 95), row.max())
    if settings.docs:
        docs = Path(settings.docs)
        docs.mkdir(parents=True, exist_ok=True)
        for path in (png, table):
            shutil.copy2(path, docs / f"{settings.info.get('name') or 'emulator_bias'}_{path.name}")


def _importance(settings: BiasSettings, ctx, ref, emu_path: Path, info: dict, log):
    """Shifts from the emulator chain reweighted to EE2 (bias.importance_shifts): the
    reference is EE2 x the emulator's own linear-power emulator, so that only the
    nonlinear boost differs, on the mock data and covariance of ``ref``."""
    from cosmopipe.likelihoods.base import LikelihoodError
    from cosmopipe.likelihoods.shear import bias
    from cosmopipe.likelihoods.shear.likelihood import ShearLikelihood
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.theory.matter_power import power_source
    from cosmopipe.likelihoods.shear.scalecuts import scale_cut_mask

    chain_dir = _run_path(ctx, dict(settings.chains)["emulator"])
    try:
        names, samples = bias.read_chain_samples(chain_dir, settings.max_samples)
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
    from tqdm import tqdm

    for i, row in enumerate(tqdm(samples, desc="importance weights", disable=not ctx.progress)):
        params = {**fid, **dict(zip(names, map(float, row)))}
        for label, lik in liks.items():
            lnl[label][i] = lik.loglike(None, params)
    shift, ess = bias.importance_shifts(samples, lnl["emu"], lnl["ref"], names)
    cut = "none" if settings.shift_cut is None else f"lmax{settings.shift_cut:g}"
    log.info("importance sampling: %d samples of %s reweighted to EE2 in %.1f s; effective sample size %.0f",
             len(samples), chain_dir, time.perf_counter() - t0, ess)
    shifts = [bias.FisherShift(cut, tuple(shift), np.array(list(shift.values())), np.ones(len(shift)))]
    note = (f"importance sampling: {len(samples)} samples of the emulator chain ({chain_dir}) reweighted by "
            f"L_EE2 / L_emu, EE2 with the emulator's linear-power emulator; effective sample size {ess:.0f}; "
            "shift = (mean_emu - mean_EE2) / std_EE2")
    return shifts, note


def _atomic_h5(path: Path):
    from cosmopipe.sims.io import atomic_hdf5

    return atomic_hdf5(path)


STAGES = [Stage("sample", parse, run, plan, help="MCMC sampling of the posterior with emcee"),
          Stage("emulator_bias", parse_bias, run_bias, plan_bias,
                help="Delta chi^2 and parameter shifts of an emulator against EE2 (LSST-Y1 shear)")]
