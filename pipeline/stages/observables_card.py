"""A shipped EDE observables emulator: its model directory.

The counterpart of :func:`cosmopipe.emulators.registry.write_model` for the theory layer's
observables emulator (C_ell TT/TE/EE/phiphi, distances, H(z), r_drag, sigma8 for EDE + binned
w(z)).  It lives at the stage layer because its accuracy is measured in units of the data
errors, which needs the likelihoods:

    <name>/observables.h5     the emulator (format 'cosmopipe-observables'), carrying its own
                              held-out Delta chi^2 check for the sample stage's guard
    <name>/test.h5            the held-out CAMB table (optional; the check can be rerun)
    <name>/posterior_check.json   CAMB at posterior samples of a chain (optional)
    MANIFEST.json, MODEL_CARD.md  as for the P(k) models (sha256 of every file, checked at load)
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from cosmopipe.emulators.registry import CARD, file_entry, write_manifest
from cosmopipe.likelihoods.theory.observables.check import abs_percentiles
from cosmopipe.likelihoods.theory.observables import (FORMAT, FORMAT_VERSION, likelihood_requirements,
                                                      load_observables, load_table)
from cosmopipe.provenance import code_version

from .observables import held_out_check, planck_bao_sn_likelihoods

__all__ = ["write_observables_model", "is_observables_file"]

EMULATOR_FILE = "observables.h5"
PROVIDES = ("cls", "distances", "hubble", "rdrag", "H0", "theta_star", "sigma8", "S8")


def is_observables_file(path) -> bool:
    """Whether ``path`` is an HDF5 file of the observables emulator's format."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def _seconds_per_point(emu, repeats: int = 200) -> float:
    """Median wall time [s] of one fully emulated theory at the box centre (all products
    the six likelihoods need), one BLAS thread."""
    from threadpoolctl import threadpool_limits

    centre = {n: 0.5 * (lo + hi) for n, lo, hi in zip(emu.names, emu.lower, emu.upper)}
    req = likelihood_requirements(emu.lmax)
    with threadpool_limits(1):
        emu.theory(centre, req)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            emu.theory(centre, req)
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _percentile_rows(dchi2: Mapping[str, np.ndarray]) -> list[str]:
    rows = ["| Delta chi^2 | median | p68 | p95 | max |", "|---|---|---|---|---|"]
    for name, values in dchi2.items():
        p = abs_percentiles(values)
        rows.append(f"| {name} | {p['median']:.3g} | {p['p68']:.3g} | {p['p95']:.3g} | {p['max']:.3g} |")
    return rows


def _posterior_rows(report: Mapping[str, Any]) -> list[str]:
    rows = [f"CAMB at {report.get('camb_ok', '?')} posterior samples of {report.get('chains', 'a chain')} "
            f"(|chi^2(emulator) - chi^2(CAMB)| with the real data):", "",
            "| likelihood | median | p68 | p95 | max |", "|---|---|---|---|---|"]
    for name, p in report.get("delta_chi2", {}).items():
        rows.append(f"| {name} | {p['median']:.3g} | {p['p68']:.3g} | {p['p95']:.3g} | {p['max']:.3g} |")
    shifts = report.get("shifts_sigma") or {}
    if shifts:
        worst = sorted(shifts.items(), key=lambda kv: -abs(kv[1]))[:5]
        rows += ["", "Reweighting the chain by L_CAMB / L_emulator moves the posterior means by at most "
                 + ", ".join(f"{k} {v:+.3f} sigma" for k, v in worst)
                 + f" (effective sample size {report.get('effective_sample_size', float('nan')):.0f})."]
    return rows


