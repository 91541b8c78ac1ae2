"""Validation of the observables emulator in units of the data errors.

Held-out box points (``cosmopipe observables train --test``) measure the emulator
everywhere in its box: :func:`delta_chi2` is chi^2(emulator) - chi^2(CAMB) per likelihood
there, :func:`delta_chi2_at_peak` the same where the data equal the CAMB theory.  The
check at posterior samples of a chain (CAMB rerun there, importance-sampling shifts) is
:func:`cosmopipe.pipeline.stages.observables.check_chain`; its report is written here
(:func:`report_markdown`, :func:`write_report`, :func:`validation_plot`).

The likelihoods are passed in (name -> object with ``loglike(theory, params)``): this
layer does not build them.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .campaign import CL_BLOCKS, SCALARS, ObservableTable, background, likelihood_requirements
from .model import ObservablesEmulator, _with_perturbations

__all__ = ["delta_chi2", "delta_chi2_at_peak", "abs_percentiles", "worst_samples", "report_markdown",
           "write_report", "validation_plot"]


def _held_out_theories(emu, table):
    """(index, CAMB truth, emulated) TheoryResults for each point of a held-out table: the
    truth is CAMB's background at the point's H0 with the tabulated C_ell and sigma8, the
    emulated one is fully emulated from the point's theta_star_100."""
    h0 = table.blocks["scalars"][:, SCALARS.index("H0")]
    for i in range(len(table)):
        params = table.params(i)
        at_h0 = {k: v for k, v in params.items() if k != "theta_star_100"}
        at_h0["H0"] = float(h0[i])
        truth = _with_perturbations(background(at_h0, emu.settings()),
                                    {**{k: table.blocks[k][i] for k in CL_BLOCKS},
                                     "sigma8": table.blocks["scalars"][i, SCALARS.index("sigma8")]})
        yield i, truth, emu.theory(params, likelihood_requirements(emu.lmax))


