"""The dark-energy response R = B(theta) / B(theta_LCDM), learned from LCDM twin runs.

A campaign with ``twins: lcdm`` simulates every design point ``X`` and then
``X-lcdm``: the same cosmology at w0 = -1, wa = 0 with the same seed
(pipeline/simulate.py).  Their ratio cancels most of COLA's resolution error
and all of the sample variance the pair shares, so the hybrid

    B(k, z; theta) = B_EE2(k, z; theta_LCDM) * R_emu(k, z; theta)

needs one network pass where the ratio form B_COLA(theta) / B_COLA(theta_LCDM)
needs two, and R_emu may vary fewer parameters than the dataset: those R barely
depends on (measure it with :func:`response_sensitivity`) are left out of the
network's inputs, which makes its training set denser in the others.

R = 1 exactly on the LCDM slice.  The twins are added to the training rows
with ln R = 0 (``anchor``), and the largest |R_emu(theta_LCDM) - 1| over them
is recorded in the provenance (``lcdm_check``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from cosmopipe.provenance import code_version
from cosmopipe.sims.dataset import SimDataset

from .boost import _validation_scores, dataset_space
from .core import PCANetwork, summary
from .ee2 import EE2_BOX, ee2_boost
from .io import save
from .params import ParameterSpace
from .synthetic import WCDM_PARAMS, ee2_dataset
from .training import FitSettings, fit_pca_network

__all__ = ["ResponseEmulator", "train_response", "twin_pairs", "response_sensitivity", "ee2_twin_dataset",
           "TWIN_SUFFIX", "LCDM"]

log = logging.getLogger("cosmopipe.emulators")

# The simulate stage's suffix of an LCDM twin (pipeline.simulate.TWIN_SUFFIX; the
# emulators layer may not import the pipeline, a test keeps the two equal).
TWIN_SUFFIX = "-lcdm"
LCDM = {"w0": -1.0, "wa": 0.0}
# Above this |R_emu(theta_LCDM) - 1| training logs a warning: the anchor failed.
LCDM_WARN = 1e-3


@dataclass(frozen=True)
class ResponseEmulator:
    """R(k, z; theta) = B(theta) / B(theta_LCDM) (module docstring).

    space   the parameters callers give: the training dataset's varied ones, its box and fixed values
    model   PCA + MLP of ln R over a subset of ``space.names`` (model.space.names)
    linear  optional linear-power emulator (carried for the hybrid's ``pnl``)
    info    provenance: dataset hash, pairs used, settings, scores, lcdm_check
    """

    space: ParameterSpace
    model: PCANetwork
    linear: Any = None
    info: dict = field(default_factory=dict)
    kind = "response"

    def __post_init__(self):
        missing = [n for n in self.model.space.names if n not in self.space.names]
        if missing:
            raise ValueError(f"response emulator: network inputs {', '.join(missing)} are not among the varied "
                             f"parameters {', '.join(self.space.names)}")
        if not any(n in self.model.space.names for n in LCDM):
            raise ValueError("response emulator: the network varies neither w0 nor wa")
        object.__setattr__(self, "_columns", np.array([self.space.names.index(n) for n in self.model.space.names]))

    __repr__ = __str__ = summary

    @property
    def params(self) -> tuple[str, ...]:
        return self.space.names

    @property
    def inputs(self) -> tuple[str, ...]:
        """The parameters R_emu depends on (a subset of :attr:`params`)."""
        return self.model.space.names

    @property
    def box(self):
        return self.space.box

    @property
    def fixed(self):
        return dict(self.space.fixed)

    @property
    def k_range(self):
        return self.model.k_range

    @property
    def z_range(self):
        return self.model.z_range

    def grids(self, k: Any, z: Any, who: str = "response emulator"):
        op = self.model.operator(k, z, who)
        return op.k, op.z

    def log_response_theta(self, theta: np.ndarray, op) -> np.ndarray:
        """ln R (n, nz, nk) at (n, p) rows in :attr:`params` order on a grid operator."""
        return self.model.apply(theta[:, self._columns], op)

    def log_response(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """ln R, shaped like :meth:`response`."""
        theta, single = self.space.read(params, extrapolate, who="response emulator")
        q = self.log_response_theta(theta, self.model.operator(k, z, "response emulator"))
        return q[0] if single else q

    def response(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """R(k, z) = B(theta) / B(theta_LCDM); k [h/Mpc], z and params as for
        :meth:`cosmopipe.emulators.boost.BoostEmulator.boost`."""
        q = self.log_response(k, z, params, extrapolate)
        return np.exp(q, out=q)

    def save(self, path):
        return save(self, path)


# -- pairs -------------------------------------------------------------------------
def twin_pairs(dataset) -> tuple[np.ndarray, np.ndarray, int]:
    """Row indices (X, X-lcdm) of the complete twin pairs and the number of unpaired points.

    A twin whose parameters are not its partner's at w0 = -1, wa = 0 is an error
    naming the ids.  A point without its twin, or a twin without its point (an
    interrupted campaign finishes them in any order), is skipped and counted."""
    ids = [str(s) for s in dataset.sim_ids]
    index = {sid: i for i, sid in enumerate(ids)}
    orphans = [sid for sid in ids if sid.endswith(TWIN_SUFFIX) and sid[:-len(TWIN_SUFFIX)] not in index]
    points = [i for i, sid in enumerate(ids) if not sid.endswith(TWIN_SUFFIX)]
    paired = [(i, index[ids[i] + TWIN_SUFFIX]) for i in points if ids[i] + TWIN_SUFFIX in index]
    unpaired = len(points) - len(paired) + len(orphans)
    if not paired:
        raise ValueError(f"dataset: no LCDM twin pairs (ids X and X{TWIN_SUFFIX}) among its {len(ids)} simulations; "
                         "simulate the design with 'twins: lcdm'")
    a = np.array([p[0] for p in paired])
    b = np.array([p[1] for p in paired])
    expect = dataset.params[a].copy()
    for name, value in LCDM.items():
        if name in dataset.names:
            expect[:, dataset.names.index(name)] = value
    bad = ~np.all(np.isclose(dataset.params[b], expect, rtol=1e-9, atol=1e-12), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"dataset: {ids[b[i]]} is not the LCDM twin of {ids[a[i]]} (its parameters differ "
                         "by more than w0 -> -1, wa -> 0)")
    if unpaired:
        log.info("response: %d of %d simulations have no LCDM twin and are skipped", unpaired - len(orphans),
                 len(points))
    if orphans:
        log.info("response: %d LCDM twin(s) without their simulation are skipped (%s%s)", len(orphans),
                 ", ".join(orphans[:5]), ", ..." if len(orphans) > 5 else "")
    return a, b, unpaired


def _grid_cuts(dataset, k_max, z_max):
    z, k = np.asarray(dataset.z, float), np.asarray(dataset.k, float)
    zsel = np.argsort(z)
    ksel = np.argsort(k)
    if z_max is not None:
        zsel = zsel[z[zsel] <= z_max]
    if k_max is not None:
        ksel = ksel[k[ksel] <= k_max]
    if zsel.size == 0 or ksel.size < 2:
        raise ValueError(f"dataset: no data left below z_max={z_max} / k_max={k_max}")
    return zsel, ksel


def _log_response(dataset, a, b, zsel, ksel) -> np.ndarray:
    boost = np.asarray(dataset.boost, float)
    ratio = boost[a] / boost[b]
    bad = ~np.all(np.isfinite(ratio) & (ratio > 0), axis=(1, 2))
    if bad.any():
        raise ValueError(f"dataset: non-positive or non-finite boost in pair(s) "
                         f"{', '.join(dataset.sim_ids[i] for i in a[bad][:5])}")
    return np.log(ratio[:, zsel][:, :, ksel])


def _input_space(space: ParameterSpace, params: Sequence[str] | None) -> ParameterSpace:
    if params is None:
        return space
    params = tuple(params)
    unknown = [p for p in params if p not in space.names]
    if unknown or not params:
        raise ValueError(f"train.params: {', '.join(unknown) or 'empty'} not varied by the dataset; allowed: "
                         f"{', '.join(space.names)}")
    if not any(p in LCDM for p in params):
        raise ValueError(f"train.params must include w0 or wa (the response is 1 without them), got {', '.join(params)}")
    ordered = tuple(n for n in space.names if n in params)
    cols = [space.names.index(n) for n in ordered]
    return ParameterSpace(ordered, space.lower[cols], space.upper[cols], space.fixed)


def train_response(dataset, settings: FitSettings = FitSettings(), params: Sequence[str] | None = None,
                   k_max: float | None = None, z_max: float | None = None, linear=None, anchor: bool = True,
                   client=None) -> ResponseEmulator:
    """Fit R = B(X) / B(X-lcdm) over the twin pairs of a SimDataset.

    params  the network's inputs (default: every varied parameter); must include w0 or wa
    anchor  also train on the twins themselves with ln R = 0
    k_max, z_max, linear, client: as :func:`cosmopipe.emulators.boost.train_boost`
    """
    t0 = time.perf_counter()
    space = dataset_space(dataset)
    inputs = _input_space(space, params)
    a, b, unpaired = twin_pairs(dataset)
    zsel, ksel = _grid_cuts(dataset, k_max, z_max)
    q = _log_response(dataset, a, b, zsel, ksel)
    theta_all = dataset.varied_params()
    theta, lcdm = theta_all[a], theta_all[b]
    cols = [space.names.index(n) for n in inputs.names]
    x, y = theta[:, cols], q
    if anchor:
        x, y = np.vstack([x, lcdm[:, cols]]), np.concatenate([y, np.zeros_like(q)])
    z, k = np.asarray(dataset.z, float)[zsel], np.asarray(dataset.k, float)[ksel]
    model, report = fit_pca_network(x, y, inputs, z, k, settings, client=client)
    val = np.asarray(report.val_indices, dtype=int)
    scores = _validation_scores(np.expm1(report.val_prediction - y[val]), k, z) if val.size else {"n": 0}
    lcdm_err = float(np.max(np.abs(np.expm1(model.training_grid(lcdm[:, cols])))))
    if lcdm_err > LCDM_WARN:
        log.warning("response: max |R_emu(theta_LCDM) - 1| = %.2g over the %d twins", lcdm_err, len(b))
    info = {
        "dataset_hash": dataset.hash,
        "dataset_design": str(dataset.attrs.get("design", "")),
        "dataset_sim_config": str(dataset.attrs.get("sim_config", "")),
        "n_cosmologies": int(len(dataset)), "n_pairs": int(a.size), "n_unpaired": int(unpaired),
        "target": "response", "inputs": list(inputs.names), "anchor": bool(anchor),
        "training_settings": settings.to_dict(),
        "training_cuts": {"k_max": k_max, "z_max": z_max},
        "training_report": report.to_dict(),
        "training_seconds": time.perf_counter() - t0,
        "validation": scores,
        "lcdm_check": {"max_abs_R_minus_1": lcdm_err, "n": int(b.size)},
        "code_version": code_version(),
    }
    return ResponseEmulator(space=space, model=model, linear=linear, info=info)


# -- sensitivity -------------------------------------------------------------------
def _quadratic_features(x: np.ndarray) -> np.ndarray:
    n, p = x.shape
    iu = np.triu_indices(p)
    return np.hstack([np.ones((n, 1)), x, (x[:, :, None] * x[:, None, :])[:, iu[0], iu[1]]])


def response_sensitivity(dataset, params: Sequence[str] | None = None, k_max: float = 1.0) -> dict:
    """How much R changes when one parameter crosses its whole box, the others fixed.

    ln R on every (z, k <= k_max [h/Mpc]) is fitted over the twin pairs by a full
    quadratic in the box-scaled parameters (cross terms included: R depends on
    Omega_b or h only together with w0, wa).  For parameter p the change is
    |ln R(x_p = +1) - ln R(x_p = -1)| at each pair's other values.  Returns
    {name: {"rms", "max"} of that change (max over z and k, rms and max over the
    pairs)} for ``params`` (default all varied), plus "_fit_rms": the rms
    residual of the quadratic fit (changes below it are not resolved) and
    "_n_pairs"."""
    space = dataset_space(dataset)
    a, b, _ = twin_pairs(dataset)
    zsel, ksel = _grid_cuts(dataset, k_max, None)
    q = _log_response(dataset, a, b, zsel, ksel).reshape(a.size, -1)
    x = space.to_unit(dataset.varied_params()[a])
    feats = _quadratic_features(x)
    if feats.shape[1] > a.size:
        raise ValueError(f"response_sensitivity: {a.size} pairs cannot fix a quadratic in {x.shape[1]} parameters "
                         f"({feats.shape[1]} terms); need more pairs")
    coef, *_ = np.linalg.lstsq(feats, q, rcond=None)
    out = {"_fit_rms": float(np.sqrt(np.mean((feats @ coef - q) ** 2))), "_n_pairs": int(a.size)}
    for name in (params or space.names):
        if name not in space.names:
            raise ValueError(f"response_sensitivity: {name} is not varied; allowed: {', '.join(space.names)}")
        j = space.names.index(name)
        hi, lo = x.copy(), x.copy()
        hi[:, j], lo[:, j] = 1.0, -1.0
        change = np.abs((_quadratic_features(hi) - _quadratic_features(lo)) @ coef).max(axis=1)
        out[name] = {"rms": float(np.sqrt(np.mean(change ** 2))), "max": float(change.max())}
    return out


def format_sensitivity(sens: dict) -> str:
    """A small table of :func:`response_sensitivity` in percent."""
    lines = [f"response sensitivity over {sens['_n_pairs']} twin pairs: |Delta ln R| across each parameter's box, "
             "others fixed, max over z and k (percent)", f"{'parameter':>10s} {'rms':>8s} {'max':>8s}"]
    for name, v in sens.items():
        if not name.startswith("_"):
            lines.append(f"{name:>10s} {100 * v['rms']:8.3f} {100 * v['max']:8.3f}")
    lines.append(f"{'fit rms':>10s} {100 * sens['_fit_rms']:8.3f}")
    return "\n".join(lines)


# -- stand-in data -----------------------------------------------------------------
def ee2_twin_dataset(n: int, z, k, box=None, fixed=None, seed: int = 0):
    """SimDataset of ``n`` EE2 twin pairs (ids ee2-<seed>-<i> and ee2-<seed>-<i>-lcdm),
    for testing and benchmarking the response machinery (see emulators.synthetic)."""
    box = dict(box) if box is not None else {name: EE2_BOX[name] for name in (*WCDM_PARAMS, "wa")}
    ds = ee2_dataset(n, z, k, box, fixed, seed=seed, design="ee2-twins")
    twins = ds.params.copy()
    for name, value in LCDM.items():
        twins[:, ds.names.index(name)] = value
    twin_boost = np.stack([ee2_boost(ds.k, ds.z, dict(zip(ds.names, map(float, row)))) for row in twins])
    params = np.empty((2 * n, ds.params.shape[1]))
    params[0::2], params[1::2] = ds.params, twins
    boost = np.empty((2 * n, *ds.boost.shape[1:]))
    boost[0::2], boost[1::2] = ds.boost, twin_boost
    ids = tuple(s for sid in ds.sim_ids for s in (sid, sid + TWIN_SUFFIX))
    return SimDataset(names=ds.names, params=params, varied=ds.varied, lower=ds.lower, upper=ds.upper, z=ds.z,
                      k=ds.k, boost=boost, pk=boost.copy(), pk_lin=np.ones_like(boost), nmodes=ds.nmodes,
                      sim_ids=ids, timings=np.zeros(2 * n), attrs=dict(ds.attrs))
