"""Error maps of nonlinear-power models over the w0-wa plane, against EuclidEmulator2.

At each point of a w0 x wa grid (the other parameters at the mock's fiducial) every
boost model's P_nl is compared with EE2's: the rms over 0.1 <= k <= 1 h/Mpc of
P_model / P_EE2 - 1 at each redshift of ``z``.  theta_LCDM is the same point for the
whole grid, so the LCDM-anchored models cost one CAMB run (with HMcode) per grid
point.  Written by the ``emulator_bias`` stage when ``boost_maps`` is set.
"""
from __future__ import annotations

import numpy as np

from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.likelihoods.theory.lcdm_boost import method_source
from cosmopipe.sims.cosmology import Cosmology

__all__ = ["boost_error_maps", "plot_boost_maps"]

K_RANGE = (0.1, 1.0)   # h/Mpc: where LSST-Y1's small-scale signal and EE2's accuracy claim meet


def boost_error_maps(methods, emulator: str | None, fiducial: dict, n: int, z=(0.0, 1.0), conventions=None,
                     progress: bool = False) -> dict:
    """{'w0': (n,), 'wa': (n,), 'z': (nz,), method: (nz, n_wa, n_w0) rms fractional error}."""
    from tqdm import tqdm

    w0 = np.linspace(*EE2_BOX["w0"], n)
    wa = np.linspace(*EE2_BOX["wa"], n)
    k = np.geomspace(*K_RANGE, 30)
    z = np.asarray(z, dtype=float)
    sources = {m: method_source(m, emulator=emulator, conventions=conventions) for m in methods}
    reference = method_source("ee2", conventions=conventions)
    base = {name: fiducial[name] for name in Cosmology.names() if name in fiducial}
    out = {"w0": w0, "wa": wa, "z": z, **{m: np.empty((z.size, n, n)) for m in methods}}
    grid = [(i, j) for i in range(n) for j in range(n)]
    for i, j in tqdm(grid, desc="w0-wa boost maps", disable=not progress):
        cosmo = Cosmology.from_dict({**base, "w0": float(w0[j]), "wa": float(wa[i])})
        # HMcode first: its CAMB run then serves every model's linear power
        order = sorted(methods, key=lambda m: "hmcode" not in m)
        lnp = {m: sources[m].log_pk(cosmo, k, z) for m in order}
        ref = reference.log_pk(cosmo, k, z)
        for m in methods:
            out[m][:, i, j] = np.sqrt(np.mean(np.expm1(lnp[m] - ref) ** 2, axis=1))
    return out


def plot_boost_maps(maps: dict, path, labels: dict) -> None:
    """One panel per model (rows) and redshift (columns): the rms error in per cent,
    with the 1 % contour; the cross marks LCDM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in maps if m not in ("w0", "wa", "z")]
    z = maps["z"]
    fig, axes = plt.subplots(len(methods), z.size, figsize=(3.2 * z.size + 0.8, 2.7 * len(methods)),
                             squeeze=False, sharex=True, sharey=True)
    vmax = max(1.0, float(np.percentile(np.concatenate([100 * maps[m].ravel() for m in methods]), 98)))
    for r, m in enumerate(methods):
        for c, zc in enumerate(z):
            ax = axes[r][c]
            im = ax.pcolormesh(maps["w0"], maps["wa"], 100 * maps[m][c], shading="auto", vmin=0, vmax=vmax,
                               cmap="viridis")
            ax.contour(maps["w0"], maps["wa"], 100 * maps[m][c], levels=[1.0], colors="w", linewidths=1)
            ax.plot(-1, 0, "w+", ms=8)
            ax.set_title(f"{labels.get(m, m)}, z = {zc:g}", fontsize=8)
            if r == len(methods) - 1:
                ax.set_xlabel(r"$w_0$")
            if c == 0:
                ax.set_ylabel(r"$w_a$")
    fig.colorbar(im, ax=axes, label=r"rms $|P/P_\mathrm{EE2} - 1|$ [%], $0.1 \leq k \leq 1\,h/$Mpc", shrink=0.8)
    fig.savefig(path, dpi=130)
    plt.close(fig)
