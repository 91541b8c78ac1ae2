"""One simulation result <-> one HDF5 file.

Layout (format "cosmopipe-sim", format_version 1)::

    /k        (nk,)          bin wavenumbers [h/Mpc]
    /z        (nz,)          output redshifts, decreasing
    /pk       (nz, nk)       nonlinear power [(Mpc/h)^3]
    /pk_lin   (nz, nk)       linear power [(Mpc/h)^3]
    /boost    (nz, nk)       pk / pk_lin
    /nmodes   (nk,)          Fourier modes per bin
    /pk_runs  (nrun, nz, nk) power of each run [(Mpc/h)^3]
    /cosmology   attrs: one per Cosmology parameter
    /config      attrs: one per SimConfig field that is not None; the names of
                 the None fields in the attr "none_fields"; z_out as an array
    /timings     attrs: seconds per stage
    root attrs:  format, format_version, seed, code_version, extra (JSON),
                 complete (written last)

Files are written atomically (temp file in the same directory, fsync,
rename), so a reader sees either the previous file or a complete new one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .config import SimConfig
from .cosmology import Cosmology
from .result import SimResult

__all__ = ["atomic_hdf5", "write_result", "read_result", "read_config", "is_complete", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cosmopipe-sim"
FORMAT_VERSION = 1

_ARRAYS = ("k", "z", "pk", "pk_lin", "boost", "nmodes", "pk_runs")
_UNITS = {
    "k": "h/Mpc",
    "z": "",
    "pk": "(Mpc/h)^3",
    "pk_lin": "(Mpc/h)^3",
    "boost": "",
    "nmodes": "",
    "pk_runs": "(Mpc/h)^3",
}


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays commonly end up in provenance dicts.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"SimResult.extra: {type(obj).__name__} values cannot be stored (use numbers, strings, lists, dicts)")


# -- writing ----------------------------------------------------------------
def _write_arrays(f: h5py.File, result: SimResult) -> None:
    for name in _ARRAYS:
        data = np.asarray(getattr(result, name))
        dset = f.create_dataset(name, data=data)
        if _UNITS[name]:
            dset.attrs["units"] = _UNITS[name]


def _write_metadata(f: h5py.File, result: SimResult, extra_json: str) -> None:
    cosmo = f.create_group("cosmology")
    for name, value in result.cosmology.to_dict().items():
        cosmo.attrs[name] = float(value)

    config = f.create_group("config")
    none_fields = []
    for name, value in result.config.to_dict().items():
        if value is None:
            none_fields.append(name)
        elif isinstance(value, tuple):
            config.attrs[name] = np.asarray(value, dtype=float)
        else:
            config.attrs[name] = value
    config.attrs["none_fields"] = np.asarray(none_fields, dtype=h5py.string_dtype())

    timings = f.create_group("timings")
    for name, seconds in result.timings.items():
        timings.attrs[name] = float(seconds)

    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["seed"] = result.config.seed
    f.attrs["code_version"] = result.version
    f.attrs["extra"] = extra_json


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_hdf5(path: str | os.PathLike):
    """Context manager yielding an ``h5py.File`` open for writing at a temp path.

    On a clean exit the file is flushed, fsynced and renamed onto ``path``
    (parents created), so readers see the old file or the complete new one,
    never a partial one; on any error the temp file is removed.  Callers set
    their own completion flag last, inside the block.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with h5py.File(tmp, "w") as f:
            yield f
            f.flush()
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        _fsync_path(path.parent, directory=True)
    except OSError:
        pass  # some filesystems refuse directory fsync; the data itself is synced