def card_text(name: str, emu, check: Mapping[str, Any] | None, held_out: list[str], posterior: list[str],
              speed: float, entries: Mapping[str, dict], description: str) -> str:
    prov = emu.provenance
    lines = [f"# Model card: {name}", "", description or "EDE (fluid, n = 3) + binned w(z) observables emulator.", "",
             "## What it is", "",
             "An emulator of CAMB for early dark energy (CAMB's effective fluid, n = 3) with a piecewise-constant "
             "w(z), serving Planck 2018 (plik-lite TTTEEE, low-ell TT, SRoll2 lowE, lensing), BAO and Pantheon: "
             f"lensed C_ell TT/TE/EE and phiphi to ell = {emu.lmax}, comoving distance and H(z) on 0 <= z <= 3, "
             "r_drag, z_drag, theta_*, H0, sigma8 and S8.  PCA per block, a linear trend plus a Matern-5/2 ARD "
             "Gaussian process per component (likelihoods/theory/observables/).",
             f"Use it as a theory provider: `theory: {{provider: emulator, path: {name}}}` (workflows/ede_wbins.yaml), "
             f"or `load_observables(\"{name}\")`.", "",
             "## Parameter box", "", "| parameter | lower | upper |", "|---|---|---|"]
    lines += [f"| {n} | {lo:.6g} | {hi:.6g} |" for n, lo, hi in zip(emu.names, emu.lower, emu.upper)]
    lines += ["", f"Fixed: m_nu from omega_nu h^2 = {emu.omnuh2:.6g} (0.06 eV); CAMB settings: "
                  f"`{json.dumps(emu.camb, sort_keys=True)}`.  Points outside the box are refused (zero likelihood).",
              "", "## Training set", "",
              f"- {prov.get('n_campaign', '?')} CAMB points with C_ell (Latin hypercube over the box; "
              f"{prov.get('failed_points', 0)} refused by CAMB or the H0 solve), "
              f"{prov.get('campaign_seconds', 0) / 3600:.2f} h of CPU",
              f"- {prov.get('n_background', '?')} background-only points",
              f"- CAMB {prov.get('camb_version', '?')}; trained in {prov.get('train_seconds', 0):.0f} s",
              "", "## Accuracy", ""]
    if check:
        lines += [f"Recorded in the file (the sample stage's guard reads it): p95 of the emulator error's Delta chi^2 "
                  f"summed over the six likelihoods, where the data equal the CAMB model, = "
                  f"**{check['p95_total']:.3g}** at {check['points']} held-out CAMB points (target <= 1); "
                  f"the raw chi^2(emulator) - chi^2(CAMB) against the real data at those box points, which "
                  f"is dominated by the data residual far from the posterior, has p95 {check.get('p95_total_raw', float('nan')):.3g}.", ""]
    if held_out:
        lines += ["Held-out CAMB points in the inner 90 % of the box: |chi^2(emulator) - chi^2(CAMB)| against the "
                  "real data, and '(at peak)' where the data equal the CAMB model (the error's own chi^2):", "",
                  *held_out, ""]
    if posterior:
        lines += [*posterior, ""]
    lines += ["## Speed and format", "",
              f"- one fully emulated point (all six likelihoods' products): {1e3 * speed:.2f} ms (one thread); "
              "CAMB with EDE and 3 w bins takes ~4 s",
              f"- format {FORMAT} version {FORMAT_VERSION}; cosmopipe {code_version()}", "",
              "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {f} | {e['size']} | `{e['sha256']}` |" for f, e in entries.items()]
    return "\n".join(lines) + "\n"


def write_observables_model(emulator_path, out_dir, name: str | None = None, test=None, posterior_check=None,
                            data_dir=None, description: str = "", say=print) -> Path:
    """Make the model directory ``out_dir`` for an observables emulator file: copy it (and the
    held-out table ``test``, and a ``check_chain`` report JSON ``posterior_check``), measure
    Delta chi^2 on the held-out points (data from ``data_dir`` or $COSMOPIPE_DATA), time it,
    and write MODEL_CARD.md and MANIFEST.json.  Returns the directory."""
    out_dir = Path(out_dir)
    name = name or out_dir.name
    emu = load_observables(emulator_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {EMULATOR_FILE: Path(emulator_path)}
    held_out, check = [], emu.provenance.get("delta_chi2_check")
    if test is not None:
        files["test.h5"] = Path(test)
        check, dchi2 = held_out_check(emu, load_table(test), planck_bao_sn_likelihoods(data_dir), say=say)
        held_out = _percentile_rows(dchi2)
    posterior = []
    if posterior_check is not None:
        files["posterior_check.json"] = Path(posterior_check)
        posterior = _posterior_rows(json.loads(Path(posterior_check).read_text()))
    for target, source in files.items():
        if source.resolve() != (out_dir / target).resolve():
            shutil.copyfile(source, out_dir / target)
    speed = _seconds_per_point(emu)
    entries = {target: file_entry(out_dir / target) for target in files}
    (out_dir / CARD).write_text(card_text(name, emu, check, held_out, posterior, speed, entries, description))
    accuracy = (f"p95 Delta chi^2 of the emulator error {check['p95_total']:.3g} (six likelihoods, "
                f"{check['points']} held-out CAMB points)" if check else "no held-out check recorded")
    return write_manifest(out_dir, name, EMULATOR_FILE, "observables", entries,
                          box={n: [float(lo), float(hi)] for n, lo, hi in zip(emu.names, emu.lower, emu.upper)},
                          fixed={"mnu": 0.06}, lmax=int(emu.lmax), provides=list(PROVIDES), accuracy=accuracy,
                          speed={"seconds_per_point": speed})
