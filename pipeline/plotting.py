"""Figures of simulation results and posteriors (PNG/PDF files, no display needed).

Posterior figures (``cosmopipe plot``): :func:`posterior_triangle` draws the GetDist
triangle (68/95 % filled contours, fiducial markers) with LaTeX labels carrying units
(UNIT_LABELS), and a red NOT CONVERGED banner across the top when a run did not pass
its convergence tests; :func:`default_params` keeps the cosmological and derived
parameters, leaving the likelihoods' nuisance parameters to ``--all``.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cosmopipe.emulators.ee2 import EE2_K_RANGE, EE2_Z_RANGE, check_box, ee2_boost
from cosmopipe.sims.result import SimResult

__all__ = ["plot_boost", "UNIT_LABELS", "apply_unit_labels", "default_params", "is_nuisance",
           "posterior_triangle"]

_RATIO_BAND_PERCENT = 3.0


def _title(result: SimResult, note: str) -> str:
    c, cfg = result.cosmology, result.config
    cosmo = (f"$\\Omega_m$={c.Omega_m:.4g}  $\\Omega_b$={c.Omega_b:.4g}  h={c.h:.4g}  "
             f"$A_s$={c.A_s:.3g}  $n_s$={c.n_s:.4g}  $w_0$={c.w0:.4g}  $w_a$={c.wa:.4g}  "
             f"$\\Sigma m_\\nu$={c.m_nu:.3g} eV")
    sim = (f"COLA: L={cfg.box:g} Mpc/h, {cfg.particles}$^3$ particles, {cfg.mesh}$^3$ mesh, "
           f"{cfg.steps} steps from z={cfg.z_init:g}, seed {cfg.seed}"
           + (", paired" if cfg.paired else "") + (", fixed amplitude" if cfg.fixed_amplitude else ""))
    return "\n".join(line for line in (cosmo, sim, note) if line)


def _ee2_reference(result: SimResult) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """EE2 boost on the emulated part of result.k, its k mask, and a title note."""
    try:
        check_box(result.cosmology)
    except ValueError as exc:
        return None, None, f"no EE2 comparison: {exc}"
    z = np.asarray(result.z, dtype=float)
    if z.max() > EE2_Z_RANGE[1]:
        return None, None, f"no EE2 comparison: z={z.max():g} beyond the emulated z <= {EE2_Z_RANGE[1]:g}"
    k = np.asarray(result.k, dtype=float)
    # Compare only where EE2 is emulated, not where it is extrapolated.
    mask = (k >= EE2_K_RANGE[0]) & (k <= EE2_K_RANGE[1])
    if not mask.any():
        return None, None, "no EE2 comparison: no k inside the emulated range"
    return ee2_boost(k[mask], z, result.cosmology), mask, ""


def plot_boost(result: SimResult, path: str | os.PathLike, compare_ee2: bool = True) -> Path:
    """PNG of the boost B(k) = P/P_lin at every output z.

    Upper panel: B(k) of the simulation (solid) and, with ``compare_ee2`` and
    a cosmology inside the EuclidEmulator2 box, EE2 (dashed).  Lower panel:
    COLA/EE2 - 1 in percent with a +-3 % band.  Returns the path written.
    """
    # matplotlib on first use (~0.3 s): the command line imports this module.  Figure +
    # the Agg canvas directly: no pyplot, so the global backend of an interactive
    # session is left alone.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    path = Path(path)
    k = np.asarray(result.k, dtype=float)
    z = np.asarray(result.z, dtype=float)
    boost = np.asarray(result.boost, dtype=float)

    ee2, mask, note = (None, None, "") if not compare_ee2 else _ee2_reference(result)

    fig = Figure(figsize=(8.0, 7.5 if ee2 is not None else 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    if ee2 is not None:
        ax, ax_ratio = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1.0))
    else:
        ax, ax_ratio = fig.subplots(1, 1), None

    cmap = matplotlib.colormaps["viridis"]
    worst = 0.0
    z_span = max(z.max() - z.min(), 1e-12)
    for i, zi in enumerate(z):
        color = cmap(0.9 * (zi - z.min()) / z_span)
        ax.plot(k, boost[i], color=color, lw=1.6, label=f"z = {zi:g}")
        if ee2 is not None:
            ax.plot(k[mask], ee2[i], color=color, lw=1.2, ls="--")
            ratio = 100.0 * (boost[i, mask] / ee2[i] - 1.0)
            ax_ratio.plot(k[mask], ratio, color=color, lw=1.4)
            worst = max(worst, float(np.nanmax(np.abs(ratio))))

    ax.set_xscale("log")
    # Plain numbers at 1-2-5 steps: the default minor labels overlap.
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(r"$B(k) = P(k) / P_{\rm lin}(k)$")
    ax.axhline(1.0, color="0.6", lw=0.8, zorder=0)
    handles, labels = ax.get_legend_handles_labels()
    if ee2 is not None:
        handles += [Line2D([], [], color="k", lw=1.6), Line2D([], [], color="k", lw=1.2, ls="--")]
        labels += ["COLA", "EuclidEmulator2"]
    ax.legend(handles, labels, loc="upper left", fontsize=8, frameon=False)

    bottom = ax_ratio if ax_ratio is not None else ax
    if ax_ratio is not None:
        ax_ratio.axhspan(-_RATIO_BAND_PERCENT, _RATIO_BAND_PERCENT, color="0.9", zorder=0)
        ax_ratio.axhline(0.0, color="0.5", lw=0.8)
        ax_ratio.set_ylabel("COLA / EE2 - 1 [%]")
        # Keep the band readable; clip only wild outliers.
        lim = min(max(2.0 * _RATIO_BAND_PERCENT, 1.1 * worst), 50.0)
        ax_ratio.set_ylim(-lim, lim)
    bottom.set_xlabel(r"$k$ [$h$/Mpc]")

    fig.suptitle(_title(result, note), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# -- posterior figures -------------------------------------------------------------------
# Labels of the parameters that carry units (GetDist wraps them in $...$).  Names of both
# conventions: Cosmology (h, m_nu) and Planck-style (H0, mnu).
UNIT_LABELS = {
    "H0": r"H_0\ [\mathrm{km\,s^{-1}\,Mpc^{-1}}]",
    "m_nu": r"\Sigma m_\nu\ [\mathrm{eV}]",
    "mnu": r"\Sigma m_\nu\ [\mathrm{eV}]",
    "rdrag": r"r_\mathrm{drag}\ [\mathrm{Mpc}]",
    "r_drag": r"r_\mathrm{drag}\ [\mathrm{Mpc}]",
    "A_s": r"A_s",
}
# Default labels for cosmological parameters a chain gives without one.
_COSMO_LABELS = {"Omega_m": r"\Omega_\mathrm{m}", "Omega_b": r"\Omega_\mathrm{b}", "h": "h", "n_s": "n_s",
                 "w0": "w_0", "wa": "w_a", "S8": "S_8", "sigma8": r"\sigma_8", "ombh2": r"\omega_\mathrm{b}",
                 "omch2": r"\omega_\mathrm{c}", "ns": "n_s", "tau": r"\tau", "logA": r"\ln(10^{10}A_s)",
                 "theta_star_100": r"100\theta_*", "f_EDE": r"f_\mathrm{EDE}", "log10_z_c": r"\log_{10} z_c"}
# Name patterns of nuisance parameters when a run does not list its nuisances
# (photo-z shifts, shear biases, intrinsic alignments, Planck foregrounds/calibration).
_NUISANCE_PREFIXES = ("dz_", "m_", "A_IA", "eta_IA", "A_planck", "calib", "cal_", "M_B", "Mb")


def is_nuisance(name: str, listed: Sequence[str] | None = None) -> bool:
    """A likelihood's nuisance parameter: listed by the run (summary "nuisance") or, for older
    runs, by name (dz_i, m_i, A_IA, ...).  m_nu is a cosmological parameter."""
    if listed is not None:
        return name in listed
    return name != "m_nu" and name.startswith(_NUISANCE_PREFIXES)


def default_params(samples, nuisance: Sequence[str] | None = None, show_all: bool = False) -> list[str]:
    """Cosmological and derived parameters of ``samples`` (GetDist MCSamples), in chain order;
    the nuisance parameters too with ``show_all``, and when nothing else is sampled."""
    names = [p for p in samples.paramNames.names if not p.name.startswith("chi2")]
    if show_all:
        return [p.name for p in names]
    kept = [p.name for p in names if p.isDerived or not is_nuisance(p.name, nuisance)]
    if not any(not p.isDerived and p.name in kept for p in names):
        return [p.name for p in names]        # only nuisances were sampled: nothing to hide them behind
    return kept


def apply_unit_labels(samples) -> None:
    """Give known parameters their LaTeX label with units (and a label where the chain has none)."""
    for p in samples.paramNames.names:
        if p.name in UNIT_LABELS:
            p.label = UNIT_LABELS[p.name]
        elif p.label in ("", p.name) and p.name in _COSMO_LABELS:
            p.label = _COSMO_LABELS[p.name]


def posterior_triangle(samples_list: Sequence, params: Sequence[str], out: str | os.PathLike,
                       labels: Sequence[str], markers: Mapping[str, float] | None = None,
                       banner: str = "") -> Path:
    """GetDist triangle plot: 68/95 % filled contours, runs overlaid, legend ``labels``, dashed
    lines at ``markers``; ``banner`` (e.g. NOT CONVERGED ...) in red across the top.  PNG or PDF."""
    import warnings

    from getdist import plots

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    g = plots.get_subplot_plotter(width_inch=max(4.0, 1.6 * len(params)))
    g.settings.num_plot_contours = 2            # 68 % and 95 %
    g.settings.legend_fontsize = 12
    g.settings.alpha_filled_add = 0.55          # later runs translucent over earlier ones
    marks = {k: v for k, v in (markers or {}).items() if k in params}
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    with warnings.catch_warnings():
        # GetDist's tick formatter uses a matplotlib attribute deprecated in 3.11 (harmless, very chatty).
        warnings.filterwarnings("ignore", message="The format attribute was deprecated")
        g.triangle_plot(list(samples_list), list(params), filled=True, legend_labels=list(labels),
                        markers=marks or None)
        if banner:
            # Above the figure (the export's tight bounding box grows to hold it), wrapped
            # to the figure's width: a long reason is never cut off and never covers the legend.
            width_pt = g.fig.get_figwidth() * 72.0
            text = textwrap.fill(banner, width=max(40, int(0.92 * width_pt / (0.62 * 13))))
            g.extra_artists.append(g.fig.text(0.5, 1.005, text, ha="center", va="bottom", color="white", fontsize=13,
                                              fontweight="bold",
                                              bbox={"facecolor": "#c00000", "edgecolor": "none", "pad": 6}))
        g.export(str(tmp))
    os.replace(tmp, out)
    import matplotlib.pyplot as plt

    plt.close(g.fig)
    return out
