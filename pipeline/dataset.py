"""The consolidated simulation dataset: what emulator training reads.

One HDF5 file per design (``train.h5``, ``test.h5``) in a run directory,
format "cosmopipe-dataset" version 1::

    /params   (n, p)       every Cosmology parameter of each simulation, columns in
                           attrs["names"] (Cosmology.names() order)
    /z        (nz,)        output redshifts, decreasing
    /k        (nk,)        bin wavenumbers [h/Mpc]
    /boost    (n, nz, nk)  P_nl / P_lin
    /pk       (n, nz, nk)  nonlinear CDM+baryon power [(Mpc/h)^3]
    /pk_lin   (n, nz, nk)  linear CDM+baryon power [(Mpc/h)^3]
    /nmodes   (nk,)        Fourier modes per bin
    /sim_ids  (n,)         simulation identifiers (file stems in sims/)
    /timings  (n,)         wall seconds of each simulation
    root attrs: format, format_version, names, varied (design parameters),
        lower, upper (design box of the varied parameters, after widening),
        design (name), sim_config (JSON), workflow (JSON), code_version,
        created (UTC ISO), hash (sha256 of the arrays), complete
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["SimDataset", "write_dataset", "read_dataset", "dataset_hash", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cosmopipe-dataset"
FORMAT_VERSION = 1
_ARRAYS = ("params", "z", "k", "boost", "pk", "pk_lin", "nmodes", "timings")


@dataclass(frozen=True)
class SimDataset:
    """Spectra of many simulations on a common (z, k) grid.

    names     all parameter names, the columns of ``params``
    params    (n, p) parameter values
    varied    the design parameters (a subset of names), in design order
    lower, upper  (len(varied),) design box the parameters were drawn from
    z (nz,) decreasing; k (nk,) [h/Mpc]; boost/pk/pk_lin (n, nz, nk)
    """

    names: tuple[str, ...]
    params: np.ndarray
    varied: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    z: np.ndarray
    k: np.ndarray
    boost: np.ndarray
    pk: np.ndarray
    pk_lin: np.ndarray
    nmodes: np.ndarray
    sim_ids: tuple[str, ...]
    timings: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.params.shape[0]

    def column(self, name: str) -> np.ndarray:
        """Values of one parameter across the simulations."""
        return self.params[:, self.names.index(name)]

    def varied_params(self) -> np.ndarray:
        """(n, len(varied)) values of the design parameters."""
        return self.params[:, [self.names.index(v) for v in self.varied]]

    def param_dicts(self) -> list[dict[str, float]]:
        return [dict(zip(self.names, map(float, row))) for row in self.params]

    @property
    def hash(self) -> str:
        return dataset_hash(self)


def dataset_hash(ds: SimDataset) -> str:
    """sha256 over the parameter and spectrum arrays (what training depends on)."""
    h = hashlib.sha256()
    for name in ("params", "z", "k", "boost", "pk_lin"):
        a = np.ascontiguousarray(getattr(ds, name), dtype=np.float64)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update(json.dumps(list(ds.names)).encode())
    return h.hexdigest()


def write_dataset(path: str | Path, ds: SimDataset) -> Path:
    """Write atomically (temp file + rename); returns the path."""
    from sims.io import atomic_hdf5

    n = ds.params.shape[0]
    for name in ("boost", "pk", "pk_lin"):
        shape = np.shape(getattr(ds, name))
        if shape != (n, len(ds.z), len(ds.k)):
            raise ValueError(f"SimDataset.{name}: shape {shape}, expected {(n, len(ds.z), len(ds.k))}")
    path = Path(path)
    with atomic_hdf5(path) as f:
        for name in _ARRAYS:
            f.create_dataset(name, data=np.asarray(getattr(ds, name)))
        f["boost"].attrs["units"] = ""
        f["pk"].attrs["units"] = "(Mpc/h)^3"
        f["k"].attrs["units"] = "h/Mpc"
        f.create_dataset("sim_ids", data=np.asarray(ds.sim_ids, dtype=h5py.string_dtype()))
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["names"] = json.dumps(list(ds.names))
        f.attrs["varied"] = json.dumps(list(ds.varied))
        f.attrs["lower"] = np.asarray(ds.lower, dtype=float)
        f.attrs["upper"] = np.asarray(ds.upper, dtype=float)
        attrs = dict(ds.attrs)
        attrs.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (str, int, float, np.ndarray)) else json.dumps(value)
        f.attrs["hash"] = dataset_hash(ds)
        f.attrs["complete"] = True
    return path


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_dataset(path: str | Path) -> SimDataset:
    """Load a consolidated dataset; clear errors for absent, foreign or partial files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a cosmopipe dataset (cannot be read as HDF5: {exc})") from None
    with f:
        fmt = _attr(f.attrs.get("format"))
        if fmt != FORMAT:
            raise ValueError(f"{path}: not a cosmopipe dataset (format attribute {fmt!r}, expected {FORMAT!r})")
        version = _attr(f.attrs.get("format_version"))
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: dataset format_version {version} is not supported (this cosmopipe reads {FORMAT_VERSION})")
        if _attr(f.attrs.get("complete")) is not True:
            raise ValueError(f"{path}: incomplete dataset (the write was interrupted)")
        try:
            arrays = {name: f[name][()] for name in _ARRAYS}
            sim_ids = tuple(_attr(s) for s in f["sim_ids"][()])
            attrs = {key: _attr(v) for key, v in f.attrs.items()}
        except (KeyError, OSError) as exc:
            raise ValueError(f"{path}: unreadable dataset content: {exc}") from None
    names = tuple(json.loads(attrs.pop("names")))
    varied = tuple(json.loads(attrs.pop("varied")))
    lower = np.asarray(attrs.pop("lower"), dtype=float)
    upper = np.asarray(attrs.pop("upper"), dtype=float)
    for key in ("format", "format_version", "complete"):
        attrs.pop(key, None)
    return SimDataset(names=names, varied=varied, lower=lower, upper=upper, sim_ids=sim_ids, attrs=attrs, **arrays)
