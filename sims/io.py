"""One simulation result <-> one HDF5 file.

Layout (format "cosmopipe-sim", format_version 2)::

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
    checksums    (version 2) attr "sha256" on every array, "attrs_sha256" on every
                 group and the root (see sims.integrity); verified on every read.
                 Version 1 files (no checksums) are still read, unverified.

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
from cosmopipe.h5format import attr_value, read_header
from cosmopipe.integrity import GROUP_ATTR, CorruptFileError, reading, seal, text, texts, verify
from .result import SimResult

__all__ = ["atomic_hdf5", "write_result", "read_result", "read_config", "is_complete", "check",
           "CorruptFileError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cosmopipe-sim"
FORMAT_VERSION = 2
# Version 1 files (no checksums) are still read: a campaign may be writing them.
_READABLE_VERSIONS = (1, 2)
_HINT = "delete it to re-simulate"

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
            dset.attrs["units"] = text(_UNITS[name])


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
        elif isinstance(value, str):
            config.attrs[name] = text(value)
        else:
            config.attrs[name] = value
    config.attrs["none_fields"] = texts(none_fields)

    timings = f.create_group("timings")
    for name, seconds in result.timings.items():
        timings.attrs[name] = float(seconds)

    f.attrs["format"] = text(FORMAT)
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["seed"] = result.config.seed
    f.attrs["code_version"] = text(result.version)
    f.attrs["extra"] = text(extra_json)


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
        seal(f)
        # Last, so a file with 'complete' has everything else.
        f.attrs["complete"] = True
    return path


# -- reading ----------------------------------------------------------------
def _not_complete(path: Path, why: str) -> CorruptFileError:
    return CorruptFileError(path, f"not a complete cosmopipe simulation file ({why})")


# h5py attribute value -> the Python type the dataclasses validate against.
_python_value = attr_value


def _open(path: str | os.PathLike) -> tuple[Path, h5py.File, int]:
    """Open a cosmopipe simulation file and validate its header; returns its format_version too."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _not_complete(path, f"cannot be read as HDF5: {exc}") from None
    try:
        try:
            fmt, version, complete = read_header(f.attrs)
        except (OSError, KeyError, UnicodeError, TypeError, ValueError) as exc:
            raise _not_complete(path, f"unreadable header: {exc}") from None
        if fmt != FORMAT:
            raise _not_complete(path, f"format attribute is {fmt!r}, expected {FORMAT!r}")
        if version not in _READABLE_VERSIONS:
            raise _not_complete(path, f"format_version {version!r} is not supported (expected one of "
                                      f"{', '.join(map(str, _READABLE_VERSIONS))})")
        if complete is not True:
            raise _not_complete(path, "the 'complete' flag is missing: the write was interrupted")
    except BaseException:
        f.close()
        raise
    return path, f, int(version)


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


def _read_arrays(path: Path, f: h5py.File, version: int) -> dict[str, np.ndarray]:
    """The spectra; version 2 files are checked against their checksums (metadata included)."""
    if version >= 2:
        arrays = verify(f, path, _HINT)
    else:
        arrays = {name: f[name][()] for name in _ARRAYS if name in f}
    missing = [name for name in _ARRAYS if name not in arrays]
    if missing:
        raise _not_complete(path, f"marked complete but lacks the dataset(s) {', '.join(missing)}")
    return {name: arrays[name] for name in _ARRAYS}


def _load(path: str | os.PathLike) -> tuple[SimResult, bool]:
    """(result, verified): verified is False for version 1 files, which carry no checksums."""
    path, f, version = _open(path)
    with f, reading(path, "simulation content"):
        arrays = _read_arrays(path, f, version)
        cosmology = _read_cosmology(path, f)
        config = _read_sim_config(path, f)
        timings = {name: float(v) for name, v in f["timings"].attrs.items() if name != GROUP_ATTR}
        code_version = _python_value(f.attrs["code_version"])
        extra = json.loads(_python_value(f.attrs["extra"]))
        result = SimResult(**arrays, cosmology=cosmology, config=config, timings=timings, version=code_version,
                           extra=extra)
    return result, version >= 2


def read_config(path: str | os.PathLike) -> tuple[Cosmology, SimConfig]:
    """Cosmology and settings of a simulation file (the whole file is checked first)."""
    result, _ = _load(path)
    return result.cosmology, result.config


def read_result(path: str | os.PathLike) -> SimResult:
    """Load a file written by :func:`write_result`, verifying its checksums.

    Raises CorruptFileError (a ValueError) "<path>: ..." for foreign,
    interrupted, damaged or checksum-failing files, FileNotFoundError if absent.
    """
    return _load(path)[0]


def check(path: str | os.PathLike) -> bool:
    """Read and check a simulation file: True when its checksums were verified, False for
    an intact-looking version 1 file (no checksums).  Raises CorruptFileError naming the
    file and the reason, FileNotFoundError when absent."""
    return _load(path)[1]


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a complete simulation file that passes its checks (never raises)."""
    try:
        _load(path)
    except (OSError, ValueError):
        return False
    return True
