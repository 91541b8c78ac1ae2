"""Fitting a :class:`~emulators.core.PCANetwork` to a tabulated field.

Choices, measured on ln B of EuclidEmulator2 at 200 Latin-hypercube
cosmologies (6 wCDM parameters, 8 redshifts 0-3, 100 k in 0.01-1.5 h/Mpc),
tested on 50 others, error = max over k <= 1 h/Mpc and z of |B_emu/B - 1|
per test cosmology (p95 over cosmologies), one core:

* layout: one PCA of the flattened (z, k) field with one network ('joint':
  p95 0.62 % in 5 s at 3000 L-BFGS iterations, 0.49 % in 25 s at 10000)
  beats one network per redshift ('per_z': 0.69 % in 27 s / 0.57 % in 82 s)
  and z as a network input (0.84 % in 20 s at 3000 iterations);
* optimiser: our numpy L-BFGS (0.49 %) against scikit-learn's MLPRegressor
  with L-BFGS (0.83 %: it stops early on its own tolerances) or Adam
  (0.86 % in 31 s), and our Adam (1.1 % in 4 s);
* loss: PCA coefficients divided by one common scale (the loss is then
  the squared error of ln B) rather than each standardised (p95 2.1 %:
  the network then spends its capacity on components at the noise level);
* PCA: keeping 1 - 1e-6 of the variance (15 components) costs 0.05 % at
  most; a random restart or an ensemble of three networks changed p95 by
  less than the seed-to-seed scatter (0.49-0.56 %).

Networks for different blocks (redshifts) and random restarts are
independent fits: with a Dask client they run as one task each.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .core import MODES, PCANetwork
from .network import TrainConfig, stack_mlps, train_mlp
from .params import ParameterSpace

__all__ = ["FitSettings", "FitReport", "fit_pca_network", "split_indices"]

log = logging.getLogger("cosmopipe.emulators")


@dataclass(frozen=True)
class FitSettings:
    """How to fit a PCA + MLP model.

    mode                 'joint' or 'per_z' (see emulators.core)
    pca_variance         fraction of the variance of Y the kept components explain
    max_components       upper limit on the components per block (None: no limit)
    network              the MLP and its optimiser (emulators.network.TrainConfig)
    validation_fraction  share of the cosmologies held out for early stopping and
                         the reported validation scores (none when n * fraction < 1)
    refit                after early stopping, fit again on all cosmologies for the
                         best number of iterations (the validation scores are
                         those of the first fit)
    restarts             independent fits with different seeds; the best on the
                         validation set (or the training set without one) is kept
    seed                 seed of the validation split (restart r uses network.seed + r)
    """

    mode: str = "joint"
    pca_variance: float = 1.0 - 1e-6
    max_components: int | None = None
    network: TrainConfig = field(default_factory=lambda: TrainConfig(hidden=(64, 64), epochs=10000))
    validation_fraction: float = 0.1
    refit: bool = True
    restarts: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"emulator mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 < self.pca_variance <= 1.0:
            raise ValueError(f"pca variance must be in (0, 1], got {self.pca_variance}")
        if self.max_components is not None and self.max_components < 1:
            raise ValueError(f"pca max_components must be a positive integer, got {self.max_components}")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be a positive integer, got {self.restarts}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["network"]["hidden"] = list(self.network.hidden)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FitSettings":
        d = dict(d)
        net = dict(d.pop("network", {}))
        if "hidden" in net:
            net["hidden"] = tuple(net["hidden"])
        return cls(network=TrainConfig(**net), **d)


@dataclass(frozen=True)
class FitReport:
    """Outcome of a fit: per block (redshift, or one for 'joint') the kept
    components, the losses (mean squared error of Y) and best iteration of the
    chosen restart in the validation run; the held-out cosmologies; whether
    the final networks were refitted on all cosmologies; wall seconds;
    ``val_prediction``: Y of the validation-run model at the held-out
    cosmologies (n_val, nz, nk), for honest validation scores."""

    n_train: int
    val_indices: tuple[int, ...]
    n_components: tuple[int, ...]
    train_loss: tuple[float, ...]
    val_loss: tuple[float | None, ...]
    iterations: tuple[int, ...]
    refit: bool
    seconds: float
    val_prediction: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-able summary (without the validation prediction array)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "val_prediction"}


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices; no validation set when n * fraction < 1
    or fewer than three rows would remain for training."""
    n_val = int(np.floor(n * fraction))
    if n - n_val < 3:
        n_val = 0
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _pca(y: np.ndarray, variance: float, max_components: int | None):
    """Mean, orthonormal basis (c, m) and kept count for rows y (n, m)."""
    mean = y.mean(axis=0)
    _, s, vt = np.linalg.svd(y - mean, full_matrices=False)
    power = s**2
    total = power.sum()
    if total <= 0:
        # A field that does not vary (B = 1 on linear scales): one null component.
        return mean, vt[:1] * 0.0, 1
    explained = np.cumsum(power) / total
    n_keep = int(np.searchsorted(explained, variance * (1 - 1e-12)) + 1)
    n_keep = min(n_keep, int(np.sum(power > total * 1e-24)), vt.shape[0])
    if max_components is not None:
        n_keep = min(n_keep, max_components)
    return mean, vt[:max(n_keep, 1)], max(n_keep, 1)


