"""The ``observables`` stage: build the EDE observables emulator on the project's cluster,
and the checks of it that need the likelihoods (Delta chi^2, CAMB at posterior samples).

Workflow section (every key optional)::

    observables:
      out: observables.h5           # emulator file, in the run directory
      campaign: campaign            # chunk directory (resumable: finished chunks are kept)
      n: 1200                       # C_ell points (~6 s of CPU each)
      n_test: 50                    # held-out points for the Delta chi^2 report
      n_background: 4000            # background-only points (~0.2 s each)
      chunk: 20
      seed: 1
      n_optimise: 500               # GP hyperparameters fitted on this many points
      coordinates: default | parameters    # ln(pi - theta_i) or the parameters themselves
      from_chains: null             # chain directory: also n_posterior points around its posterior
      n_posterior: 400

CAMB runs are Dask tasks on the workflow's cluster (``cluster:``), one task per point.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cosmopipe.likelihoods import bao, planck, planck_lensing, sn
from cosmopipe.likelihoods.sampling import read_chain_samples
from cosmopipe.likelihoods.shear.bias import importance_shifts
from cosmopipe.likelihoods.theory.contract import TheoryError
from cosmopipe.likelihoods.theory.observables import (DEFAULT_BOX, camb_at, campaign_jobs, delta_chi2,
                                                      delta_chi2_at_peak, likelihood_requirements, load_campaign,
                                                      load_observables, load_table, merge_tables,
                                                      posterior_design, run_campaign, save_observables, save_table,
                                                      train_observables, validation_plot)
from cosmopipe.likelihoods.theory.observables.check import abs_percentiles, worst_samples
from cosmopipe.schema import Section, choice, inside_path, nonnegative_int, optional, positive_int, string

from ..workflow import Stage

__all__ = ["STAGES", "ObservablesSettings", "planck_bao_sn_likelihoods", "recentred", "check_chain",
           "posterior_design_from_chains", "build_campaign", "train_and_test"]


# -- the likelihoods the emulator serves ------------------------------------------------
def planck_bao_sn_likelihoods(data_dir=None) -> dict[str, Any]:
    """The six likelihoods the emulator serves, by name (data from data_dir or $COSMOPIPE_DATA)."""
    likes = [planck.plik_lite(data_dir), planck.lowl_tt(data_dir), planck.lowl_ee(data_dir),
             planck_lensing.planck_lensing(data_dir), bao.bao_likelihood(data_dir=data_dir), sn.pantheon(data_dir)]
    return {like.name: like for like in likes}


def recentred(like, truth, nuisance):
    """A copy of a Gaussian band-power likelihood whose data are the model of ``truth``
    (None for a likelihood that is not of that kind): for delta_chi2_at_peak."""
    if isinstance(like, planck.PlikLite):
        data = like.binned_model(truth, 1.0)
    elif isinstance(like, planck_lensing.PlanckLensing):
        data = like.binned_model(truth, nuisance)
    elif isinstance(like, planck.LowlTT):
        data = like.binning @ planck.theory_cls(truth, ("tt",), like.lmax, like.name)["tt"]
    else:
        return None
    return dataclasses.replace(like, data=np.asarray(data, float))


def posterior_design_from_chains(chain_dir, n: int, box=DEFAULT_BOX, seed: int = 0) -> list[dict[str, float]]:
    """:func:`~cosmopipe.likelihoods.theory.observables.design.posterior_design` around the
    samples of a converged sample-stage run in ``chain_dir``."""
    names, samples = read_chain_samples(chain_dir)
    return posterior_design(names, samples, n, box=box, seed=seed, origin=f"the chains in {chain_dir}")


# -- CAMB at posterior samples -------------------------------------------------------------
_LIKES: dict[str, Any] = {}


def _loglikes(theory, params: Mapping[str, float], data_dir) -> dict[str, float]:
    key = str(data_dir)
    if key not in _LIKES:
        _LIKES[key] = planck_bao_sn_likelihoods(data_dir)
    return {name: float(like.loglike(theory, params)) for name, like in _LIKES[key].items()}


def camb_loglikes(params: Mapping[str, float], camb: Mapping[str, Any], data_dir) -> dict[str, float] | str:
    """ln L per likelihood with CAMB's full theory at a point given with theta_star_100
    (H0 solved; ~4-6 s of CPU with EDE + 3 w bins).  A point CAMB refuses returns the message."""
    try:
        theory = camb_at(params, likelihood_requirements(), camb)
    except TheoryError as exc:
        return str(exc)
    return {**_loglikes(theory, params, data_dir), "H0": theory.H0}


def emulator_loglikes(emu, params: Mapping[str, float], data_dir) -> dict[str, float]:
    """ln L per likelihood with the fully emulated theory (and its H0)."""
    theory = emu.theory(params, likelihood_requirements(emu.lmax))
    return {**_loglikes(theory, params, data_dir), "H0": theory.H0, "S8": theory.S8}


def check_chain(chain_dir, emulator_path, n: int = 200, data_dir=None, client=None, progress=True) -> dict:
    """CAMB at ``n`` evenly spaced post-burn-in samples of the chains in ``chain_dir``: Delta
    chi^2 per likelihood there, and the shift of each posterior mean when the chain is
    reweighted by L_CAMB / L_emulator (importance sampling), in units of the reweighted
    standard deviation, with the effective sample size.  Returns the report (JSON-able)."""
    from tqdm.auto import tqdm  # progress bar only here

    emu = load_observables(emulator_path)
    names, samples = read_chain_samples(chain_dir, n)
    rows = [dict(zip(names, map(float, s))) for s in samples]
    t0 = time.perf_counter()
    emul = [emulator_loglikes(emu, r, data_dir) for r in rows]
    t_emu = (time.perf_counter() - t0) / len(rows)
    t0 = time.perf_counter()
    if client is not None:
        futures = client.map(camb_loglikes, rows, camb=emu.camb, data_dir=data_dir, pure=False)
        camb = [f.result() for f in tqdm(futures, desc="CAMB at posterior samples", disable=not progress)]
    else:
        camb = [camb_loglikes(r, emu.camb, data_dir) for r in tqdm(rows, desc="CAMB at posterior samples",
                                                                  disable=not progress)]
    t_camb = time.perf_counter() - t0
    good = [i for i, c in enumerate(camb) if isinstance(c, dict)]
    likes = [k for k in emul[0] if k not in ("H0", "S8")]
    dchi2 = {k: np.array([-2.0 * (emul[i][k] - camb[i][k]) for i in good]) for k in likes}
    dchi2["total"] = np.sum([dchi2[k] for k in likes], axis=0)
    lnl_emu = np.array([sum(emul[i][k] for k in likes) for i in good])
    lnl_camb = np.array([sum(camb[i][k] for k in likes) for i in good])
    extra = np.array([[emul[i]["H0"], emul[i]["S8"]] for i in good])
    shifts, ess = importance_shifts(np.column_stack([samples[good], extra]), lnl_emu, lnl_camb,
                                    list(names) + ["H0", "S8"])
    h0_err = np.array([emul[i]["H0"] / camb[i]["H0"] - 1 for i in good])
    return {"chains": str(chain_dir), "emulator": str(emulator_path), "samples": len(rows), "camb_ok": len(good),
            "camb_refused": [camb[i] for i in range(len(rows)) if not isinstance(camb[i], dict)],
            "delta_chi2": {k: abs_percentiles(v) for k, v in dchi2.items()},
            "delta_chi2_mean": {k: float(v.mean()) for k, v in dchi2.items()},
            "h0_relative_error": abs_percentiles(h0_err), "shifts_sigma": shifts, "effective_sample_size": ess,
            "seconds_per_point": {"emulator": t_emu, "camb_wall": t_camb / len(rows)},
            # Per sample, so the tail can be located in parameter space (worst first) and plotted.
            "worst": worst_samples(names, samples[good], dchi2),
            "delta_chi2_samples": {k: v.tolist() for k, v in dchi2.items()}}


def error_chi2(raw: Mapping[str, np.ndarray], peak: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per held-out point, the Delta chi^2 of the emulator's error summed over likelihoods
    where the data equal the CAMB model: the at-peak value for the Gaussian band-power
    likelihoods (plik-lite, low-ell TT, lensing), |Delta chi^2| for the others.  At a box
    point far from the data, chi^2(emulator) - chi^2(CAMB) is dominated by the term linear
    in the data residual, which a posterior never visits; this is what a posterior there sees."""
    return np.sum([np.abs(peak[k]) if k in peak else np.abs(raw[k]) for k in raw], axis=0)


