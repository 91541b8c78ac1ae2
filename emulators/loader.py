"""Reading emulator files: the format's groups (emulators.io) back into model objects.

Separate from :mod:`cosmopipe.emulators.io`, which writes them, so that the model
classes can save themselves without the format module importing them back.
"""
from __future__ import annotations

from pathlib import Path

from cosmopipe.h5format import open_file
from cosmopipe.integrity import CorruptFileError, reading, verify, warn_unverified

from .boost import BoostEmulator
from .hybrid import HybridEmulator
from .io import (KINDS, _HINT, _attr, _check_header, _Corrupt, _read_info, _read_model, _read_space)
from .linear import LinearEmulator
from .response import ResponseEmulator

__all__ = ["load"]


def _read(group):
    kind = _attr(group, "kind")
    if kind not in KINDS:
        raise _Corrupt(f"{group.name}: unknown emulator kind {kind!r} (known: {', '.join(KINDS)})")
    info = _read_info(group)
    if kind == "hybrid":
        if "cola" not in group:
            raise _Corrupt(f"{group.name}: the embedded COLA emulator (group 'cola') is missing")
        cola = _read(group["cola"])
        mode = _attr(group, "mode") if "mode" in group.attrs else "ratio"
        want = ResponseEmulator if mode == "response" else BoostEmulator
        if mode not in ("ratio", "response") or not isinstance(cola, want):
            raise _Corrupt(f"{group.name}: hybrid mode {mode!r} with an embedded {cola.kind!r} emulator")
        parts = {name: _read(group[name]) if name in group else None for name in ("ee2_lcdm", "hmcode_tail")}
        for name, part in parts.items():
            if part is not None and not isinstance(part, BoostEmulator):
                raise _Corrupt(f"{group.name}/{name}: expected a boost emulator, found kind {part.kind!r}")
        return HybridEmulator(cola=cola, info=info, **parts)
    model = _read_model(group)
    if kind == "linear":
        if "params" not in group:
            raise _Corrupt(f"{group.name}: group 'params' is missing")
        return LinearEmulator(space=_read_space(group["params"]), model=model, species=str(_attr(group, "species")),
                              info=info)
    linear = _read(group["linear"]) if "linear" in group else None
    if linear is not None and not isinstance(linear, LinearEmulator):
        raise _Corrupt(f"{group.name}/linear: expected a linear emulator, found kind {linear.kind!r}")
    if kind == "response":
        if "params" not in group:
            raise _Corrupt(f"{group.name}: group 'params' is missing")
        return ResponseEmulator(space=_read_space(group["params"]), model=model, linear=linear, info=info)
    return BoostEmulator(model=model, linear=linear, info=info)


def load(path: str | Path):
    """The emulator stored at ``path``: a BoostEmulator, HybridEmulator or LinearEmulator.

    Raises FileNotFoundError when absent and CorruptFileError (a ValueError)
    naming the file when it is not HDF5 (or truncated), not an emulator,
    written by a newer cosmopipe, incomplete, fails a checksum or is
    internally inconsistent."""
    path = Path(path)
    f = open_file(path, "emulator file")
    with f, reading(path, "emulator content"):
        version = _check_header(path, f)
        if version >= 2:
            verify(f, path, _HINT)
        else:
            warn_unverified("emulator", path)
        try:
            emulator = _read(f)
            # Not a field: the short repr names the file (see emulators.core.summary).
            object.__setattr__(emulator, "_source", str(path))
            return emulator
        except CorruptFileError:
            raise
        except _Corrupt as exc:
            raise CorruptFileError(path, f"corrupt emulator file: {exc}") from None
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(path, f"corrupt emulator file: {exc}") from None
