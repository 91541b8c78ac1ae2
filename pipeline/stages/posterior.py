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

from cosmopipe.likelihoods.base import LIKELIHOODS, LikelihoodError, likelihood_factory
from cosmopipe.likelihoods.priors import Prior, parse_prior, prior_from_default
from cosmopipe.likelihoods.sampling import (MOVES, PARALLEL_MODES, ChainRun, Convergence, DerivedParam, Posterior, SampledParam,
                       SamplerSettings, SamplingError, read_chain, run_chains, write_getdist)
from cosmopipe.likelihoods.theory import TheorySpec, make_theory, parse_theory
from cosmopipe.sims.cosmology import Cosmology

from .emulator_guard import GuardRefusal, check_emulators, emulator_refs
from .sample_support import not_converged_line

__all__ = ["STAGES", "SampleSettings", "ParamEntry", "parse", "run", "plan", "build_posterior"]

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
def _build_likelihoods(settings: SampleSettings, run_dir: Path, dry_run: bool = False) -> list:
    """The likelihoods of the sample section; ``dry_run``: checked, not computed where that
    costs minutes (the non-Gaussian shear covariance)."""
    info = dict(settings.info, run_dir=run_dir, dry_run=dry_run)
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


STAGES = [Stage("sample", parse, run, plan, help="MCMC sampling of the posterior with emcee")]
