"""What the ``emulator_bias`` stage writes: the numbers (HDF5, JSON), the tables
(Markdown) and the figures (Delta chi^2 per scale cut for each boost model, the
shifts per fiducial), with the settings and code version in each file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cosmopipe.likelihoods.shear import bias
from cosmopipe.provenance import code_version
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.io import atomic_hdf5

__all__ = ["write", "plot_methods", "plot_shifts", "goals"]

LABELS = {"emulator": "COLA hybrid", "ee2_lcdm": r"EE2 $\Lambda$CDM boost", "hmcode": "HMcode-2020",
          "hmcode_hybrid": "HMcode hybrid", "ee2_response": "perfect COLA, R held above k_max",
          "ee2_response_hmcode": "perfect COLA, HMcode's R above k_max"}
# arXiv:2404.12344's criteria, as issue 17 states them.
GOAL_CUTS = (1500.0, 750.0, 375.0)


def goals(cuts: Sequence[bias.ScaleCut], dchi2: np.ndarray) -> list[tuple[str, bool, str]]:
    """(criterion, holds, measured) for one model's (n_cuts, n) Delta chi^2."""
    out = []
    by_lmax = {c.lmax: row for c, row in zip(cuts, dchi2)}
    for lmax in GOAL_CUTS:
        if lmax in by_lmax:
            frac = float(np.mean(by_lmax[lmax] < 1.0))
            out.append((f"Delta chi^2 < 1 for >= 95 % at l_max = {lmax:g}", frac >= 0.95, f"{100 * frac:.0f} %"))
    if 3000.0 in by_lmax:
        med = float(np.median(by_lmax[3000.0]))
        out.append(("median Delta chi^2 < 0.3 at l_max = 3000", med < 0.3, f"{med:.3g}"))
    return out


def write(out_dir: Path, meta: dict, cuts, cosmos: Sequence[Cosmology], dchi2: Mapping[str, np.ndarray],
          d_ref: np.ndarray, vectors: Mapping[str, np.ndarray], shifts: dict, note: str, settings, log) -> None:
    names = Cosmology.names()
    with atomic_hdf5(out_dir / "delta_chi2.h5") as f:
        f.attrs["settings"] = json.dumps({k: v for k, v in meta.items() if k != "ids"}, default=str)
        f.attrs["code_version"] = code_version()
        f.attrs["cuts"] = json.dumps([c.name for c in cuts])
        f.attrs["param_names"] = json.dumps(list(names))
        f.attrs["sim_ids"] = json.dumps(meta["ids"])
        f.create_dataset("lmax", data=np.array([np.nan if c.lmax is None else c.lmax for c in cuts]))
        f.create_dataset("n_points", data=np.array([c.n_points for c in cuts]))
        f.create_dataset("params", data=np.array([[c.to_dict()[n] for n in names] for c in cosmos]))
        f.create_dataset("d_ref", data=d_ref)
        for m, table in dchi2.items():
            g = f.create_group(m)
            g.create_dataset("delta_chi2", data=table)
            g.create_dataset("d_model", data=vectors[m])
    (out_dir / "shifts.json").write_text(json.dumps(
        {"method": settings.method, "note": note, "code_version": code_version(),
         "fiducials": {fid: {"overrides": dict(dict(settings.fiducials).get(fid, ())),
                             "models": {m: [{"cut": s.cut, "in_sigma": dict(zip(s.names, s.in_sigma.tolist())),
                                             "sigma": dict(zip(s.names, s.sigma.tolist()))} for s in rows]
                                        for m, rows in by_model.items()}}
                       for fid, by_model in shifts.items()}}, indent=1))
    pngs = [plot_methods(cuts, dchi2, out_dir / "delta_chi2.png",
                         title=f"LSST-Y1 $\\xi_\\pm$ against EE2, {len(cosmos)} cosmologies")]
    if shifts and settings.method == "fisher":
        pngs.append(plot_shifts(shifts, settings.shift_cut, out_dir / "shifts.png"))
    (out_dir / "emulator_bias.md").write_text(_markdown(meta, cuts, cosmos, dchi2, shifts, note, settings))
    for m, table in dchi2.items():
        for cut, row in zip(cuts, table):
            log.info("  %s %s: median Delta chi2 %.3g, 95th pct %.3g, max %.3g", m, cut.name, np.median(row),
                     np.percentile(row, 95), row.max())
    log.info("emulator bias: %s, %s", out_dir / "emulator_bias.md", ", ".join(str(p) for p in pngs))


def _shown(rows) -> list[str]:
    order = list(Cosmology.names()) + ["A_IA", "eta_IA"]
    return [n for n in order if n in rows[0].names]


