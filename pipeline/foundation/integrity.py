"""Checksums of the arrays and attributes of cosmopipe's HDF5 files.

Every file the project writes (simulations, datasets, emulators) is *sealed*
once its content is written and before its ``complete`` flag:

* each dataset carries the attribute ``sha256``: a sha256 over its dtype,
  shape and bytes as read back, and over its own attributes (units, ...);
* each group, the root included, carries ``attrs_sha256``: a sha256 over its
  attributes and the names of its members, so a changed metadata value, a
  renamed or a vanished dataset is detected like a changed array.

Verification recomputes both from what h5py reads, so a damaged byte
anywhere -- data, attribute value, object header, B-tree -- either raises
:class:`CorruptFileError` or did not change anything a reader sees.
Chain files are written step by step and use their own per-step checksums
(:class:`cosmopipe.likelihoods.sampling.ChainBackend`) built on :func:`row_checksums`.

Attribute values are hashed by value (an int is an int whichever HDF5
integer type holds it), so a digest computed from the values being written
equals the one recomputed from the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import h5py
import numpy as np

__all__ = ["CorruptFileError", "array_digest", "attrs_digest", "seal", "verify", "reading", "row_checksums",
           "warn_unverified", "text", "texts", "DATASET_ATTR", "GROUP_ATTR"]

log = logging.getLogger("cosmopipe.integrity")

DATASET_ATTR = "sha256"
GROUP_ATTR = "attrs_sha256"
# 'complete' is set after sealing (it marks that the seal was written).
_NOT_HASHED = frozenset({DATASET_ATTR, GROUP_ATTR, "complete"})

# What h5py, numpy and json raise on damaged content: wrong types, truncated or
# looping metadata, undecodable names, absurd shapes.
DAMAGE_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, UnicodeError,
                 OverflowError, MemoryError, AttributeError)


class CorruptFileError(ValueError):
    """A cosmopipe file that cannot be trusted: damaged, truncated, interrupted or foreign.

    ``path`` is the file; the message starts with it and says what failed.
    """

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


# -- strings ---------------------------------------------------------------------------
# Text is stored as fixed-length UTF-8 bytes, not h5py's default variable-length
# strings: those live in HDF5's global heap, and one damaged length byte there
# makes HDF5 allocate up to 4 GiB (seconds of work) before it reports the damage.
def text(value: str) -> np.bytes_:
    """A str as a fixed-length HDF5 string (read back as bytes; decode as UTF-8)."""
    return np.bytes_(str(value).encode("utf-8"))


def texts(values: Iterable[str]) -> np.ndarray:
    """Strings as a fixed-length HDF5 string array (dtype S<n>, at least S1)."""
    encoded = [str(v).encode("utf-8") for v in values]
    return np.array(encoded, dtype=f"S{max([1, *map(len, encoded)])}")


# -- digests ---------------------------------------------------------------------------
def _array_bytes(a: np.ndarray) -> bytes:
    if a.dtype.kind == "O":
        # Variable-length strings come back as objects; hash their text, not the pointers.
        items = [x.encode("utf-8", "surrogatepass") if isinstance(x, str) else bytes(x) for x in a.ravel()]
        return b"O" + repr(a.shape).encode() + b"".join(len(x).to_bytes(8, "little") + x for x in items)
    a = np.ascontiguousarray(a)
    return a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()


def _canonical(value: Any) -> bytes:
    """Type-tagged bytes of an attribute value, equal for a value and its h5py read-back."""
    if isinstance(value, (bool, np.bool_)):
        return b"?1" if value else b"?0"
    if isinstance(value, (int, np.integer)):
        return b"i" + str(int(value)).encode()
    if isinstance(value, (float, np.floating)):
        return b"f" + float(value).hex().encode()
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, np.ndarray):
        return b"a" + _array_bytes(value)
    if isinstance(value, (tuple, list)):
        return b"t" + b"".join(len(c).to_bytes(8, "little") + c for c in map(_canonical, value))
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be hashed")


def _update(h, chunk: bytes) -> None:
    h.update(len(chunk).to_bytes(8, "little"))
    h.update(chunk)


def array_digest(a: np.ndarray, attrs: Mapping[str, Any] | None = None) -> str:
    """sha256 (hex) of an array's dtype, shape and bytes, and of ``attrs`` (the dataset's own)."""
    h = hashlib.sha256()
    _update(h, _array_bytes(np.asarray(a)))
    for key in sorted(attrs or {}):
        if key not in _NOT_HASHED:
            _update(h, key.encode())
            _update(h, _canonical(attrs[key]))
    return h.hexdigest()


def attrs_digest(attrs: Mapping[str, Any], members: Iterable[str] = ()) -> str:
    """sha256 (hex) of a group's attributes (values by :func:`_canonical`) and member names."""
    h = hashlib.sha256()
    for key in sorted(attrs):
        if key not in _NOT_HASHED:
            _update(h, key.encode())
            _update(h, _canonical(attrs[key]))
    _update(h, b"members")
    for name in sorted(members):
        _update(h, name.encode())
    return h.hexdigest()


