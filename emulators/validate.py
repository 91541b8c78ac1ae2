"""Validation of an emulator against held-out simulations (and EuclidEmulator2).

Statistic: for every test cosmology and every (redshift, k range) cell the
*largest* relative error max_k |B_emu / B_sim - 1| over the k bins of the
range; the tables give the 50th, 68th and 95th percentiles and the maximum of
that over the test cosmologies.  "95 % of the cosmologies within 0.5 %" thus
means p95 <= 0.005 in the cell.  Headline of a boost emulator: the fraction of
test cosmologies whose error stays within 0.5 % for every k <= 1 h/Mpc at
every z <= 3.

A hybrid is meant to match EuclidEmulator2, not COLA's own boost: its headline
is the fraction within 1 % of EE2 for k <= 1 h/Mpc, z <= 2 (it equals EE2 at
w0 = -1).  Against the simulations it is judged on what they determine, the
dark-energy response R = B(X) / B(X-lcdm) of the test set's LCDM twin pairs,
when the test set has them (else on B, as a boost emulator).

Outputs in ``out_dir``: validation.csv, validation.md, validation.png and
validation.json (the summary).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ee2 import EE2_BOX, EE2_K_RANGE, EE2_Z_RANGE, ee2_boost, in_box
from .response import TWIN_SUFFIX, twin_pairs

__all__ = ["validate", "ValidationResult", "error_table", "K_EDGES", "PERCENTILES"]

K_EDGES = (0.0, 0.1, 0.5, 1.0, np.inf)
PERCENTILES = (50, 68, 95)
HEADLINE_TOL = 0.005
HEADLINE_K, HEADLINE_Z = 1.0, 3.0
EE2_TOL, EE2_K, EE2_Z = 0.01, 1.0, 2.0


@dataclass(frozen=True)
class ValidationResult:
    """rows: one dict per (reference, z, k range) with n, p50, p68, p95, max;
    summary: headline fractions and counts; files: the paths written."""

    rows: list
    summary: dict
    files: dict = field(default_factory=dict)


def error_table(err: np.ndarray, z: np.ndarray, k: np.ndarray, reference: str,
                k_edges=K_EDGES) -> list[dict]:
    """Percentile rows of per-cosmology maximum errors; err is |ratio - 1|, (n, nz, nk)."""
    rows = []
    for iz, zi in enumerate(z):
        for lo, hi in zip(k_edges[:-1], k_edges[1:]):
            sel = (k > lo) & (k <= hi)
            if not sel.any():
                continue
            per = err[:, iz][:, sel].max(axis=1)
            rows.append({"reference": reference, "z": float(zi), "k_min": float(k[sel].min()),
                         "k_max": float(k[sel].max()), "n": int(per.size),
                         **{f"p{p}": float(np.percentile(per, p)) for p in PERCENTILES},
                         "max": float(per.max())})
    return rows


def _fraction_within(err: np.ndarray, z: np.ndarray, k: np.ndarray, tol: float, kmax: float, zmax: float):
    zsel, ksel = z <= zmax + 1e-9, k <= kmax
    if not zsel.any() or not ksel.any():
        return None
    per = err[:, zsel][:, :, ksel].max(axis=(1, 2))
    return float(np.mean(per <= tol)), float(np.percentile(per, 95))


def _usable(emulator, params: np.ndarray) -> np.ndarray:
    """Rows inside the training box (and, for the hybrid, with theta_LCDM inside EE2's box)."""
    space = emulator.space
    ok = np.all((params >= space.lower) & (params <= space.upper), axis=1)
    if emulator.kind == "hybrid":
        lcdm = space.cosmology_dicts(emulator._lcdm(params))
        ok &= np.array([in_box(c) for c in lcdm])
    return ok


def validate(emulator, test_dataset, out_dir: str | os.PathLike, compare_ee2: bool = True,
             plot: bool = True) -> ValidationResult:
    """Compare ``emulator`` (boost or hybrid) with a held-out SimDataset.

    Only the test data inside the emulator's k and z ranges and its parameter
    box are used; what was left out is counted in the summary.  Returns the
    rows and the summary and writes the files listed in the module docstring.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = test_dataset
    k_all, z_all = np.asarray(ds.k, float), np.asarray(ds.z, float)
    (k_lo, k_hi), (z_lo, z_hi) = emulator.k_range, emulator.z_range
    ksel = np.flatnonzero((k_all >= k_lo * (1 - 1e-9)) & (k_all <= k_hi * (1 + 1e-9)))
    zsel = np.flatnonzero((z_all >= z_lo - 1e-9) & (z_all <= z_hi + 1e-9))
    if ksel.size == 0 or zsel.size == 0:
        raise ValueError(f"validate: the test set (k {k_all.min():g}-{k_all.max():g} h/Mpc, z {z_all.min():g}-"
                         f"{z_all.max():g}) does not overlap the emulator's range (k {k_lo:g}-{k_hi:g} h/Mpc, "
                         f"z {z_lo:g}-{z_hi:g})")
    zsel = zsel[np.argsort(z_all[zsel])]
    k, z = k_all[ksel], z_all[zsel]
    varied = np.column_stack([ds.column(n) for n in emulator.params])
    inside = _usable(emulator, varied)
    if not inside.any():
        raise ValueError("validate: no test cosmology lies inside the emulator's training box"
                         + (" with theta_LCDM inside the EE2 box" if emulator.kind == "hybrid" else ""))
    table = {name: ds.column(name)[inside] for name in ds.names}
    err, sim_ref = _simulation_errors(emulator, ds, inside, zsel, ksel, z, k)
    rows = error_table(err, z, k, sim_ref)
    summary = {
        "emulator_kind": emulator.kind, "simulation_reference": sim_ref,
        "n_test": int(len(ds)), "n_used": int(inside.sum()), "n_outside_box": int((~inside).sum()),
        "k_range": [float(k.min()), float(k.max())], "z": [float(v) for v in z],
        "test_dataset_hash": ds.hash, "trained_on": emulator.info.get("dataset_hash")
        or emulator.info.get("cola_dataset_hash"),
    }
    head = _fraction_within(err, z, k, HEADLINE_TOL, HEADLINE_K, HEADLINE_Z)
    if head is not None:
        summary["fraction_within_0.5pct_k_le_1_z_le_3"], summary["p95_max_error_k_le_1_z_le_3"] = head

    ee2_err = None
    if compare_ee2:
        ee2_table = table
        if emulator.kind == "hybrid":
            # A hybrid equals EE2 at w0 = -1, wa = 0 by construction: LCDM twins would only
            # pad its score, so they are left out of the comparison.
            twin = np.array([str(sid).endswith(TWIN_SUFFIX) for sid in ds.sim_ids])[inside]
            ee2_table = {name: values[~twin] for name, values in table.items()}
            summary["n_lcdm_twins_left_out_of_ee2"] = int(twin.sum())
        ee2_err, ee2_note = _ee2_errors(emulator, ee2_table, z, k) if len(next(iter(ee2_table.values()))) else (
            None, "not compared: only LCDM twins")
        summary["ee2"] = ee2_note
        if ee2_err is not None:
            rows += error_table(ee2_err, z, k, "EuclidEmulator2")
            within = _fraction_within(ee2_err, z, k, EE2_TOL, EE2_K, EE2_Z)
            if within is not None:
                summary["ee2_fraction_within_1pct_k_le_1_z_le_2"], summary["ee2_p95_max_error_k_le_1_z_le_2"] = within

    files = {"csv": _write_csv(out_dir / "validation.csv", rows),
             "markdown": _write_markdown(out_dir / "validation.md", rows, summary),
             "json": out_dir / "validation.json"}
    (out_dir / "validation.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    if plot:
        files["plot"] = _plot(out_dir / "validation.png", err, ee2_err, z, k, summary)
    return ValidationResult(rows=rows, summary=summary, files={n: str(p) for n, p in files.items()})


def _simulation_errors(emulator, ds, inside: np.ndarray, zsel, ksel, z, k) -> tuple[np.ndarray, str]:
    """(|emu / sim - 1| (n, nz, nk), what was compared): the response R of the twin pairs
    for a hybrid whose test set has them (module doc), else the boost B."""
    boost = np.asarray(ds.boost, float)[:, zsel][:, :, ksel]
    if emulator.kind == "hybrid":
        try:
            a, b, _ = twin_pairs(ds)
        except ValueError:
            a = b = np.array([], dtype=int)
        keep = inside[a] & inside[b] if a.size else np.array([], dtype=bool)
        if keep.any():
            a, b = a[keep], b[keep]
            theta = {name: ds.column(name)[a] for name in ds.names}
            r_emu = np.exp(emulator.log_cola_ratio(k, z, theta))
            return np.abs(r_emu / (boost[a] / boost[b]) - 1.0), "simulations (response R)"
    table = {name: ds.column(name)[inside] for name in ds.names}
    return np.abs(emulator.boost(k, z, table) / boost[inside] - 1.0), "simulations"


def _ee2_errors(emulator, table: dict, z: np.ndarray, k: np.ndarray):
    """|B_emu / B_EE2 - 1| for the cosmologies inside EE2's box and z range, or a note why not."""
    if z.max() > EE2_Z_RANGE[1]:
        return None, f"not compared: z up to {z.max():g} beyond EE2's {EE2_Z_RANGE[1]:g}"
    n = len(next(iter(table.values())))
    full = [{name: float(table[name][i]) for name in EE2_BOX} for i in range(n)]
    ok = np.array([all(EE2_BOX[p][0] <= c[p] <= EE2_BOX[p][1] for p in EE2_BOX) for c in full])
    if not ok.all():
        return None, f"not compared: {int((~ok).sum())} of {n} test cosmologies lie outside the EE2 box"
    ksel = (k >= EE2_K_RANGE[0]) & (k <= EE2_K_RANGE[1])
    b_emu = emulator.boost(k, z, table)
    b_ee2 = np.stack([ee2_boost(k, z, c) for c in full])
    err = np.abs(b_emu / b_ee2 - 1.0)
    err[:, :, ~ksel] = 0.0  # EE2 is not emulated there (B = 1 or held constant)
    return err, f"compared on {n} cosmologies"


def _write_csv(path: Path, rows: list[dict]) -> Path:
    cols = ["reference", "z", "k_min", "k_max", "n", *(f"p{p}" for p in PERCENTILES), "max"]
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(r[c] if isinstance(r[c], str) else f"{r[c]:.6g}" for c in cols))
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_markdown(path: Path, rows: list[dict], summary: dict) -> Path:
    out = ["# Emulator validation", "",
           f"Emulator kind: {summary['emulator_kind']}; test cosmologies used: {summary['n_used']} of "
           f"{summary['n_test']} ({summary['n_outside_box']} outside the training box"
           + (" or with theta_LCDM outside EE2's" if summary["emulator_kind"] == "hybrid" else "") + ").", "",
           "Each entry: percentile over test cosmologies of max_k |X_emu/X_ref - 1| in the k range, in percent "
           "(X = B, or R for the response).", ""]
    if "ee2_fraction_within_1pct_k_le_1_z_le_2" in summary and summary["emulator_kind"] == "hybrid":
        out.append(f"- Headline (the hybrid's target): against EuclidEmulator2, fraction within 1 % for k <= 1 h/Mpc, "
                   f"z <= 2: **{summary['ee2_fraction_within_1pct_k_le_1_z_le_2']:.1%}** (p95 of the max error "
                   f"{100 * summary['ee2_p95_max_error_k_le_1_z_le_2']:.2f} %)")
    if "fraction_within_0.5pct_k_le_1_z_le_3" in summary:
        out.append(f"- Against {summary['simulation_reference']}: fraction of test cosmologies within 0.5 % for all "
                   "k <= 1 h/Mpc, z <= 3: "
                   f"**{summary['fraction_within_0.5pct_k_le_1_z_le_3']:.1%}** "
                   f"(p95 of the max error {100 * summary['p95_max_error_k_le_1_z_le_3']:.3f} %)")
    if "ee2_fraction_within_1pct_k_le_1_z_le_2" in summary and summary["emulator_kind"] != "hybrid":
        out.append(f"- Against EuclidEmulator2, fraction within 1 % for k <= 1 h/Mpc, z <= 2: "
                   f"**{summary['ee2_fraction_within_1pct_k_le_1_z_le_2']:.1%}**")
    elif "ee2" in summary:
        out.append(f"- EuclidEmulator2: {summary['ee2']}")
    out.append("")
    for ref in dict.fromkeys(r["reference"] for r in rows):
        out += [f"## Against {ref}", "", "| z | k range [h/Mpc] | n | p50 % | p68 % | p95 % | max % |",
                "|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["reference"] == ref:
                out.append(f"| {r['z']:g} | {r['k_min']:.3g} - {r['k_max']:.3g} | {r['n']} | "
                           + " | ".join(f"{100 * r[c]:.3f}" for c in ("p50", "p68", "p95", "max")) + " |")
        out.append("")
    path.write_text("\n".join(out))
    return path


def _plot(path: Path, err: np.ndarray, ee2_err, z: np.ndarray, k: np.ndarray, summary: dict) -> Path:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(f"test {summary['simulation_reference']}", err)] + ([("EuclidEmulator2", ee2_err)] if ee2_err is not None else [])
    fig = Figure(figsize=(8.0, 3.6 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    shown = np.unique(np.linspace(0, z.size - 1, min(z.size, 4)).round().astype(int))
    cmap = matplotlib.colormaps["viridis"]
    for ax, (label, e) in zip(axes, panels):
        for j, iz in enumerate(shown):
            color = cmap(0.85 * j / max(len(shown) - 1, 1))
            pct = 100 * np.percentile(e[:, iz], [50, 68, 95], axis=0)
            ax.fill_between(k, 0, pct[2], color=color, alpha=0.12, lw=0)
            ax.fill_between(k, 0, pct[1], color=color, alpha=0.25, lw=0)
            ax.plot(k, pct[0], color=color, lw=1.5, label=f"z = {z[iz]:g}")
        ax.axhline(100 * HEADLINE_TOL, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_ylabel(r"$|B_{\rm emu}/B_{\rm ref} - 1|$ [%]")
        ax.set_title(f"against {label}: median (line), 68 % and 95 % of {e.shape[0]} test cosmologies (bands)",
                     fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel(r"$k$ [$h$/Mpc]")
    if summary["emulator_kind"] == "hybrid" and "ee2_fraction_within_1pct_k_le_1_z_le_2" in summary:
        fig.suptitle(f"hybrid emulator: {summary['ee2_fraction_within_1pct_k_le_1_z_le_2']:.0%} of test cosmologies "
                     "within 1 % of EuclidEmulator2 (k <= 1 h/Mpc, z <= 2)", fontsize=10)
    elif "fraction_within_0.5pct_k_le_1_z_le_3" in summary:
        fig.suptitle(f"{summary['emulator_kind']} emulator: "
                     f"{summary['fraction_within_0.5pct_k_le_1_z_le_3']:.0%} of test cosmologies within 0.5 % "
                     "(k <= 1 h/Mpc, z <= 3)", fontsize=10)
    fig.savefig(path, dpi=110)
    return path
