"""Figures of simulation results (PNG files, no display needed)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
# Figure + the Agg canvas directly: no pyplot, so the global backend of an
# interactive session is left alone.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cosmopipe.sims.result import SimResult

__all__ = ["plot_boost"]

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
    from cosmopipe.emulators.ee2 import EE2_K_RANGE, EE2_Z_RANGE, check_box, ee2_boost

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
