"""The boost emulator: B(k, z; theta) = P_nl / P_lin learned from simulations.

It models Q = ln B of a consolidated simulation dataset
(:class:`cosmopipe.sims.dataset.SimDataset`) with a PCA + MLP
(:mod:`cosmopipe.emulators.core`) over the dataset's varied parameters; the other
cosmology parameters are fixed at the dataset's values.  ``pnl`` multiplies by
the linear power of an attached :class:`~emulators.linear.LinearEmulator`
(fast) or of CAMB (slow, one run per cosmology).

The dataset's boost is that of CDM + baryons (what the particles trace);
``pnl`` applies it to the linear spectrum of the linear emulator's species
('tot' by default, the all-matter spectrum that EuclidEmulator2's boost
multiplies too).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosmopipe.provenance import code_version
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.linear import linear_power

from .core import PCANetwork, summary
from .io import save
from .linear import K_MARGIN
from .params import ParameterSpace
from .training import FitSettings, fit_pca_network

__all__ = ["BoostEmulator", "train_boost", "dataset_space"]


@dataclass(frozen=True)
class BoostEmulator:
    """Nonlinear boost B = P_nl / P_lin of the COLA simulations.

    model   PCA + MLP of ln B on the training (z, k) grid
    linear  optional linear-power emulator used by :meth:`pnl`
    info    provenance: dataset hash, training settings and time, scores, code version
    """

    model: PCANetwork
    linear: Any = None
    info: dict = field(default_factory=dict)
    kind = "boost"

    __repr__ = __str__ = summary

    @property
    def space(self) -> ParameterSpace:
        return self.model.space

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the varied parameters, the order of (n, p) parameter arrays."""
        return self.space.names

    @property
    def box(self) -> dict[str, tuple[float, float]]:
        return self.space.box

    @property
    def fixed(self) -> dict[str, float]:
        return dict(self.space.fixed)

    @property
    def k_range(self) -> tuple[float, float]:
        return self.model.k_range

    @property
    def z_range(self) -> tuple[float, float]:
        return self.model.z_range

    def read_params(self, params: Any, extrapolate: bool = False) -> tuple[np.ndarray, bool]:
        return self.space.read(params, extrapolate, who="boost emulator")

    def grids(self, k: Any, z: Any, who: str = "boost emulator") -> tuple[np.ndarray, np.ndarray]:
        """Validated 1-d k [h/Mpc] and z inside the trained ranges."""
        op = self.model.operator(k, z, who)
        return op.k, op.z

    def log_boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """ln B, shaped like :meth:`boost`."""
        theta, single = self.read_params(params, extrapolate)
        q = self.model.apply(theta, self.model.operator(k, z, "boost emulator"))
        return q[0] if single else q

    def boost(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """B(k, z) = P_nl / P_lin.

        k       wavenumbers [h/Mpc], scalar or 1-d, inside :attr:`k_range`
        z       redshifts, scalar or 1-d, inside :attr:`z_range`
        params  one cosmology (Cosmology or dict) -> (nz, nk); a table (dict of
                arrays, structured array, (n, p) array in :attr:`params` order) ->
                (n, nz, nk)
        extrapolate  evaluate outside the training box instead of raising ValueError
        """
        q = self.log_boost(k, z, params, extrapolate)
        return np.exp(q, out=q)  # in place: q is a fresh array

    def pnl(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """Nonlinear power P_lin x B [(Mpc/h)^3], shaped like :meth:`boost`.

        With an attached linear emulator this is one network pass each; without
        one CAMB runs for every cosmology (seconds each)."""
        theta, single = self.read_params(params, extrapolate)
        op = self.model.operator(k, z, "boost emulator")
        z_arr, k_arr = op.z, op.k
        q = self.model.apply(theta, op)
        if self.linear is not None:
            q = q + self.linear.log_pk_theta(theta, self.space, z_arr, k_arr, extrapolate)
            out = np.exp(q)
        else:
            out = np.exp(q) * camb_pk_lin(self.space.cosmology_dicts(theta), z_arr, k_arr)
        return out[0] if single else out

    def save(self, path):
        """Write to one HDF5 file (see emulators.io); returns the path."""
        return save(self, path)


def camb_pk_lin(cosmologies: list[dict], z: np.ndarray, k: np.ndarray, species: str = "tot") -> np.ndarray:
    """Linear P(k, z) [(Mpc/h)^3] from CAMB for each cosmology: (n, nz, nk)."""
    out = np.empty((len(cosmologies), z.size, k.size))
    for i, params in enumerate(cosmologies):
        lin = linear_power(Cosmology.from_dict(params), redshifts=z, kmax=K_MARGIN * max(float(k.max()), 1.0))
        for j, zj in enumerate(z):
            out[i, j] = lin(k, zj, species=species)
    return out


def dataset_space(dataset) -> ParameterSpace:
    """Varied parameters and box of a SimDataset, with its fixed values; a
    non-varied parameter that is not constant across the dataset is an error."""
    fixed = {}
    for name in dataset.names:
        if name in dataset.varied:
            continue
        column = dataset.column(name)
        if not np.allclose(column, column[0], rtol=1e-12, atol=0.0):
            raise ValueError(f"dataset: parameter {name} is not in 'varied' but takes different values "
                             f"({column.min():g} to {column.max():g}); an emulator cannot ignore it")
        fixed[name] = float(column[0])
    return ParameterSpace(tuple(dataset.varied), dataset.lower, dataset.upper, fixed)


def _validation_scores(ratio_minus_one: np.ndarray, k: np.ndarray, z: np.ndarray) -> dict:
    """Summary of |B_emu/B - 1| (n, nz, nk) over held-out cosmologies."""
    err = np.abs(ratio_minus_one)
    sel = k <= 1.0
    scores = {"n": int(err.shape[0])}
    if err.shape[0] == 0:
        return scores
    per_cosmo = err[:, :, sel].max(axis=(1, 2)) if sel.any() else err.max(axis=(1, 2))
    scores.update({
        "pointwise_p50": float(np.percentile(err, 50)), "pointwise_p95": float(np.percentile(err, 95)),
        "max": float(err.max()),
        "max_k_le_1_p50": float(np.percentile(per_cosmo, 50)),
        "max_k_le_1_p95": float(np.percentile(per_cosmo, 95)),
        "fraction_within_0.5pct_k_le_1": float(np.mean(per_cosmo <= 0.005)),
    })
    return scores


def train_boost(dataset, settings: FitSettings = FitSettings(), client=None, k_max: float | None = None,
                z_max: float | None = None, linear=None) -> BoostEmulator:
    """Fit a boost emulator to a :class:`cosmopipe.sims.dataset.SimDataset`.

    k_max, z_max  optionally train on k <= k_max [h/Mpc] and z <= z_max only
    linear        a linear-power emulator to attach (see :mod:`cosmopipe.emulators.linear`)
    client        optional dask.distributed Client (one task per network)
    """
    t0 = time.perf_counter()
    space = dataset_space(dataset)
    boost = np.asarray(dataset.boost, dtype=float)
    bad = ~np.all(np.isfinite(boost) & (boost > 0), axis=(1, 2))
    if bad.any():
        ids = [dataset.sim_ids[i] for i in np.flatnonzero(bad)[:5]]
        raise ValueError(f"dataset: boost of simulation(s) {', '.join(ids)} has non-positive or non-finite values")
    z = np.asarray(dataset.z, dtype=float)
    k = np.asarray(dataset.k, dtype=float)
    z_order = np.argsort(z)
    k_order = np.argsort(k)
    zsel = z_order[z[z_order] <= z_max] if z_max is not None else z_order
    ksel = k_order[k[k_order] <= k_max] if k_max is not None else k_order
    if zsel.size == 0 or ksel.size < 2:
        raise ValueError(f"dataset: no data left below z_max={z_max} / k_max={k_max} "
                         f"(dataset z {z.min():g}-{z.max():g}, k {k.min():g}-{k.max():g} h/Mpc)")
    q = np.log(boost[:, zsel][:, :, ksel])
    theta = dataset.varied_params()
    model, report = fit_pca_network(theta, q, space, z[zsel], k[ksel], settings, client=client)
    val = np.asarray(report.val_indices, dtype=int)
    scores = _validation_scores(np.expm1(report.val_prediction - q[val]), k[ksel], z[zsel]) \
        if val.size else {"n": 0}
    info = {
        "dataset_hash": dataset.hash,
        "dataset_design": str(dataset.attrs.get("design", "")),
        "dataset_sim_config": str(dataset.attrs.get("sim_config", "")),
        "n_cosmologies": int(len(dataset)),
        "training_settings": settings.to_dict(),
        "training_cuts": {"k_max": k_max, "z_max": z_max},
        "training_report": report.to_dict(),
        "training_seconds": time.perf_counter() - t0,
        "validation": scores,
        "code_version": code_version(),
    }
    return BoostEmulator(model=model, linear=linear, info=info)