def _markdown(meta, cuts, cosmos, dchi2, shifts, note, settings) -> str:
    md = [f"# Emulator bias for LSST-Y1 cosmic shear against {meta['reference']}", "",
          f"{len(cosmos)} test cosmologies; boost models: {', '.join(LABELS.get(m, m) for m in dchi2)}"
          + (f"; emulator `{meta['emulator']}`" if meta["emulator"] else "") + ".",
          "Delta chi^2 = (d_model - d_ref)^T C^-1 (d_model - d_ref) with the covariance of the mock's fiducial.", ""]
    for m, table in dchi2.items():
        md += [f"## {LABELS.get(m, m)} (`{m}`)", "", bias.chi2_table(cuts, table)]
        md += ["| goal | holds | measured |", "|---|---|---|"]
        md += [f"| {g} | {'yes' if ok else 'no'} | {v} |" for g, ok, v in goals(cuts, table)] + [""]
    if shifts:
        md += ["## Parameter shifts in units of sigma", "", note + ".", ""]
        for fid, by_model in shifts.items():
            over = dict(dict(settings.fiducials).get(fid, ()))
            md += [f"### {fid}" + (f" ({', '.join(f'{k} = {v:g}' for k, v in over.items())})" if over else ""), ""]
            for m, rows in by_model.items():
                worst = max(float(np.max(np.abs(s.in_sigma))) for s in rows)
                md += [f"{LABELS.get(m, m)}: largest |shift| {worst:.3f} sigma", "",
                       bias.shift_table(rows, show=_shown(rows))]
    seconds = meta.get("seconds", {})
    if seconds:
        md += ["Wall time of the test data vectors: " + ", ".join(f"{m} {s:.0f} s" for m, s in seconds.items())
               + ".", ""]
    return "\n".join(md)


def plot_methods(cuts, dchi2: Mapping[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Delta chi^2 per scale cut (log scale), one box (25-75 %, whiskers 5-95 %) per
    model side by side; the dashed line is Delta chi^2 = 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dchi2)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(7.0, 4.2 + 0.2 * len(models)))
    allv = np.concatenate([t.ravel() for t in dchi2.values()])
    floor = max(np.min(allv[allv > 0]) if np.any(allv > 0) else 1e-8, 1e-8)
    for i, m in enumerate(models):
        pos = np.arange(len(cuts)) - 0.4 + width * (i + 0.5)
        data = [np.maximum(row, floor) for row in dchi2[m]]
        bp = ax.boxplot(data, positions=pos, widths=0.85 * width, whis=(5, 95), showfliers=False,
                        patch_artist=True, medianprops={"color": "k"})
        for box in bp["boxes"]:
            box.set_facecolor(f"C{i}")
            box.set_alpha(0.75)
        ax.plot([], [], "s", color=f"C{i}", label=LABELS.get(m, m))
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cuts)), [("none" if c.lmax is None else f"{c.lmax:g}") for c in cuts])
    ax.set_xlabel(r"scale cut $\ell_\mathrm{max}$")
    ax.set_ylabel(r"$\Delta\chi^2$ against EuclidEmulator2")
    # below the axes: with several models any corner inside covers some boxes
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=140)
    plt.close(fig)
    return path


def plot_shifts(shifts: dict, shift_cut, path: Path) -> Path:
    """|shift| / sigma of each parameter at the cut ``shift_cut``, one panel per fiducial,
    one marker per model; the band is the 0.3 sigma goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cut_name = "none" if shift_cut is None else f"lmax{shift_cut:g}"
    fids = list(shifts)
    fig, axes = plt.subplots(1, len(fids), figsize=(3.0 * len(fids) + 1, 4.2), sharey=True, squeeze=False)
    for ax, fid in zip(axes[0], fids):
        n_models = len(shifts[fid])
        for i, (m, rows) in enumerate(shifts[fid].items()):
            row = next((s for s in rows if s.cut == cut_name), rows[0])
            names = _shown([row])
            idx = [row.names.index(n) for n in names]
            ax.plot(row.in_sigma[idx], np.arange(len(idx)) + 0.12 * (i - (n_models - 1) / 2), "o", ms=4, color=f"C{i}",
                    label=LABELS.get(m, m))
        ax.axvspan(-0.3, 0.3, color="0.9", zorder=0)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_yticks(np.arange(len(names)), names)
        ax.set_title(fid, fontsize=9)
        ax.set_xlabel(r"shift / $\sigma$")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"Posterior shifts against EE2 (Fisher, {cut_name})", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    # below the panels, where it covers no marker
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.savefig(path, dpi=140)
    plt.close(fig)
    return path