def row_checksums(*arrays: np.ndarray) -> np.ndarray:
    """(n,) uint64: the first 8 bytes of a sha256 over row i of every array (n rows each).

    Used for files written row by row (chain steps), where a whole-array digest
    would have to be recomputed at every append.
    """
    n = arrays[0].shape[0]
    rows = np.concatenate([np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in arrays], axis=1)
    out = b"".join(hashlib.sha256(row).digest()[:8] for row in rows)
    return np.frombuffer(out, dtype="<u8").copy() if n else np.zeros(0, dtype="<u8")


# -- sealing and verifying ---------------------------------------------------------------
def _attrs(obj) -> dict[str, Any]:
    return {key: obj.attrs[key] for key in obj.attrs if key not in _NOT_HASHED}


def seal(group: h5py.Group) -> None:
    """Store the checksums of every dataset and group below ``group`` (itself included).

    Call after everything else is written; datasets are read back so the
    digest is of what a reader will get.
    """
    for name in group:
        obj = group[name]
        if isinstance(obj, h5py.Dataset):
            obj.attrs[DATASET_ATTR] = text(array_digest(obj[()], _attrs(obj)))
        else:
            seal(obj)
    group.attrs[GROUP_ATTR] = text(attrs_digest(_attrs(group), group.keys()))


def _stored(attrs: Mapping[str, Any], attr: str, path: Path, what: str, hint: str) -> str:
    if attr not in attrs:
        raise CorruptFileError(path, f"{what} has no {attr} checksum: the file is damaged{hint}")
    value = attrs[attr]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _split_attrs(obj) -> tuple[dict[str, Any], dict[str, Any]]:
    """(all attributes, the hashed ones), each attribute read once (h5py reads are slow)."""
    everything = {key: obj.attrs[key] for key in obj.attrs}
    return everything, {k: v for k, v in everything.items() if k not in _NOT_HASHED}


def _mismatch(path: Path, what: str, stored: str, computed: str, hint: str) -> CorruptFileError:
    return CorruptFileError(path, f"{what} fails its sha256 check (stored {stored[:12]}…, computed "
                                  f"{computed[:12]}…): the file is damaged{hint}")


def verify(group: h5py.Group, path: str | os.PathLike, hint: str = "") -> dict[str, np.ndarray]:
    """Check every checksum below ``group``; returns its arrays by name relative to ``group``.

    Raises :class:`CorruptFileError` naming ``path``, the array or group and both
    digests.  ``hint`` ends the message (e.g. "; delete it to re-simulate").
    """
    path = Path(path)
    hint = f"; {hint}" if hint else ""
    limit = 2 * os.path.getsize(path) + (1 << 20)
    arrays: dict[str, np.ndarray] = {}
    with reading(path, "content"):
        _verify_group(group, path, hint, limit, "", arrays)
    return arrays


def _verify_group(group: h5py.Group, path: Path, hint: str, limit: int, prefix: str,
                  arrays: dict[str, np.ndarray]) -> None:
    label = f"group '{group.name}'"
    everything, hashed = _split_attrs(group)
    stored = _stored(everything, GROUP_ATTR, path, label, hint)
    computed = attrs_digest(hashed, group.keys())
    if stored != computed:
        raise _mismatch(path, f"{label} (attributes or members)", stored, computed, hint)
    for name in group:
        obj = group[name]
        key = prefix + name
        if isinstance(obj, h5py.Dataset):
            # A damaged shape must not make us allocate more than the file could hold
            # (deflate expands at most ~1032:1, hence the factor for chunked arrays).
            if obj.size * obj.dtype.itemsize > (limit if obj.chunks is None else 1100 * limit):
                raise CorruptFileError(path, f"array '{key}' declares shape {obj.shape}, larger than the "
                                             f"file: the file is damaged{hint}")
            data = obj[()]
            everything, hashed = _split_attrs(obj)
            stored = _stored(everything, DATASET_ATTR, path, f"array '{key}'", hint)
            computed = array_digest(data, hashed)
            if stored != computed:
                raise _mismatch(path, f"array '{key}'", stored, computed, hint)
            arrays[key] = data
        elif isinstance(obj, h5py.Group):
            _verify_group(obj, path, hint, limit, key + "/", arrays)
        else:
            raise CorruptFileError(path, f"'{key}' is neither an array nor a group: the file is damaged{hint}")


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "content") -> Iterator[None]:
    """Turn any error raised while decoding a file's content into :class:`CorruptFileError`.

    A damaged HDF5 file makes h5py, numpy or json raise almost any built-in
    exception; callers must see one documented type that names the file.
    """
    try:
        yield
    except CorruptFileError:
        raise
    except DAMAGE_ERRORS as exc:
        raise CorruptFileError(path, f"unreadable {what} ({type(exc).__name__}: {exc}): the file is damaged") \
            from None


_warned: set[tuple[str, str]] = set()


def warn_unverified(kind: str, path: str | os.PathLike) -> None:
    """Log once per file that a file of an older format carries no checksums."""
    key = (kind, str(Path(path).resolve()))
    if key not in _warned:
        _warned.add(key)
        log.warning("%s: this %s was written before cosmopipe stored checksums; it is read unverified "
                    "(rewrite it to protect it against damage)", path, kind)
