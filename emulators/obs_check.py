"""CAMB at posterior samples of an emulator chain: the observables emulator's error where it matters.

Held-out box points (``observables train --test``) measure the emulator everywhere in
its box; the posterior cares only about the region the data allow.  This module reruns
CAMB (H0 solved from the sample's theta_*) at samples of a converged ``sample`` run and
reports, per likelihood,

* Delta chi^2 = chi^2(emulator) - chi^2(CAMB) at those samples, and
* the shift of each posterior mean between the emulator chain and the same chain
  reweighted by L_CAMB / L_emulator (importance sampling: the CAMB posterior without
  a CAMB chain), in units of the reweighted standard deviation, with the effective
  sample size of the weights.

    python -m cosmopipe.emulators.observables check --chains out/ede_wbins/chains \\
           --emulator out/ede_wbins/observables.h5 --n 200 --workers 2
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["camb_loglikes", "emulator_loglikes", "check_chain"]

_LIKES: dict[str, Any] = {}


def _likelihoods(data_dir):
    from .observables import planck_bao_sn_likelihoods

    key = str(data_dir)
    if key not in _LIKES:
        _LIKES[key] = planck_bao_sn_likelihoods(data_dir)
    return _LIKES[key]


def _loglikes(theory, params: Mapping[str, float], data_dir) -> dict[str, float]:
    return {name: float(like.loglike(theory, params)) for name, like in _likelihoods(data_dir).items()}


def camb_loglikes(params: Mapping[str, float], camb: Mapping[str, Any], data_dir) -> dict[str, float] | str:
    """ln L per likelihood with CAMB's full theory at a point given with theta_star_100
    (H0 solved; ~4-6 s of CPU with EDE + 3 w bins).  A point CAMB refuses returns the message."""
    from cosmopipe.likelihoods.camb_theory import TheoryError

    from .observables import camb_at, likelihood_requirements

    try:
        theory = camb_at(params, likelihood_requirements(), camb)
    except TheoryError as exc:
        return str(exc)
    return {**_loglikes(theory, params, data_dir), "H0": theory.H0}


def emulator_loglikes(emu, params: Mapping[str, float], data_dir) -> dict[str, float]:
    """ln L per likelihood with the fully emulated theory (and its H0)."""
    from .observables import likelihood_requirements

    theory = emu.theory(params, likelihood_requirements(emu.lmax))
    return {**_loglikes(theory, params, data_dir), "H0": theory.H0, "S8": theory.S8}


def check_chain(chain_dir, emulator_path, n: int = 200, data_dir=None, client=None, progress=True) -> dict:
    """Run CAMB at ``n`` evenly spaced post-burn-in samples of the chains in ``chain_dir``;
    returns the report (JSON-able; see the module docstring)."""
    from tqdm.auto import tqdm

    from cosmopipe.likelihoods.shear.bias import importance_shifts, read_chain_samples

    from .observables import load_observables

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

    def pct(a):
        a = np.abs(a)
        return {"median": float(np.median(a)), "p68": float(np.percentile(a, 68)),
                "p95": float(np.percentile(a, 95)), "max": float(a.max())}

    return {"chains": str(chain_dir), "emulator": str(emulator_path), "samples": len(rows), "camb_ok": len(good),
            "camb_refused": [camb[i] for i in range(len(rows)) if not isinstance(camb[i], dict)],
            "delta_chi2": {k: pct(v) for k, v in dchi2.items()}, "delta_chi2_mean": {k: float(v.mean()) for k, v in dchi2.items()},
            "h0_relative_error": pct(h0_err), "shifts_sigma": shifts, "effective_sample_size": ess,
            "seconds_per_point": {"emulator": t_emu, "camb_wall": t_camb / len(rows)},
            # Per sample, so the tail can be located in parameter space (worst first) and plotted.
            "worst": _worst_samples(names, samples[good], dchi2),
            "delta_chi2_samples": {k: v.tolist() for k, v in dchi2.items()}}


def _worst_samples(names, samples: np.ndarray, dchi2: Mapping[str, np.ndarray], n: int = 10) -> list[dict]:
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


def write_report(report: Mapping[str, Any], out: Path) -> None:
    """OUT.json (the report), OUT.md (its tables) and OUT.png (|Delta chi^2| per likelihood at the samples)."""
    from cosmopipe.likelihoods.sampling import _atomic_text

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
    import matplotlib

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