def write_result(path: str | os.PathLike, result: SimResult) -> Path:
    """Write ``result`` to the HDF5 file ``path`` atomically; returns the path.

    Parent directories are created.  An existing file at ``path`` is replaced
    only once the new one is complete; on any error it is left untouched and
    the temp file is removed.
    """
    path = Path(path)
    # Serialise first: a bad 'extra' must fail before anything touches disk.
    extra_json = json.dumps(result.extra, default=_json_default, sort_keys=True)
    with atomic_hdf5(path) as f:
        _write_arrays(f, result)
        _write_metadata(f, result, extra_json)
        # Last, so a file with 'complete' has everything else.
        f.attrs["complete"] = True
    return path


# -- reading ----------------------------------------------------------------
def _not_complete(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: not a complete cosmopipe simulation file ({why})")


def _python_value(value: Any) -> Any:
    """h5py attribute value -> the Python type the dataclasses validate against."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(_python_value(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open(path: str | os.PathLike) -> tuple[Path, h5py.File]:
    """Open and validate the header of a cosmopipe file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _not_complete(path, f"cannot be read as HDF5: {exc}") from None
    try:
        try:
            fmt = _python_value(f.attrs.get("format"))
            version = _python_value(f.attrs.get("format_version"))
            complete = _python_value(f.attrs.get("complete", False))
        except (OSError, KeyError) as exc:
            raise _not_complete(path, f"unreadable header: {exc}") from None
        if fmt != FORMAT:
            raise _not_complete(path, f"format attribute is {fmt!r}, expected {FORMAT!r}")
        if version != FORMAT_VERSION:
            raise _not_complete(path, f"format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        if complete is not True:
            raise _not_complete(path, "the 'complete' flag is missing: the write was interrupted")
    except BaseException:
        f.close()
        raise
    return path, f


def _read_cosmology(path: Path, f: h5py.File) -> Cosmology:
    attrs = f["cosmology"].attrs
    missing = [name for name in Cosmology.names() if name not in attrs]
    if missing:
        raise _not_complete(path, f"cosmology lacks {', '.join(missing)}")
    return Cosmology(**{name: _python_value(attrs[name]) for name in Cosmology.names()})


def _read_sim_config(path: Path, f: h5py.File) -> SimConfig:
    attrs = f["config"].attrs
    none_fields = {_python_value(v) for v in attrs.get("none_fields", [])}
    kwargs = {}
    for field in dataclasses.fields(SimConfig):
        if field.name in none_fields:
            kwargs[field.name] = None
        elif field.name in attrs:
            kwargs[field.name] = _python_value(attrs[field.name])
        # Absent from both: a field newer than the file; its default applies.
    return SimConfig(**kwargs)


def read_config(path: str | os.PathLike) -> tuple[Cosmology, SimConfig]:
    """Cosmology and settings of a simulation file, without loading the spectra."""
    path, f = _open(path)
    with f:
        try:
            return _read_cosmology(path, f), _read_sim_config(path, f)
        except (KeyError, OSError) as exc:
            raise _not_complete(path, f"unreadable metadata: {exc}") from None


def read_result(path: str | os.PathLike) -> SimResult:
    """Load a file written by :func:`write_result`.

    Raises ValueError "<path>: not a complete cosmopipe simulation file (...)"
    for foreign, interrupted or corrupt files, FileNotFoundError if absent.
    """
    path, f = _open(path)
    with f:
        try:
            arrays = {name: f[name][()] for name in _ARRAYS}
            cosmology = _read_cosmology(path, f)
            config = _read_sim_config(path, f)
            timings = {name: float(v) for name, v in f["timings"].attrs.items()}
            version = _python_value(f.attrs["code_version"])
            extra = json.loads(_python_value(f.attrs["extra"]))
        except (KeyError, OSError, json.JSONDecodeError) as exc:
            raise _not_complete(path, f"unreadable content: {exc}") from None
    return SimResult(**arrays, cosmology=cosmology, config=config, timings=timings, version=version, extra=extra)


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a complete cosmopipe simulation file (never raises)."""
    try:
        _, f = _open(path)
    except (OSError, ValueError):
        return False
    f.close()
    return True