def held_out_check(emu, test, likes: Mapping[str, Any], say=print) -> tuple[dict, dict]:
    """(the check recorded in the emulator file for the sample stage's guard, Delta chi^2 per
    likelihood at the held-out points: raw, '(at peak)' and 'total')."""
    raw = delta_chi2(emu, test, likes)
    peak = delta_chi2_at_peak(emu, test, likes, recentred)
    dchi2 = {**raw, "total": np.sum(list(raw.values()), axis=0),
             **{f"{k} (at peak)": v for k, v in peak.items()}, "total (data = CAMB model)": error_chi2(raw, peak)}
    for name, d in dchi2.items():
        a = np.abs(d)
        say(f"{name:36s} |Delta chi2| median {np.median(a):.3g}  p95 {np.percentile(a, 95):.3g}  max {a.max():.3g}")
    p95 = {k: float(np.percentile(np.abs(v), 95)) for k, v in dchi2.items()}
    check = {"p95_total": p95["total (data = CAMB model)"], "p95_total_raw": p95["total"], "points": len(test),
             "where": "held-out CAMB", "per_likelihood_p95": p95}
    return check, dchi2


# -- building ---------------------------------------------------------------------------
def build_campaign(out: Path, n: int, n_test: int, n_background: int, chunk: int, seed: int, client=None,
                   from_chains=None, n_posterior: int = 400, say=print) -> None:
    """Every missing chunk of a campaign under ``out`` (finished chunks are kept: resumable)."""
    out.mkdir(parents=True, exist_ok=True)
    post = posterior_design_from_chains(from_chains, n_posterior, seed=seed + 20) if from_chains else ()
    for name, points, bg_only in campaign_jobs(n, n_test, n_background, chunk, seed, post):
        if not (out / f"{name}.h5").exists():
            table = run_campaign(points, client=client, background_only=bg_only)
            save_table(table, out / f"{name}.h5")
            say(f"{name}: {len(table)} points, {len(table.failed)} refused, {table.seconds:.0f} s")


