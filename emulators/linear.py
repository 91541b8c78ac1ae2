"""Linear-power emulator: P_lin(k, z; theta) from a Dask campaign of CAMB runs.

Linear theory is exactly proportional to the primordial spectrum
A_s (k / k_pivot)^(n_s - 1), and most of its shape is the smooth
Eisenstein & Hu (1998, eqs. 26-31) no-wiggle transfer function, so the
emulated field is

    Y(k, z) = ln P_lin(k, z) - ln A_s - (n_s - 1) ln(k h / k_pivot) - ln k - 2 ln T_EH(k)

(k in h/Mpc, k_pivot = 0.05 / Mpc).  Y does not depend on A_s and n_s at all,
so those two are not network inputs; the network learns the BAO wiggles, the
growth and the corrections to T_EH as functions of the other varied
parameters.  Measured on 200 CAMB training / 50 test cosmologies (six wCDM
parameters, 16 z in 0-3, 251 k in 1e-4-10 h/Mpc, 10000 L-BFGS iterations),
the p95 / max of |P_emu / P_CAMB - 1| over all test points were

    ln P - primordial, all six parameters as inputs    0.12 % / 0.82 %
    ... also divided by T_EH^2 k                       0.115 % / 0.59 %
    ... and without A_s, n_s as inputs (this module)   0.096 % / 0.67 %

Y is fitted with the same PCA + MLP as the boost (:mod:`cosmopipe.emulators.core`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from cosmopipe.h5format import read_header
from cosmopipe.provenance import code_version
from cosmopipe.sims import design as sims_design
from cosmopipe.sims.cosmology import T_CMB, Cosmology
from cosmopipe.sims.io import atomic_hdf5
from cosmopipe.sims.linear import linear_power

from .core import PCANetwork, as_grid, summary
from .io import save
from .params import ParameterSpace
from .training import FitSettings, fit_pca_network

__all__ = ["LinearEmulator", "LinearDataset", "camb_linear_dataset", "train_linear", "latin_hypercube",
           "write_linear_dataset", "read_linear_dataset", "analytic_log_pk", "K_PIVOT", "SPECIES"]

K_PIVOT = 0.05  # 1/Mpc, the pivot of A_s in sims.linear.camb_params
K_MARGIN = 1.25  # CAMB runs to K_MARGIN x the largest k needed
SPECIES = ("tot", "cb")
# Enter Y only through the analytic factor, never through the network.
PRIMORDIAL = ("A_s", "n_s")
DATASET_FORMAT = "cosmopipe-linear-dataset"
DATASET_VERSION = 1


def _column(v) -> np.ndarray:
    return np.reshape(np.asarray(v, dtype=float), (-1, 1, 1))


def eh_nowiggle_log_t2(omega_m, omega_b, h, k: np.ndarray) -> np.ndarray:
    """2 ln T(k) of the Eisenstein & Hu (1998) no-wiggle transfer function,
    k [h/Mpc]; (n, 1, nk) for (n,) parameter arrays."""
    om, ob, h = _column(omega_m), _column(omega_b), _column(h)
    wm, wb, fb = om * h * h, ob * h * h, ob / om
    theta2 = (T_CMB / 2.7) ** 2
    sound_horizon = 44.5 * np.log(9.83 / wm) / np.sqrt(1.0 + 10.0 * wb**0.75)  # Mpc
    alpha = 1.0 - 0.328 * np.log(431.0 * wm) * fb + 0.38 * np.log(22.3 * wm) * fb * fb
    kk = k[None, None, :]
    gamma = om * h * (alpha + (1.0 - alpha) / (1.0 + (0.43 * kk * h * sound_horizon) ** 4))
    q = kk * theta2 / gamma
    l0 = np.log(2.0 * np.e + 1.8 * q)
    c0 = 14.2 + 731.0 / (1.0 + 62.5 * q)
    return 2.0 * np.log(l0 / (l0 + c0 * q * q))


def analytic_log_pk(a_s, n_s, omega_m, omega_b, h, k: np.ndarray) -> np.ndarray:
    """ln[A_s (k h / k_pivot)^(n_s - 1) k T_EH(k)^2], k [h/Mpc]: (n, 1, nk)."""
    lnk = np.log(k)[None, None, :]
    return (np.log(_column(a_s)) + (_column(n_s) - 1.0) * (lnk + np.log(_column(h)) - np.log(K_PIVOT))
            + lnk + eh_nowiggle_log_t2(omega_m, omega_b, h, k))


def transfer_space(space: ParameterSpace) -> ParameterSpace:
    """The network inputs: ``space`` without A_s and n_s (which enter analytically)."""
    keep = [i for i, n in enumerate(space.names) if n not in PRIMORDIAL]
    if not keep:
        raise ValueError("linear emulator: needs a varied parameter besides A_s and n_s (those enter analytically)")
    fixed = {n: v for n, v in space.fixed.items() if n not in PRIMORDIAL}
    return ParameterSpace(tuple(space.names[i] for i in keep), space.lower[keep], space.upper[keep], fixed)


@dataclass(frozen=True)
class LinearEmulator:
    """Emulated linear matter power of ``species`` ('tot': all matter, 'cb':
    CDM + baryons) [(Mpc/h)^3]; see the module docstring.

    space   the parameters callers give (varied, box, fixed), A_s and n_s included
    model   PCA + MLP of Y over the other varied parameters
    """

    space: ParameterSpace
    model: PCANetwork
    species: str = "tot"
    info: dict = field(default_factory=dict)
    kind = "linear"

    __repr__ = __str__ = summary

    def __post_init__(self):
        if self.species not in SPECIES:
            raise ValueError(f"linear emulator species must be one of {', '.join(SPECIES)}, got {self.species!r}")
        inputs = self.model.space.names
        missing = [n for n in inputs if n not in self.space.names]
        if missing:
            raise ValueError(f"linear emulator: network inputs {', '.join(missing)} are not varied parameters")
        object.__setattr__(self, "_inputs", [self.space.names.index(n) for n in inputs])

    @property
    def params(self) -> tuple[str, ...]:
        return self.space.names

    @property
    def k_range(self) -> tuple[float, float]:
        return self.model.k_range

    @property
    def z_range(self) -> tuple[float, float]:
        return self.model.z_range

    def _log_pk(self, theta: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
        y = self.model.evaluate(theta[:, self._inputs], z, k)
        v = self.space.value
        return y + analytic_log_pk(v("A_s", theta), v("n_s", theta), v("Omega_m", theta), v("Omega_b", theta),
                                   v("h", theta), k)

    def log_pk(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        who = "linear emulator"
        theta, single = self.space.read(params, extrapolate, who=who)
        out = self._log_pk(theta, as_grid("z", z, *self.z_range, "", who), as_grid("k", k, *self.k_range, " h/Mpc", who))
        return out[0] if single else out

    def pk_lin(self, k: Any, z: Any, params: Any, extrapolate: bool = False) -> np.ndarray:
        """P_lin(k, z) [(Mpc/h)^3]: (nz, nk) for one cosmology, (n, nz, nk) for a table.

        k [h/Mpc] and z inside :attr:`k_range`, :attr:`z_range`; params as for
        :meth:`cosmopipe.emulators.boost.BoostEmulator.boost`."""
        return np.exp(self.log_pk(k, z, params, extrapolate))

    def log_pk_theta(self, theta: np.ndarray, space: ParameterSpace, z: np.ndarray, k: np.ndarray,
                     extrapolate: bool = False) -> np.ndarray:
        """ln P_lin for parameters already read by another emulator's ``space``
        (the boost emulator's ``pnl``); grids are checked against this emulator's ranges."""
        who = "linear emulator"
        z = as_grid("z", z, *self.z_range, "", who)
        k = as_grid("k", k, *self.k_range, " h/Mpc", who)
        if space != self.space:
            columns = {name: space.value(name, theta) for name in (*space.names, *space.fixed)}
            theta, _ = self.space.read({n: np.broadcast_to(v, (theta.shape[0],)) for n, v in columns.items()},
                                       extrapolate, who=who)
        return self._log_pk(theta, z, k)

    def save(self, path):
        """Write to one HDF5 file (see emulators.io); returns the path."""
        return save(self, path)


# -- the CAMB campaign ------------------------------------------------------------
@dataclass(frozen=True)
class LinearDataset:
    """CAMB linear spectra of many cosmologies on a common grid.

    names   all Cosmology parameter names (columns of ``params``)
    params  (n, len(names)) parameter values
    z       (nz,) increasing; k (nk,) [h/Mpc] increasing
    pk      (n, nz, nk) linear power of ``species`` [(Mpc/h)^3]
    seconds (n,) CAMB wall time of each cosmology
    """

    names: tuple[str, ...]
    params: np.ndarray
    z: np.ndarray
    k: np.ndarray
    pk: np.ndarray
    species: str
    seconds: np.ndarray

    def __len__(self) -> int:
        return self.params.shape[0]

    def column(self, name: str) -> np.ndarray:
        return self.params[:, self.names.index(name)]


def latin_hypercube(n: int, space: ParameterSpace, seed: int = 0) -> list[dict[str, float]]:
    """n cosmologies (full parameter dicts) on a Latin hypercube of the box of ``space``."""
    if n < 1:
        raise ValueError(f"latin_hypercube: n must be a positive integer, got {n}")
    box = sims_design.ParameterBox(space.names, tuple(space.lower), tuple(space.upper))
    return space.cosmology_dicts(sims_design.latin_hypercube(box, n, seed=seed))


def camb_spectra(params: dict, z: np.ndarray, k: np.ndarray, species: str = "tot",
                 threads: int | None = None) -> tuple[np.ndarray, float]:
    """One CAMB run: P_lin (nz, nk) [(Mpc/h)^3] of ``species`` and the wall seconds."""
    if threads is not None:
        import camb

        camb.config.ThreadNum = int(threads)
    t0 = time.perf_counter()
    # Margin in k: at the table's end LinearPower extrapolates along the local
    # slope, which jitters from cosmology to cosmology with CAMB's k sampling.
    lin = linear_power(Cosmology.from_dict(params), redshifts=z, kmax=K_MARGIN * float(np.max(k)))
    pk = np.stack([lin(k, zi, species=species) for zi in z])
    return pk, time.perf_counter() - t0


def camb_linear_dataset(design: Sequence[Any], z: Sequence[float], k: Sequence[float], client=None,
                        species: str = "tot") -> LinearDataset:
    """Run CAMB (sims.linear.linear_power) for every cosmology of ``design``.

    design   Cosmology objects or parameter dicts (missing names take the
             Cosmology defaults)
    z, k     output grid: redshifts and wavenumbers [h/Mpc]
    client   optional dask.distributed Client: one task per cosmology, each CAMB
             single-threaded (the cluster supplies the parallelism)
    """
    if species not in SPECIES:
        raise ValueError(f"species must be one of {', '.join(SPECIES)}, got {species!r}")
    cosmologies = [c if isinstance(c, Cosmology) else Cosmology.from_dict(dict(c)) for c in design]
    if not cosmologies:
        raise ValueError("camb_linear_dataset: the design is empty")
    z = np.sort(np.asarray(z, dtype=float))
    k = np.sort(np.asarray(k, dtype=float))
    if np.any(np.diff(z) <= 0) or np.any(np.diff(k) <= 0) or z[0] < 0 or k[0] <= 0:
        raise ValueError("camb_linear_dataset: z must be distinct and >= 0, k distinct and > 0")
    dicts = [c.to_dict() for c in cosmologies]
    if client is not None:
        futures = [client.submit(camb_spectra, d, z, k, species, 1, pure=False) for d in dicts]
        results = client.gather(futures)
    else:
        results = [camb_spectra(d, z, k, species) for d in dicts]
    names = Cosmology.names()
    return LinearDataset(names=names, params=np.array([[d[n] for n in names] for d in dicts]), z=z, k=k,
                         pk=np.stack([r[0] for r in results]), species=species,
                         seconds=np.array([r[1] for r in results]))


def write_linear_dataset(path: str | Path, data: LinearDataset) -> Path:
    """Atomic HDF5 copy of a CAMB campaign (so a workflow can resume without rerunning it)."""
    path = Path(path)
    with atomic_hdf5(path) as f:
        for name in ("params", "z", "k", "pk", "seconds"):
            f.create_dataset(name, data=np.asarray(getattr(data, name)))
        f["k"].attrs["units"] = "h/Mpc"
        f["pk"].attrs["units"] = "(Mpc/h)^3"
        f.attrs["format"] = DATASET_FORMAT
        f.attrs["format_version"] = DATASET_VERSION
        f.attrs["names"] = json.dumps(list(data.names))
        f.attrs["species"] = data.species
        f.attrs["complete"] = True
    return path


def read_linear_dataset(path: str | Path) -> LinearDataset:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such linear-power dataset")
    try:
        with h5py.File(path, "r") as f:
            fmt, version, complete = read_header(f.attrs)
            if fmt != DATASET_FORMAT or not bool(complete):
                raise ValueError(f"{path}: not a complete {DATASET_FORMAT} file")
            if int(f.attrs["format_version"]) > DATASET_VERSION:
                raise ValueError(f"{path}: format_version {int(version)} is newer than this "
                                 f"cosmopipe reads ({DATASET_VERSION})")
            arrays = {name: f[name][()] for name in ("params", "z", "k", "pk", "seconds")}
            return LinearDataset(names=tuple(json.loads(f.attrs["names"])), species=str(f.attrs["species"]),
                                 **arrays)
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable linear-power dataset ({exc})") from None


def train_linear(data: LinearDataset, space: ParameterSpace, settings: FitSettings = FitSettings(),
                 client=None) -> LinearEmulator:
    """Fit a linear-power emulator over ``space`` (varied names, box, fixed values)
    to a CAMB campaign; every fixed value must match the campaign's."""
    t0 = time.perf_counter()
    for name, value in space.fixed.items():
        column = data.column(name)
        if not np.allclose(column, value, rtol=1e-9, atol=1e-12):
            raise ValueError(f"linear dataset: parameter {name} should be fixed to {value:g}, found "
                             f"{column.min():g} to {column.max():g}")
    if not np.all(np.isfinite(data.pk) & (data.pk > 0)):
        raise ValueError("linear dataset: spectra have non-positive or non-finite values")
    inputs = transfer_space(space)
    theta = np.column_stack([data.column(n) for n in inputs.names])
    y = np.log(data.pk) - analytic_log_pk(data.column("A_s"), data.column("n_s"), data.column("Omega_m"),
                                          data.column("Omega_b"), data.column("h"), data.k)
    model, report = fit_pca_network(theta, y, inputs, data.z, data.k, settings, client=client)
    val = np.asarray(report.val_indices, dtype=int)
    scores = {"n": int(val.size)}
    if val.size:
        err = np.abs(np.expm1(report.val_prediction - y[val]))
        scores.update(pointwise_p50=float(np.percentile(err, 50)), pointwise_p95=float(np.percentile(err, 95)),
                      max=float(err.max()))
    info = {
        "n_cosmologies": int(len(data)),
        "camb_seconds_total": float(np.sum(data.seconds)),
        "training_settings": settings.to_dict(),
        "training_report": report.to_dict(),
        "training_seconds": time.perf_counter() - t0,
        "validation": scores,
        "code_version": code_version(),
    }
    return LinearEmulator(space=space, model=model, species=data.species, info=info)
