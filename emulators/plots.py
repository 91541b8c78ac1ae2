"""Figure of an emulator prediction, against EuclidEmulator2 where possible."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .ee2 import EE2_K_RANGE, EE2_Z_RANGE, check_box, ee2_boost

__all__ = ["plot_prediction"]


def plot_prediction(emulator, params: dict, k: np.ndarray, z: np.ndarray, path: str | os.PathLike,
                    compare_ee2: bool = True, extrapolate: bool = False) -> tuple[Path, str]:
    """PNG of B(k) at each z for one cosmology; with ``compare_ee2`` and the
    cosmology inside EE2's box also EE2 (dashed) and the ratio panel.
    Returns (path, note) where the note says why EE2 is missing, if it is."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    k, z = np.asarray(k, float), np.asarray(z, float)
    boost = emulator.boost(k, z, params, extrapolate=extrapolate)
    full = {**emulator.fixed, **{n: float(v) for n, v in params.items()}}
    ee2, note = None, ""
    if compare_ee2:
        try:
            check_box(full)
            if z.max() > EE2_Z_RANGE[1]:
                raise ValueError(f"z={z.max():g} beyond EE2's z <= {EE2_Z_RANGE[1]:g}")
            ee2 = ee2_boost(k, z, full)
        except ValueError as exc:
            note = f"no EE2 comparison: {exc}"
    fig = Figure(figsize=(8.0, 7.0 if ee2 is not None else 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    if ee2 is not None:
        ax, ax_r = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1.0))
    else:
        ax, ax_r = fig.subplots(1, 1), None
    cmap = matplotlib.colormaps["viridis"]
    span = max(float(z.max() - z.min()), 1e-12)
    emulated = (k >= EE2_K_RANGE[0]) & (k <= EE2_K_RANGE[1])
    for i, zi in enumerate(z):
        color = cmap(0.9 * (zi - z.min()) / span)
        ax.plot(k, boost[i], color=color, lw=1.6, label=f"z = {zi:g}")
        if ee2 is not None:
            ax.plot(k, ee2[i], color=color, lw=1.2, ls="--")
            ax_r.plot(k[emulated], 100 * (boost[i, emulated] / ee2[i, emulated] - 1), color=color, lw=1.4)
    ax.set_xscale("log")
    ax.set_ylabel(r"$B(k) = P_{\rm nl} / P_{\rm lin}$")
    ax.legend(fontsize=8, title=f"{emulator.kind} emulator" + (" (solid), EE2 (dashed)" if ee2 is not None else ""),
              title_fontsize=8)
    label = ", ".join(f"{n}={v:.4g}" for n, v in full.items())
    ax.set_title(label + (f"\n{note}" if note else ""), fontsize=8)
    if ax_r is not None:
        ax_r.axhspan(-1, 1, color="0.9")
        ax_r.axhline(0, color="k", lw=0.8)
        ax_r.set_ylabel("emulator / EE2 - 1 [%]")
        ax_r.set_xlabel(r"$k$ [$h$/Mpc]")
    else:
        ax.set_xlabel(r"$k$ [$h$/Mpc]")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path, note
