"""The header every cosmopipe HDF5 file carries: root attributes ``format`` (a name),
``format_version`` (an integer) and ``complete`` (written last, so an interrupted write
is recognised).

Each reader checks the header against its own format and versions, with its own
message; this module reads it the same way everywhere (h5py returns bytes, numpy
scalars or str depending on how, and by which version, an attribute was written).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NamedTuple

import h5py
import numpy as np

from .integrity import CorruptFileError

__all__ = ["Header", "attr_value", "read_header"]


class Header(NamedTuple):
    format: Any        # str when present
    version: Any       # int when well formed; as stored otherwise (the reader says what is wrong)
    complete: Any      # True once the write finished


def attr_value(value: Any) -> Any:
    """h5py attribute value -> plain Python (str, int, float, bool; arrays as tuples)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(attr_value(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_header(attrs: Mapping[str, Any]) -> Header:
    """The header of an open file's root attributes (None for a missing format or version,
    False for a missing ``complete``).  Raises what h5py raises for an unreadable attribute."""
    return Header(attr_value(attrs.get("format")), attr_value(attrs.get("format_version")),
                  attr_value(attrs.get("complete", False)))


def open_file(path, what: str):
    """``path`` (a str or Path) opened read-only as HDF5.

    FileNotFoundError when absent; CorruptFileError naming the file and ``what`` it should
    be (e.g. "dataset file") when it cannot be read as HDF5 at all (truncated, foreign).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(path, f"not a readable {what}: cannot be read as HDF5 (truncated, or not HDF5 "
                                     f"at all: {exc})") from None