def _fit_blocks(x, blocks, rows, val, settings: FitSettings, client, epochs=None):
    """PCA and networks of every block on training ``rows`` (early stopping on
    ``val``).  ``epochs``: per-block iteration counts that override the settings."""
    means, bases, counts, scales, jobs = [], [], [], [], []
    for ib, b in enumerate(blocks):
        mean, basis, count = _pca(b[rows], settings.pca_variance, settings.max_components)
        coeff = (b - mean) @ basis.T
        scale = float(np.std(coeff[rows, 0]))
        scale = scale if scale > 0 else 1.0
        means.append(mean)
        bases.append(basis)
        counts.append(count)
        scales.append(scale)
        target = coeff / scale
        for r in range(settings.restarts if epochs is None else 1):
            seed = settings.network.seed + (r if epochs is None else epochs[ib][1])
            cfg = dataclasses.replace(settings.network, seed=seed,
                                      **({} if epochs is None else {"epochs": epochs[ib][0]}))
            jobs.append((x[rows], target[rows], cfg, x[val], target[val]))
    if client is not None:
        results = client.gather([client.submit(train_mlp, *job, pure=False) for job in jobs])
    else:
        results = [train_mlp(*job) for job in jobs]
    per_block = len(jobs) // len(blocks)
    chosen = []
    for ib in range(len(blocks)):
        candidates = list(enumerate(results[ib * per_block:(ib + 1) * per_block]))
        r, (net, rep) = min(candidates, key=lambda c: c[1][1].val_loss if c[1][1].val_loss is not None
                            else c[1][1].train_loss)
        chosen.append((net, rep, r))
    return means, bases, counts, scales, chosen


def _assemble(space, z, k, mode, means, bases, counts, scales, chosen) -> PCANetwork:
    c = max(counts)
    basis = np.stack([np.pad(bs, ((0, c - bs.shape[0]), (0, 0))) for bs in bases])
    return PCANetwork(space=space, z=np.asarray(z, float), k=np.asarray(k, float), mode=mode,
                      pca_mean=np.stack(means), pca_basis=basis, n_components=np.asarray(counts),
                      output_scale=np.asarray(scales), network=stack_mlps([net for net, _, _ in chosen]))


def fit_pca_network(theta: np.ndarray, y: np.ndarray, space: ParameterSpace, z: np.ndarray, k: np.ndarray,
                    settings: FitSettings = FitSettings(), client=None) -> tuple[PCANetwork, FitReport]:
    """Fit Y (n, nz, nk) tabulated at parameters theta (n, p) on the grid
    z (nz,) increasing x k (nk,) [h/Mpc] increasing.

    With a validation set the networks stop early on it and, with
    ``settings.refit``, are then fitted again on all cosmologies for the number
    of iterations that was best on the validation set (the reported losses
    are those of the validation run).  ``client``: optional
    dask.distributed Client; each (block, restart) network is then one task.
    Returns (model, report).
    """
    t0 = time.perf_counter()
    theta = np.asarray(theta, dtype=float)
    y = np.asarray(y, dtype=float)
    n = theta.shape[0]
    if theta.shape != (n, len(space.names)) or y.shape != (n, len(z), len(k)):
        raise ValueError(f"fit: parameters {theta.shape} and field {y.shape} do not match {len(space.names)} "
                         f"parameters on a {len(z)} x {len(k)} (z, k) grid")
    if not np.all(np.isfinite(y)):
        raise ValueError("fit: the training field has non-finite values")
    if n < 3:
        raise ValueError(f"fit: need at least 3 training cosmologies, got {n}")
    train, val = split_indices(n, settings.validation_fraction, settings.seed)
    x = space.to_unit(theta)
    blocks = y.reshape(1, n, -1) if settings.mode == "joint" else y.transpose(1, 0, 2)

    first = _fit_blocks(x, blocks, train, val, settings, client)
    model = _assemble(space, z, k, settings.mode, *first)
    reports, scales = [rep for _, rep, _ in first[4]], first[3]
    val_pred = model.training_grid(theta[val]) if val.size else None
    refit = settings.refit and val.size > 0
    if refit:
        epochs = [(max(rep.best_iteration, settings.network.check_every), r) for _, rep, r in first[4]]
        everything = np.arange(n)
        model = _assemble(space, z, k, settings.mode,
                          *_fit_blocks(x, blocks, everything, everything[:0], settings, client, epochs=epochs))
    report = FitReport(n_train=int(train.size), val_indices=tuple(int(i) for i in val),
                       n_components=tuple(int(c) for c in model.n_components),
                       train_loss=tuple(r.train_loss * s**2 for r, s in zip(reports, scales)),
                       val_loss=tuple(None if r.val_loss is None else r.val_loss * s**2
                                      for r, s in zip(reports, scales)),
                       iterations=tuple(r.best_iteration for r in reports), refit=refit,
                       seconds=time.perf_counter() - t0, val_prediction=val_pred)
    log.info("fitted %s PCA+MLP: %d training / %d validation cosmologies%s, components %s, %.1f s",
             settings.mode, train.size, val.size, ", refitted on all" if refit else "", list(report.n_components),
             report.seconds)
    return model, report
