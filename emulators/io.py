"""Emulators <-> one HDF5 file each (no pickle).

Format "cosmopipe-emulator", format_version 3.  Root attrs: format,
format_version, kind ('boost', 'hybrid', 'linear' or 'response'), created (UTC
ISO) and complete (written last).  An emulator is written into a group:

    <group>.attrs   kind, plus species (linear) or reference and mode (hybrid:
                    'ratio' or 'response', the kind of its 'cola' group)
    <group>/params  (linear, response) the parameters callers give: attrs varied,
                    fixed; lower, upper (the network inputs, in model, may be fewer:
                    linear omits A_s and n_s, a response its insensitive parameters)
    <group>/model   the PCA + MLP (emulators.core.PCANetwork):
        attrs       mode, varied (JSON list, input order), fixed (JSON dict),
                    activation, n_layers
        lower, upper (p,)        training box of the varied parameters
        z (nz,), k (nk,)         training grid, increasing [k in h/Mpc]
        pca_mean (B, m), pca_basis (B, c, m), n_components (B,), output_scale (B,)
        network/W<i> (B, n_in, n_out), network/b<i> (B, n_out)
    <group>/provenance  attrs: dataset_hash, code_version, training_seconds,
                    training_settings, training_report, validation, ... (dicts as JSON)
    <group>/linear  (boost, response, optional) an attached linear emulator, same layout
    <group>/cola    (hybrid) the embedded COLA boost or (mode 'response') response
                    emulator of R = B(theta) / B(theta_LCDM), same layout
    <group>/ee2_lcdm  (hybrid, optional) the EE2 surrogate on the LCDM slice, a boost
                    emulator (emulators.ee2_lcdm)
    <group>/hmcode_tail  (hybrid, optional) HMcode-2020's response shape above the COLA
                    k_max, a boost emulator of ln R (emulators.hmcode_tail)

so a hybrid file carries its COLA emulator (and that one its linear-power
emulator) and stands alone.

Version 2 files carry checksums (sims.integrity): attr "sha256" on every array
and "attrs_sha256" on every group, the embedded emulators' included, verified
before anything is built.  Text is stored as fixed-length UTF-8.  Version 3
added the response kind and the hybrid's mode attribute; version 2 files are
read as before (a hybrid without mode is a 'ratio' hybrid).  Version 1 files
(no checksums) are read with a warning.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosmopipe.h5format import read_header
from cosmopipe.integrity import CorruptFileError, seal, text
from cosmopipe.sims.io import atomic_hdf5

from .core import PCANetwork
from .network import MLP
from .params import ParameterSpace

__all__ = ["save", "FORMAT", "FORMAT_VERSION", "KINDS"]

FORMAT = "cosmopipe-emulator"
FORMAT_VERSION = 3
_HINT = "delete it and train it again"
KINDS = ("boost", "hybrid", "linear", "response")


class _Corrupt(Exception):
    """Raised inside readers; turned into a ValueError naming the file."""


# -- writing ------------------------------------------------------------------------
def _write_space(g: h5py.Group, space) -> None:
    g.attrs["varied"] = text(json.dumps(list(space.names)))
    g.attrs["fixed"] = text(json.dumps(space.fixed))
    g.create_dataset("lower", data=space.lower)
    g.create_dataset("upper", data=space.upper)


def _write_model(group: h5py.Group, model) -> None:
    g = group.create_group("model")
    _write_space(g, model.space)
    g.attrs["mode"] = text(model.mode)
    g.attrs["activation"] = text(model.network.activation)
    g.attrs["n_layers"] = len(model.network.weights)
    for name, data in (("z", model.z), ("k", model.k), ("pca_mean", model.pca_mean), ("pca_basis", model.pca_basis),
                       ("n_components", model.n_components), ("output_scale", model.output_scale)):
        g.create_dataset(name, data=np.asarray(data))
    g["k"].attrs["units"] = text("h/Mpc")
    net = g.create_group("network")
    for i, (w, b) in enumerate(zip(model.network.weights, model.network.biases)):
        net.create_dataset(f"W{i}", data=w)
        net.create_dataset(f"b{i}", data=b)


def _write_info(group: h5py.Group, info: dict) -> None:
    g = group.create_group("provenance")
    json_keys = []
    for key, value in info.items():
        if isinstance(value, str):
            g.attrs[key] = text(value)
        elif isinstance(value, (int, float, bool, np.integer, np.floating)):
            g.attrs[key] = value
        else:
            g.attrs[key] = text(json.dumps(value, default=_json_default))
            json_keys.append(key)
    g.attrs["_json_keys"] = text(json.dumps(json_keys))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _write(group: h5py.Group, emulator) -> None:
    kind = getattr(emulator, "kind", None)
    if kind not in KINDS:
        raise TypeError(f"save: expected a boost, hybrid, linear or response emulator, got {type(emulator).__name__}")
    group.attrs["kind"] = text(kind)
    _write_info(group, emulator.info)
    if kind == "hybrid":
        group.attrs["reference"] = text("EuclidEmulator2")
        group.attrs["mode"] = text(emulator.mode)
        _write(group.create_group("cola"), emulator.cola)
        for name in ("ee2_lcdm", "hmcode_tail"):
            if getattr(emulator, name) is not None:
                _write(group.create_group(name), getattr(emulator, name))
        return
    _write_model(group, emulator.model)
    if kind == "linear":
        group.attrs["species"] = text(emulator.species)
    if kind in ("linear", "response"):
        _write_space(group.create_group("params"), emulator.space)
    if kind != "linear" and emulator.linear is not None:
        _write(group.create_group("linear"), emulator.linear)


def save(emulator, path: str | Path) -> Path:
    """Write ``emulator`` to the HDF5 file ``path`` atomically, sealed with checksums; returns the path."""
    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = text(FORMAT)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = text(datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write(f, emulator)
        seal(f)
        f.attrs["complete"] = True
    return path


# -- reading ------------------------------------------------------------------------
def _attr(group: h5py.Group, name: str) -> Any:
    if name not in group.attrs:
        raise _Corrupt(f"{group.name}: attribute {name!r} is missing")
    value = group.attrs[name]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _array(group: h5py.Group, name: str) -> np.ndarray:
    if name not in group:
        raise _Corrupt(f"{group.name}: dataset {name!r} is missing")
    return np.asarray(group[name][()])


def _read_space(g: h5py.Group):
    return ParameterSpace(tuple(json.loads(_attr(g, "varied"))), _array(g, "lower"), _array(g, "upper"),
                          json.loads(_attr(g, "fixed")))


def _read_model(group: h5py.Group):
    if "model" not in group:
        raise _Corrupt(f"{group.name}: group 'model' is missing")
    g = group["model"]
    space = _read_space(g)
    if "network" not in g:
        raise _Corrupt(f"{g.name}: group 'network' is missing")
    n_layers = int(_attr(g, "n_layers"))
    weights = tuple(_array(g["network"], f"W{i}").astype(float) for i in range(n_layers))
    biases = tuple(_array(g["network"], f"b{i}").astype(float) for i in range(n_layers))
    network = MLP(weights, biases, str(_attr(g, "activation")))
    return PCANetwork(space=space, z=_array(g, "z"), k=_array(g, "k"), mode=str(_attr(g, "mode")),
                      pca_mean=_array(g, "pca_mean"), pca_basis=_array(g, "pca_basis"),
                      n_components=_array(g, "n_components"), output_scale=_array(g, "output_scale"),
                      network=network)


def _read_info(group: h5py.Group) -> dict:
    if "provenance" not in group:
        return {}
    g = group["provenance"]
    json_keys = set(json.loads(_attr(g, "_json_keys"))) if "_json_keys" in g.attrs else set()
    info = {}
    for key in g.attrs:
        if key in ("_json_keys", "attrs_sha256"):
            continue
        value = _attr(g, key)
        info[key] = json.loads(value) if key in json_keys else value
    return info


def _check_header(path: Path, f: h5py.File) -> int:
    """The format_version of an emulator file whose header is valid."""
    fmt, version, complete = read_header(f.attrs)
    if fmt != FORMAT:
        raise CorruptFileError(path, f"not a cosmopipe emulator (format attribute {fmt!r}, expected {FORMAT!r})")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise CorruptFileError(path, f"emulator format_version {version!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise CorruptFileError(path, f"emulator format_version {version} was written by a newer cosmopipe; "
                                     f"this version reads up to {FORMAT_VERSION} (upgrade cosmopipe)")
    if version < 1:
        raise CorruptFileError(path, f"emulator format_version {version} is not valid")
    if not bool(complete):
        raise CorruptFileError(path, "incomplete emulator file (the write was interrupted)")
    return version
