"""HDF5 files of the observables emulator: campaign tables and trained emulators (no pickle).

Emulator file, format 3: root attrs format = 'cosmopipe-observables', format_version,
created, complete (written last), lmax, omnuh2, camb_settings, fixed, coordinates (JSON:
parameter -> the coordinate its regressor reads; absent in format 2, which is read as no
coordinates), provenance (JSON: campaign sizes, CAMB version, per-block components and
timings); ``box/`` (attr names, lower, upper), ``te_norm``, ``z_grid``; ``blocks/<name>/``
mean (m,), basis (c, m), inputs (q,), and the GP arrays x_train (n, q), trend (q+1, c),
lengths (c, q), alpha (c, n).  Formats 2 and 3 are read.

Campaign table, format 1: attrs format = 'cosmopipe-observables-table', names, lmax, camb,
failed, seconds; ``theta`` (n, p), ``z_grid``, ``blocks/<name>`` (n, m).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from cosmopipe.emulators.gp import GPRegressor
from cosmopipe.emulators.registry import is_model_name, model_file
from cosmopipe.sims.io import atomic_hdf5

from .campaign import BACKGROUND_TABLE_BLOCKS, MNU, Z_GRID, ObservableTable, merge_tables
from .model import _COORDINATE_MAPS, BACKGROUND_BLOCKS, BLOCKS, Block, ObservablesEmulator

__all__ = ["FORMAT", "FORMAT_VERSION", "READS_VERSIONS", "save_table", "load_table", "load_campaign",
           "save_observables", "load_observables"]

FORMAT = "cosmopipe-observables"
FORMAT_VERSION = 3   # 2: Gaussian processes in place of the MLP, emulated background; 3: input coordinates
READS_VERSIONS = (2, 3)
TABLE_FORMAT_VERSION = 1


def save_table(table: ObservableTable, path) -> Path:
    """Write a campaign to HDF5 (atomic)."""
    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT + "-table"
        f.attrs["format_version"] = TABLE_FORMAT_VERSION
        f.attrs["names"] = json.dumps(list(table.names))
        f.attrs["lmax"] = table.lmax
        f.attrs["camb"] = json.dumps(table.camb)
        f.attrs["failed"] = json.dumps(list(table.failed))
        f.attrs["seconds"] = table.seconds
        f.create_dataset("theta", data=table.theta)
        f.create_dataset("z_grid", data=Z_GRID)
        g = f.create_group("blocks")
        for k, v in table.blocks.items():
            g.create_dataset(k, data=v)
    return path


def load_table(path) -> ObservableTable:
    """Read a campaign written by :func:`save_table` (errors name the file and what is wrong)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"observable table {path} does not exist (build it with run_campaign + save_table)")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT + "-table":
                raise ValueError(f"{path}: not a cosmopipe observable table (format {f.attrs.get('format')!r})")
            names = tuple(json.loads(f.attrs["names"]))
            blocks = {k: f["blocks"][k][()] for k in f["blocks"]}
            if not set(BACKGROUND_TABLE_BLOCKS) <= set(blocks):
                raise KeyError(f"blocks {sorted(set(BACKGROUND_TABLE_BLOCKS) - set(blocks))}")
            return ObservableTable(names, f["theta"][()], blocks, int(f.attrs["lmax"]), json.loads(f.attrs["camb"]),
                                   tuple(json.loads(f.attrs["failed"])), float(f.attrs["seconds"]))
    except (KeyError, OSError) as exc:
        raise ValueError(f"{path}: corrupt or incomplete observable table ({exc})") from None


def load_campaign(directory, pattern: str = "train_*.h5") -> ObservableTable:
    """All chunks ``pattern`` of a campaign directory, merged (``bg_*.h5``: the
    background-only campaign)."""
    paths = sorted(Path(directory).glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no campaign chunks {pattern} under {directory}")
    return merge_tables([load_table(p) for p in paths])


def save_observables(emu: ObservablesEmulator, path) -> Path:
    """Write the emulator to one HDF5 file (atomic; layout in the module docstring)."""
    from datetime import datetime, timezone

    path = Path(path)
    with atomic_hdf5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["lmax"] = emu.lmax
        f.attrs["omnuh2"] = emu.omnuh2
        f.attrs["camb_settings"] = json.dumps(emu.camb)
        f.attrs["provenance"] = json.dumps(emu.provenance, default=float)
        f.attrs["fixed"] = json.dumps({"mnu": MNU})
        f.attrs["coordinates"] = json.dumps(emu.coordinates)
        b = f.create_group("box")
        b.attrs["names"] = json.dumps(list(emu.names))
        b.create_dataset("lower", data=emu.lower)
        b.create_dataset("upper", data=emu.upper)
        f.create_dataset("z_grid", data=Z_GRID)
        f.create_dataset("te_norm", data=emu.te_norm)
        g = f.create_group("blocks")
        for name, blk in emu.blocks.items():
            h = g.create_group(name)
            h.create_dataset("mean", data=blk.mean)
            h.create_dataset("basis", data=blk.basis)
            h.create_dataset("inputs", data=np.asarray(blk.inputs, int))
            for key in ("x_train", "trend", "lengths", "alpha"):
                h.create_dataset(key, data=getattr(blk.gp, key))
        f.attrs["complete"] = True
    return path


def load_observables(path) -> ObservablesEmulator:
    """Read an emulator written by :func:`save_observables`; a missing, foreign, newer or
    truncated file raises an error naming the file and the problem.  ``path`` may also be a
    shipped model's name (``cosmopipe models``), checked against its manifest first."""
    if is_model_name(str(path)):
        path = model_file(str(path))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"observables emulator {path} does not exist; build it with "
                                f"`cosmopipe observables train ...` or the observables stage (see workflows/ede_wbins.yaml)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise ValueError(f"{path}: not a cosmopipe observables emulator (format {fmt!r}, expected {FORMAT!r})")
        version = int(f.attrs.get("format_version", -1))
        if version not in READS_VERSIONS:
            raise ValueError(f"{path}: format_version {version}, this code reads "
                             f"{', '.join(map(str, READS_VERSIONS))} (train the emulator again with this version)")
        if not f.attrs.get("complete", False):
            raise ValueError(f"{path}: incomplete file (the write was interrupted); train it again")
        try:
            if not np.allclose(f["z_grid"][()], Z_GRID):
                raise ValueError(f"{path}: distance grid differs from this code's Z_GRID")
            names = tuple(json.loads(f["box"].attrs["names"]))
            blocks = {}
            for name in BLOCKS + BACKGROUND_BLOCKS:
                h = f["blocks"][name]
                gp = GPRegressor(*(h[k][()] for k in ("x_train", "trend", "lengths", "alpha")))
                blocks[name] = Block(name, h["mean"][()], h["basis"][()], tuple(int(i) for i in h["inputs"][()]), gp)
            # Format 2 predates input coordinates: its regressors read the parameters.
            coordinates = json.loads(f.attrs["coordinates"]) if version >= 3 else {}
            unknown = sorted(set(coordinates.values()) - set(_COORDINATE_MAPS))
            if unknown:
                raise ValueError(f"{path}: unknown input coordinate {unknown[0]!r} (newer code?)")
            return ObservablesEmulator(names, f["box"]["lower"][()], f["box"]["upper"][()], blocks,
                                       f["te_norm"][()], float(f.attrs["omnuh2"]), int(f.attrs["lmax"]),
                                       json.loads(f.attrs["camb_settings"]), json.loads(f.attrs["provenance"]),
                                       coordinates)
        except KeyError as exc:
            raise ValueError(f"{path}: corrupt observables emulator, missing {exc}") from None