def delta_chi2(emu: ObservablesEmulator, table: ObservableTable, likelihoods: Mapping[str, Any],
               nuisance: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """chi^2(emulator) - chi^2(CAMB) per likelihood (name -> (n,)) at the points of a
    held-out campaign: BAO and Pantheon through the emulated background, the CMB
    likelihoods through the emulated C_ell."""
    nuisance = {"A_planck": 1.0, **dict(nuisance or {})}
    out = {name: np.empty(len(table)) for name in likelihoods}
    for i, truth, emul in _held_out_theories(emu, table):
        for name, like in likelihoods.items():
            ll_emul, ll_truth = like.loglike(emul, nuisance), like.loglike(truth, nuisance)
            # Equal covers both -inf (a point a likelihood rules out, e.g. outside the MGS table).
            out[name][i] = 0.0 if ll_emul == ll_truth else -2.0 * (ll_emul - ll_truth)
    return out


def delta_chi2_at_peak(emu: ObservablesEmulator, table: ObservableTable, likelihoods: Mapping[str, Any],
                       recentre: Callable, nuisance: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """(C_emu - C_camb)^T Cov^-1 (C_emu - C_camb) per Gaussian CMB likelihood (plik-lite,
    low-ell TT, lensing): the Delta chi^2 at a point where the data equal the CAMB theory,
    i.e. near the posterior peak, where the term linear in the data residual vanishes.
    :func:`delta_chi2` at box points far from the data is dominated by that linear term.
    ``recentre(like, truth, nuisance)``: a copy of ``like`` whose data are the model of
    ``truth``, or None for a likelihood that is not a Gaussian band-power one."""
    nuisance = {"A_planck": 1.0, **dict(nuisance or {})}
    out: dict[str, np.ndarray] = {}
    for i, truth, emul in _held_out_theories(emu, table):
        for name, like in likelihoods.items():
            peak = recentre(like, truth, nuisance)
            if peak is not None:
                out.setdefault(name, np.empty(len(table)))[i] = -2.0 * peak.loglike(emul, nuisance)
    return out

def abs_percentiles(a) -> dict[str, float]:
    """median, 68th, 95th percentile and maximum of |a|."""
    a = np.abs(np.asarray(a, float))
    return {"median": float(np.median(a)), "p68": float(np.percentile(a, 68)),
            "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def worst_samples(names, samples: np.ndarray, dchi2: Mapping[str, np.ndarray], n: int = 10) -> list[dict]:
    """The ``n`` samples with the largest |Delta chi^2| in total: parameters and Delta chi^2 per likelihood."""
    order = np.argsort(-np.abs(dchi2["total"]))[:n]
    return [{"params": {k: float(v) for k, v in zip(names, samples[i])},
             "delta_chi2": {k: float(v[i]) for k, v in dchi2.items()}} for i in order]


def report_markdown(report: Mapping[str, Any]) -> str:
    """The check report as Markdown tables."""
    lines = [f"CAMB at {report['camb_ok']} posterior samples of `{report['chains']}` "
             f"(emulator `{Path(report['emulator']).name}`).", "",
             "| likelihood | median abs Delta chi2 | p68 | p95 | max | mean Delta chi2 |", "|---|---|---|---|---|---|"]
    for k, v in report["delta_chi2"].items():
        lines.append(f"| {k} | {v['median']:.3g} | {v['p68']:.3g} | {v['p95']:.3g} | {v['max']:.3g} | "
                     f"{report['delta_chi2_mean'][k]:+.3g} |")
    lines += ["", f"Importance reweighting to CAMB: effective sample size {report['effective_sample_size']:.0f} "
                  f"of {report['camb_ok']}.", "", "| parameter | (mean_emu - mean_CAMB) / sigma_CAMB |", "|---|---|"]
    lines += [f"| {k} | {v:+.3f} |" for k, v in sorted(report["shifts_sigma"].items(), key=lambda kv: -abs(kv[1]))]
    worst = report.get("worst") or []
    if worst:
        pnames = list(worst[0]["params"])
        likes = list(worst[0]["delta_chi2"])
        lines += ["", "Samples with the largest |Delta chi2| (total):", "",
                  "| " + " | ".join(likes + pnames) + " |", "|" + "---|" * (len(likes) + len(pnames))]
        lines += ["| " + " | ".join([f"{w['delta_chi2'][k]:+.3g}" for k in likes]
                                    + [f"{w['params'][k]:.5g}" for k in pnames]) + " |" for w in worst]
    return "\n".join(lines) + "\n"


def _atomic_text(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same directory (no half-written report)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(report: Mapping[str, Any], out: Path) -> None:
    """OUT.json (the report), OUT.md (its tables) and OUT.png (|Delta chi^2| per likelihood at the samples)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_text(out.with_suffix(".json"), json.dumps(report, indent=1))
    _atomic_text(out.with_suffix(".md"), report_markdown(report))
    samples = report.get("delta_chi2_samples")
    if samples:
        validation_plot(samples, out.with_suffix(".png"),
                        title=f"CAMB at {report['camb_ok']} posterior samples; emulator {Path(report['emulator']).name}")


def validation_plot(dchi2: Mapping[str, np.ndarray], path, target: float = 0.2, title: str = "") -> Path:
    """|Delta chi^2| per likelihood at held-out points (box 25-75 %, whiskers 5-95 %, every
    point drawn) on a log axis, with the target as a dashed line."""
    import matplotlib  # plotting only when a report is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dchi2)
    vals = [np.maximum(np.abs(np.asarray(dchi2[k], float)), 1e-6) for k in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 4.2))
    ax.boxplot(vals, whis=(5, 95), showfliers=False)
    for i, v in enumerate(vals, 1):
        ax.plot(i + 0.08 * np.random.default_rng(i).standard_normal(v.size), v, ".", alpha=0.5, ms=4)
    ax.axhline(target, ls="--", color="k", lw=1, label=f"target {target:g}")
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(names) + 1), [k.replace("planck_2018_", "").replace(" (at peak)", "\n(at peak)")
                                             for k in names], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(r"$|\Delta\chi^2|$ emulator vs CAMB")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
