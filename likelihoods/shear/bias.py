"""Does an emulator bias LSST-Y1 cosmic shear?  Delta chi^2 and parameter shifts.

Following the COLA-emulator LSST-Y1 analysis (arXiv:2404.12344), the data
vector d = xi+-(theta) of an emulated P(k) is compared with the reference
(EuclidEmulator2) one through the covariance C of the survey:

    Delta chi^2 = (d_emu - d_ref)^T C^-1 (d_emu - d_ref)          over the points a scale cut keeps

across test cosmologies (Delta chi^2 < 1: the emulator error is below the
statistical noise of LSST-Y1), and the shift of the posterior, in units of its
width, when the emulator replaces the reference at the fiducial point:

* from two MCMC runs (:func:`posterior_shifts`): (mean_emu - mean_ref) / sigma_ref;
* by importance sampling (:func:`importance_shifts`): the emulator chain's samples
  reweighted by L_ref / L_emu give the reference posterior without a second chain
  (exact when the two posteriors overlap, as here; the effective sample size of the
  weights says how well they do);
* in the Gaussian (Fisher) approximation (:func:`fisher_shifts`), for a noiseless
  reference mock: Delta p = F^-1 J^T C^-1 (d_emu - d_ref), with J = dd_emu/dp by
  central differences and F = J^T C^-1 J + the Gaussian priors; shift_i =
  Delta p_i / sqrt((F^-1)_ii).  This costs 2 x (parameters) evaluations instead of
  two chains, and is what the workflow runs when chains are too expensive.

Data vectors: xi+ then xi- (pair, theta) as :mod:`cosmopipe.likelihoods.shear.limber`;
xi dimensionless, the same units for d and C.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from cosmopipe.emulators.ee2 import EE2_BOX
from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.dataset import read_dataset

from .scalecuts import scale_cut_mask

__all__ = ["ScaleCut", "scale_cuts", "delta_chi2", "read_test_cosmologies", "data_vectors", "fisher_shifts", "fisher_shifts_many",
           "posterior_shifts", "importance_shifts", "chi2_table", "shift_table", "plot_delta_chi2", "FisherShift"]


@dataclass(frozen=True)
class ScaleCut:
    """A named scale cut: l_max (None: all points) and its data-vector mask."""

    name: str
    lmax: float | None
    mask: np.ndarray

    @property
    def n_points(self) -> int:
        return int(self.mask.sum())


def scale_cuts(theta_edges_arcmin: np.ndarray, npairs: int, lmaxes: Sequence[float | None]) -> list[ScaleCut]:
    """ScaleCut of each l_max (theta_min = x0 / l_max, :mod:`cosmopipe.likelihoods.shear.scalecuts`)."""
    out = []
    for lmax in lmaxes:
        name = "none" if lmax is None else f"lmax{lmax:g}"
        out.append(ScaleCut(name, lmax, scale_cut_mask(theta_edges_arcmin, npairs, lmax)))
    return out


def _cut_inverse(cov: np.ndarray, mask: np.ndarray) -> np.ndarray:
    sub = cov[np.ix_(mask, mask)]
    try:
        chol = np.linalg.cholesky(sub)
    except np.linalg.LinAlgError:
        raise LikelihoodError("emulator bias: the covariance restricted to the scale cut is not positive definite") from None
    eye = np.eye(sub.shape[0])
    inv_l = np.linalg.solve(chol, eye)
    return inv_l.T @ inv_l


def delta_chi2(d_emu: np.ndarray, d_ref: np.ndarray, cov: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """Delta chi^2 of each data vector pair under each mask.

    d_emu, d_ref  (n, N) or (N,) data vectors (emulator, reference)
    cov           (N, N) covariance of the data vector (same units squared)
    masks         boolean masks (N,) of the points kept
    returns       (n_masks, n) (or (n_masks,) for single vectors), dimensionless
    """
    d_emu = np.asarray(d_emu, dtype=float)
    d_ref = np.asarray(d_ref, dtype=float)
    single = d_emu.ndim == 1
    d_emu, d_ref = np.atleast_2d(d_emu), np.atleast_2d(d_ref)
    cov = np.asarray(cov, dtype=float)
    n_data = cov.shape[0]
    if cov.shape != (n_data, n_data):
        raise LikelihoodError(f"emulator bias: covariance must be square, got shape {cov.shape}")
    if d_emu.shape != d_ref.shape or d_emu.shape[1] != n_data:
        raise LikelihoodError(f"emulator bias: data vectors {d_emu.shape} and {d_ref.shape} do not match the "
                              f"covariance of size {n_data}")
    if not (np.all(np.isfinite(d_emu)) and np.all(np.isfinite(d_ref))):
        raise LikelihoodError("emulator bias: data vectors have non-finite entries")
    diff = d_emu - d_ref
    out = np.empty((len(masks), diff.shape[0]))
    for i, mask in enumerate(masks):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n_data,) or not mask.any():
            raise LikelihoodError(f"emulator bias: mask {i} must be a non-empty boolean array of length {n_data}")
        r = diff[:, mask]
        out[i] = np.einsum("ni,ij,nj->n", r, _cut_inverse(cov, mask), r)
    return out[:, 0] if single else out


def read_test_cosmologies(path: str | Path, box: Mapping[str, tuple[float, float]] | None = None,
                     limit: int | None = None) -> tuple[list[str], list[Cosmology], list[str]]:
    """Cosmologies of a consolidated simulation dataset (pipeline.dataset) inside ``box``
    (default: EuclidEmulator2's); returns (ids kept, Cosmology of each, ids dropped)."""
    box = EE2_BOX if box is None else box
    ds = read_dataset(path)
    kept_ids, cosmos, dropped = [], [], []
    for sim_id, row in zip(ds.sim_ids, ds.params):
        values = dict(zip(ds.names, (float(x) for x in row)))
        inside = all(lo <= values[n] <= hi for n, (lo, hi) in box.items() if n in values)
        if not inside:
            dropped.append(sim_id)
            continue
        cosmos.append(Cosmology.from_dict({n: v for n, v in values.items() if n in Cosmology.names()}))
        kept_ids.append(sim_id)
        if limit is not None and len(cosmos) >= limit:
            break
    return kept_ids, cosmos, dropped


def data_vectors(vector_of: Callable[[Mapping[str, float]], np.ndarray], cosmologies: Sequence[Cosmology],
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(n, N) data vectors of ``vector_of(params)`` at each cosmology (nuisances: the
    caller's fiducial values)."""
    rows = []
    for cosmo in cosmologies:
        rows.append(np.asarray(vector_of(cosmo.to_dict()), dtype=float))
        if progress is not None:
            progress(1)
    return np.stack(rows)


@dataclass(frozen=True)
class FisherShift:
    """Gaussian-approximation shift of the posterior (module doc) under one scale cut.

    names   parameters
    shift   Delta p (parameter units)
    sigma   marginalised 68% widths sqrt((F^-1)_ii) (parameter units)
    """

    cut: str
    names: tuple[str, ...]
    shift: np.ndarray
    sigma: np.ndarray

    @property
    def in_sigma(self) -> np.ndarray:
        return self.shift / self.sigma


def fisher_shifts(vector_of: Callable[[Mapping[str, float]], np.ndarray], fiducial: Mapping[str, float],
                  steps: Mapping[str, float], delta_d: np.ndarray, cov: np.ndarray, cuts: Sequence[ScaleCut],
                  prior_sigma: Mapping[str, float] | None = None) -> list[FisherShift]:
    """Fisher shifts (module doc) for each scale cut.

    vector_of    params -> data vector of the model whose derivatives J are taken
    fiducial     point of the derivatives (all parameters of ``steps`` must be in it)
    steps        parameter -> central-difference step (parameter units)
    delta_d      d_emu - d_ref at the fiducial, (N,)
    prior_sigma  Gaussian prior widths added to F as 1/sigma^2 (flat priors: leave out)
    """
    return fisher_shifts_many(vector_of, fiducial, steps, {"": delta_d}, cov, cuts, prior_sigma)[""]


def fisher_shifts_many(vector_of: Callable[[Mapping[str, float]], np.ndarray], fiducial: Mapping[str, float],
                       steps: Mapping[str, float], deltas: Mapping[str, np.ndarray], cov: np.ndarray,
                       cuts: Sequence[ScaleCut], prior_sigma: Mapping[str, float] | None = None
                       ) -> dict[str, list[FisherShift]]:
    """:func:`fisher_shifts` of several data-vector errors ``deltas`` (label -> (N,))
    with one Jacobian: {label: [FisherShift per cut]}."""
    names = tuple(steps)
    missing = [n for n in names if n not in fiducial]
    if missing:
        raise LikelihoodError(f"emulator bias: no fiducial value for {', '.join(missing)}")
    jac = []
    for name in names:
        h = float(steps[name])
        if not h > 0:
            raise LikelihoodError(f"emulator bias: step of {name} must be positive, got {h!r}")
        up = vector_of({**fiducial, name: fiducial[name] + h})
        down = vector_of({**fiducial, name: fiducial[name] - h})
        jac.append((np.asarray(up) - np.asarray(down)) / (2.0 * h))
    jac = np.array(jac).T                      # (N, p)
    prior = np.array([(prior_sigma or {}).get(n, np.inf) for n in names], dtype=float)
    out = {label: [] for label in deltas}
    for cut in cuts:
        inv = _cut_inverse(np.asarray(cov, dtype=float), cut.mask)
        j = jac[cut.mask]
        fisher = j.T @ inv @ j + np.diag(1.0 / prior**2)
        try:
            f_inv = np.linalg.inv(fisher)
        except np.linalg.LinAlgError:
            raise LikelihoodError(f"emulator bias: Fisher matrix of cut {cut.name} is singular (a parameter the "
                                  "data do not constrain and no Gaussian prior bounds)") from None
        for label, delta in deltas.items():
            shift = f_inv @ (j.T @ inv @ np.asarray(delta, dtype=float)[cut.mask])
            out[label].append(FisherShift(cut.name, names, shift, np.sqrt(np.diag(f_inv))))
    return out


def posterior_shifts(emu_summary: str | Path, ref_summary: str | Path) -> dict[str, float]:
    """(mean_emu - mean_ref) / std_ref per common parameter, from the ``summary.json``
    files of two sample-stage runs (a run's chain directory or the file itself)."""
    def read(path):
        path = Path(path)
        path = path / "summary.json" if path.is_dir() else path
        if not path.is_file():
            raise LikelihoodError(f"emulator bias: no sample summary at {path} (run the sample stage first)")
        return json.loads(path.read_text())["params"]

    emu, ref = read(emu_summary), read(ref_summary)
    common = [n for n in ref if n in emu]
    if not common:
        raise LikelihoodError("emulator bias: the two chains share no parameter")
    return {n: (emu[n]["mean"] - ref[n]["mean"]) / ref[n]["std"] for n in common}


def importance_shifts(samples: np.ndarray, lnl_emu: np.ndarray, lnl_ref: np.ndarray,
                      names: Sequence[str]) -> tuple[dict[str, float], float]:
    """({name: (mean_emu - mean_ref) / std_ref}, effective sample size) from samples of the
    emulator posterior, reweighted by L_ref / L_emu to the reference posterior (same priors).
    ESS = (sum w)^2 / sum w^2 counts the samples the reference estimate effectively rests on."""
    samples = np.asarray(samples, dtype=float)
    delta = np.asarray(lnl_ref, dtype=float) - np.asarray(lnl_emu, dtype=float)
    if samples.shape != (delta.size, len(names)) or not np.all(np.isfinite(delta)):
        raise LikelihoodError(f"emulator bias: importance weights need finite ln L at every sample; got shapes "
                              f"{samples.shape}, {delta.shape}")
    w = np.exp(delta - delta.max())
    ess = float(w.sum() ** 2 / np.sum(w**2))
    mean_emu = samples.mean(axis=0)
    mean_ref = w @ samples / w.sum()
    std_ref = np.sqrt(w @ (samples - mean_ref) ** 2 / w.sum())
    return {n: float((a - b) / c) for n, a, b, c in zip(names, mean_emu, mean_ref, std_ref)}, ess


# -- reports ---------------------------------------------------------------------------
def chi2_table(cuts: Sequence[ScaleCut], dchi2: np.ndarray) -> str:
    """Markdown table of the Delta chi^2 distribution per scale cut."""
    lines = ["| scale cut | l_max | points | median | 68th pct | 95th pct | max | fraction > 1 |",
             "|---|---|---|---|---|---|---|---|"]
    for cut, row in zip(cuts, dchi2):
        lmax = "none" if cut.lmax is None else f"{cut.lmax:g}"
        q50, q68, q95 = np.percentile(row, [50, 68, 95])
        lines.append(f"| {cut.name} | {lmax} | {cut.n_points} | {q50:.3g} | {q68:.3g} | {q95:.3g} | "
                     f"{row.max():.3g} | {np.mean(row > 1.0):.2f} |")
    return "\n".join(lines) + "\n"


def shift_table(shifts: Sequence[FisherShift], show: Sequence[str] | None = None) -> str:
    """Markdown table of shifts in sigma (rows: scale cuts, columns: parameters)."""
    names = list(show) if show else list(shifts[0].names)
    idx = [shifts[0].names.index(n) for n in names]
    lines = ["| scale cut | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for s in shifts:
        lines.append(f"| {s.cut} | " + " | ".join(f"{s.in_sigma[i]:+.3f}" for i in idx) + " |")
    return "\n".join(lines) + "\n"


def plot_delta_chi2(cuts: Sequence[ScaleCut], dchi2: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Box plot with the points of Delta chi^2 (log scale) per scale cut; the line marks 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    positions = np.arange(len(cuts))
    floor = max(np.min(dchi2[dchi2 > 0]) if np.any(dchi2 > 0) else 1e-6, 1e-8)
    shown = np.maximum(dchi2, floor)
    ax.boxplot(list(shown), positions=positions, widths=0.5, whis=(5, 95), showfliers=False)
    rng = np.random.default_rng(0)  # jitter only spreads the points sideways
    for i, row in enumerate(shown):
        ax.scatter(i + rng.uniform(-0.15, 0.15, row.size), row, s=8, alpha=0.6, color="C0")
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(positions, [("none" if c.lmax is None else f"{c.lmax:g}") for c in cuts])
    ax.set_xlabel(r"scale cut $\ell_\mathrm{max}$")
    ax.set_ylabel(r"$\Delta\chi^2$ (emulator vs EE2)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
