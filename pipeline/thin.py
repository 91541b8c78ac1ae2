"""Thinned GetDist chains with provenance: what a committed posterior figure is replotted from.

``cosmopipe plot RUN_DIR ... --thin-out DIR`` writes, for every run, ``DIR/<name>/``:

* ``<name>.txt``, ``<name>.paramnames``, ``<name>.ranges``: one GetDist chain, the
  run's samples (all chains, burn-in already removed by the sample stage) thinned by a
  whole factor until the text file is at most ``MAX_BYTES`` (5 MB), so it can be
  committed next to the figure;
* ``thinned.json``: the run summary's convergence record, fiducial values, workflow
  name, nuisance list and warnings (so a replot carries the same markers, legend and
  NOT CONVERGED banner), plus the provenance: source files with their sha256, thinning
  factor, rows kept, cosmopipe version and git commit, the command and the date.

``find_thinned(DIR/<name>)`` gives the PosteriorRun of such a directory.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cosmopipe.provenance import code_version

from .posterior import PosteriorRun

__all__ = ["MAX_BYTES", "THINNED_FILE", "thin_run", "find_thinned"]

MAX_BYTES = 5_000_000
THINNED_FILE = "thinned.json"
# Summary fields a replot needs: convergence banner, legend, markers, nuisance filter, warnings.
_KEEP = ("status", "stopped_because", "steps_per_chain", "chains", "walkers", "tests", "burn_in_steps", "thin",
         "samples", "fiducial", "workflow", "nuisance", "warnings")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _chain_files(root: Path) -> list[Path]:
    files = sorted(root.parent.glob(root.name + "_*.txt"))
    single = root.parent / (root.name + ".txt")
    return files or ([single] if single.is_file() else [])


def _format_rows(table: np.ndarray) -> list[str]:
    return [" ".join(f"{x:.8e}" for x in row) for row in table]


def thin_run(run: PosteriorRun, out_dir: str | Path, name: str, max_bytes: int = MAX_BYTES) -> Path:
    """Write the thinned chain of ``run`` to ``out_dir/name/`` (see the module docstring); returns that directory."""
    files = _chain_files(run.root)
    table = np.vstack([np.atleast_2d(np.loadtxt(f)) for f in files])
    lines = _format_rows(table)
    row_bytes = max(1, int(np.mean([len(line) + 1 for line in lines[:1000]])))
    factor = max(1, math.ceil(len(lines) * row_bytes / (0.95 * max_bytes)))
    kept = lines[::factor]
    target = Path(out_dir) / name
    target.mkdir(parents=True, exist_ok=True)
    chain = target / f"{name}.txt"
    chain.write_text("\n".join(kept) + "\n")
    if chain.stat().st_size > max_bytes:
        raise ValueError(f"{chain}: {chain.stat().st_size} bytes after thinning by {factor}, above {max_bytes}")
    sources = [run.root.parent / (run.root.name + ext) for ext in (".paramnames", ".ranges")]
    for src in sources:
        if src.is_file():
            shutil.copyfile(src, target / f"{name}{src.suffix}")
    record = {k: run.summary[k] for k in _KEEP if k in run.summary}
    record.setdefault("workflow", run.label)
    record.setdefault("fiducial", dict(run.fiducial))
    record["provenance"] = {
        "source_files": {str(f): _sha256(f) for f in files + [s for s in sources if s.is_file()]},
        "thinned_by": factor, "rows_in": len(lines), "rows_kept": len(kept), "max_bytes": max_bytes,
        "weights": "unchanged (GetDist column 1); every factor-th row of the concatenated chains",
        "cosmopipe": code_version(), "command": " ".join(["cosmopipe", *sys.argv[1:]]),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (target / THINNED_FILE).write_text(json.dumps(record, indent=1, default=float) + "\n")
    return target


def find_thinned(directory: str | Path) -> PosteriorRun | None:
    """The PosteriorRun of a directory written by :func:`thin_run`, or None when it is not one."""
    directory = Path(directory)
    meta = directory / THINNED_FILE
    if not meta.is_file():
        return None
    record = json.loads(meta.read_text())
    names = sorted(directory.glob("*.paramnames"))
    if len(names) != 1:
        raise FileNotFoundError(f"{directory}: expected one <name>.paramnames next to {THINNED_FILE}, "
                                f"found {len(names)}")
    root = names[0].with_name(names[0].name[: -len(".paramnames")])
    if not root.with_name(root.name + ".txt").is_file():
        raise FileNotFoundError(f"{directory}: chain file {root.name}.txt is missing")
    return PosteriorRun(root, str(record.get("workflow") or directory.name), dict(record.get("fiducial") or {}),
                        record)