def train_and_test(campaign: Path, out: Path, tests=(), n_optimise: int = 500, parameter_coordinates: bool = False,
                   data_dir=None, client=None, say=print):
    """Train on a campaign directory, write the emulator, and report Delta chi^2 on ``tests``."""
    bg = sorted(Path(campaign).glob("bg_*.h5"))
    emu = train_observables(load_campaign(campaign), box=DEFAULT_BOX, client=client,
                            background_table=load_campaign(campaign, "bg_*.h5") if bg else None,
                            n_optimise=n_optimise, coordinates={} if parameter_coordinates else None)
    dchi2 = None
    if tests:
        test, likes = merge_tables([load_table(p) for p in tests]), planck_bao_sn_likelihoods(data_dir)
        emu.provenance["delta_chi2_check"], dchi2 = held_out_check(emu, test, likes, say)
    save_observables(emu, out)
    say(f"wrote {out}: {emu.provenance['n_campaign']} C_ell points, {emu.provenance['n_background']} "
        f"background points, {emu.provenance['train_seconds']:.0f} s")
    if dchi2 is not None:
        png = validation_plot({k: v for k, v in dchi2.items() if np.any(v)}, Path(out).with_suffix(".validation.png"),
                              title=f"{len(test)} held-out CAMB points; {emu.provenance['n_campaign']} C_ell + "
                                    f"{emu.provenance['n_background']} background training points")
        say(f"wrote {png}")
    return emu


# -- the stage --------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservablesSettings:
    out: str = "observables.h5"
    campaign: str = "campaign"
    n: int = 1200
    n_test: int = 50
    n_background: int = 4000
    chunk: int = 20
    seed: int = 1
    n_optimise: int = 500
    coordinates: str = "default"
    from_chains: str | None = None
    n_posterior: int = 400
    data_dir: str | None = None


def parse(section: Section, info: dict) -> ObservablesSettings:
    d = ObservablesSettings()
    out = ObservablesSettings(
        out=section.take("out", inside_path, default=d.out), campaign=section.take("campaign", inside_path, default=d.campaign),
        n=section.take("n", positive_int, default=d.n), n_test=section.take("n_test", nonnegative_int, default=d.n_test),
        n_background=section.take("n_background", positive_int, default=d.n_background),
        chunk=section.take("chunk", positive_int, default=d.chunk), seed=section.take("seed", nonnegative_int, default=d.seed),
        n_optimise=section.take("n_optimise", positive_int, default=d.n_optimise),
        coordinates=section.take("coordinates", choice("default", "parameters"), default=d.coordinates),
        from_chains=section.take("from_chains", optional(string), default=None),
        n_posterior=section.take("n_posterior", positive_int, default=d.n_posterior), data_dir=info.get("data_dir"))
    section.finish(allowed_hint=[f.name for f in dataclasses.fields(ObservablesSettings) if f.name != "data_dir"])
    return out


def plan(s: ObservablesSettings, ctx) -> str:
    return (f"observables: CAMB campaign of {s.n} + {s.n_test} held-out C_ell points and {s.n_background} background "
            f"points in {ctx.path(s.campaign)} (chunks of {s.chunk}, resumable), on the workflow's cluster; "
            f"emulator -> {ctx.path(s.out)}")


def run(s: ObservablesSettings, ctx) -> None:
    campaign = ctx.path(s.campaign)
    say = ctx.log.info if hasattr(ctx, "log") else print
    build_campaign(campaign, s.n, s.n_test, s.n_background, s.chunk, s.seed, client=ctx.client(),
                   from_chains=s.from_chains, n_posterior=s.n_posterior, say=say)
    tests = [campaign / "test.h5"] if s.n_test else []
    train_and_test(campaign, ctx.path(s.out), tests, s.n_optimise, s.coordinates == "parameters", s.data_dir,
                   client=ctx.client(), say=say)


STAGES = [Stage("observables", parse, run, plan, help="build the EDE observables emulator (CAMB campaign + GP)")]
