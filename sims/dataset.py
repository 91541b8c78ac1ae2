"""The consolidated simulation dataset: what emulator training reads.

One HDF5 file per design (``train.h5``, ``test.h5``) in a run directory,
format "cosmopipe-dataset" version 2::

    /params   (n, p)       every Cosmology parameter of each simulation, columns in
                           attrs["names"] (Cosmology.names() order)
    /z        (nz,)        output redshifts, decreasing
    /k        (nk,)        bin wavenumbers [h/Mpc]
    /boost    (n, nz, nk)  P_nl / P_lin
    /pk       (n, nz, nk)  nonlinear CDM+baryon power [(Mpc/h)^3]
    /pk_lin   (n, nz, nk)  linear CDM+baryon power [(Mpc/h)^3]
    /nmodes   (nk,)        Fourier modes per bin
    /pk_runs  (n, nrun, nz, nk)  optional: the power of each run of a pair [(Mpc/h)^3], so
                           that simulation files can be rebuilt from the dataset exactly
                           (a run directory seeded from a committed campaign archive)
    /sim_ids  (n,)         simulation identifiers (file stems in sims/)
    /timings  (n,)         wall seconds of each simulation
    root attrs: format, format_version, names, varied (design parameters),
        lower, upper (design box of the varied parameters, after widening),
        design (name), sim_config (JSON), workflow (JSON), code_version,
        created (UTC ISO), hash (sha256 of the arrays), complete
    checksums (version 2): attr "sha256" on every array and "attrs_sha256" on the
        root (sims.integrity), verified on read together with ``hash``.  Version 1
        files are read with a warning; their ``hash`` is still checked.
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

from cosmopipe.h5format import open_file, read_header
from cosmopipe.integrity import CorruptFileError, reading, seal, text, texts, verify, warn_unverified
from cosmopipe.sims.io import atomic_hdf5

__all__ = ["SimDataset", "write_dataset", "read_dataset", "dataset_hash", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cosmopipe-dataset"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_HINT = "delete it and rerun the simulate stage to rebuild it"
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
    pk_runs: np.ndarray | None = None
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
    n = ds.params.shape[0]
    for name in ("boost", "pk", "pk_lin"):
        shape = np.shape(getattr(ds, name))
        if shape != (n, len(ds.z), len(ds.k)):
            raise ValueError(f"SimDataset.{name}: shape {shape}, expected {(n, len(ds.z), len(ds.k))}")
    path = Path(path)
    with atomic_hdf5(path) as f:
        for name in _ARRAYS:
            f.create_dataset(name, data=np.asarray(getattr(ds, name)), **_compression(getattr(ds, name)))
        if ds.pk_runs is not None:
            f.create_dataset("pk_runs", data=np.asarray(ds.pk_runs), **_compression(ds.pk_runs))
        f["boost"].attrs["units"] = text("")
        f["pk"].attrs["units"] = text("(Mpc/h)^3")
        f["k"].attrs["units"] = text("h/Mpc")
        f.create_dataset("sim_ids", data=texts(ds.sim_ids))
        f.attrs["format"] = text(FORMAT)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["names"] = text(json.dumps(list(ds.names)))
        f.attrs["varied"] = text(json.dumps(list(ds.varied)))
        f.attrs["lower"] = np.asarray(ds.lower, dtype=float)
        f.attrs["upper"] = np.asarray(ds.upper, dtype=float)
        attrs = dict(ds.attrs)
        attrs.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (int, float, np.ndarray)) else \
                text(value if isinstance(value, str) else json.dumps(value))
        f.attrs["hash"] = text(dataset_hash(ds))
        seal(f)
        f.attrs["complete"] = True
    return path


def _compression(array) -> dict:
    """Lossless gzip for the spectra: datasets are committed as campaign archives."""
    return {"compression": "gzip", "compression_opts": 6, "shuffle": True} if np.ndim(array) >= 2 else {}


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_dataset(path: str | Path) -> SimDataset:
    """Load a consolidated dataset, verifying its checksums and ``hash``.

    Raises FileNotFoundError when absent and CorruptFileError (a ValueError)
    naming the file for foreign, partial, damaged or checksum-failing files."""
    path = Path(path)
    f = open_file(path, "dataset file")
    with f, reading(path, "dataset content"):
        fmt, version, complete = read_header(f.attrs)
        if fmt != FORMAT:
            raise CorruptFileError(path, f"not a cosmopipe dataset (format attribute {fmt!r}, expected {FORMAT!r})")
        if version not in _READABLE_VERSIONS:
            raise CorruptFileError(path, f"dataset format_version {version} is not supported (this cosmopipe reads "
                                         f"{', '.join(map(str, _READABLE_VERSIONS))})")
        if complete is not True:
            raise CorruptFileError(path, "incomplete dataset (the write was interrupted)")
        if version >= 2:
            stored = verify(f, path, _HINT)
        else:
            warn_unverified("dataset", path)
            stored = {name: f[name][()] for name in f if isinstance(f[name], h5py.Dataset)}
        missing = [name for name in (*_ARRAYS, "sim_ids") if name not in stored]
        if missing:
            raise CorruptFileError(path, f"dataset lacks the array(s) {', '.join(missing)}; {_HINT}")
        arrays = {name: stored[name] for name in _ARRAYS}
        arrays["pk_runs"] = stored.get("pk_runs")
        sim_ids = tuple(_attr(s) for s in stored["sim_ids"])
        attrs = {key: _attr(v) for key, v in f.attrs.items() if key not in ("sha256", "attrs_sha256")}
        names = tuple(json.loads(attrs.pop("names")))
        varied = tuple(json.loads(attrs.pop("varied")))
        lower = np.asarray(attrs.pop("lower"), dtype=float)
        upper = np.asarray(attrs.pop("upper"), dtype=float)
        for key in ("format", "format_version", "complete"):
            attrs.pop(key, None)
        ds = SimDataset(names=names, varied=varied, lower=lower, upper=upper, sim_ids=sim_ids, attrs=attrs, **arrays)
        # The training provenance ("dataset_hash" of emulators) must be the hash of what was read.
        if "hash" in attrs and attrs["hash"] != ds.hash:
            raise CorruptFileError(path, f"the dataset hash does not match its arrays (stored {str(attrs['hash'])[:12]}…, "
                                         f"computed {ds.hash[:12]}…): the file is damaged; {_HINT}")
    return ds
