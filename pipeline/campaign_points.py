"""The points of a simulation campaign: designs (with their LCDM twins), where each
simulation's file lives, what it must hold to count as done, which are done, and what one
costs.

Shared by the simulate stage (pipeline/simulate.py), its up-front checks
(campaign_checks.py), its plan (campaign_plan.py) and campaign archives (archive.py);
``settings`` is a :class:`~cosmopipe.pipeline.campaign_settings.SimulateSettings`.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from cosmopipe.sims.cosmology import PARAMETER_RANGES, Cosmology
from cosmopipe.sims.design import ParameterBox, latin_hypercube, widen_box
from cosmopipe.sims.io import check, read_config

from .rundir import RunDirError

__all__ = ["LCDM_PROJECTION", "TWIN_SUFFIX", "design_points", "cosmology_of", "task_memory_bytes", "sim_path",
           "matches_request", "campaign_status"]

log = logging.getLogger("cosmopipe.simulate")

# The LCDM projection of a w0waCDM point: the twin of the hybrid emulator's
# B_COLA(theta) / B_COLA(theta_LCDM), run with the same seed so that cosmic
# variance and the code's own errors cancel in the ratio (arXiv:2404.12344).
LCDM_PROJECTION = {"w0": -1.0, "wa": 0.0}
TWIN_SUFFIX = "-lcdm"


def design_points(settings) -> dict[str, tuple[list[str], np.ndarray, ParameterBox]]:
    """design name -> (simulation ids, (n, d) varied-parameter values, the box drawn from)."""
    out = {}
    for d in settings.designs:
        if d.method == "lhs":
            box = widen_box(settings.box, d.widen, PARAMETER_RANGES) if d.widen else settings.box
            values = latin_hypercube(box, d.n, rng=d.seed, optimization=d.optimization)
        else:
            box, values = settings.box, np.asarray(d.table, dtype=float)
        ids = [f"{d.name}-{i:04d}" for i in range(len(values))]
        if d.twins:
            ids, values = _with_lcdm_twins(ids, values, box.names)
        out[d.name] = (ids, values, box)
    return out


def _with_lcdm_twins(ids: list[str], values: np.ndarray, names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Each point followed by its LCDM projection (id + TWIN_SUFFIX), so that a partly run
    campaign holds complete pairs."""
    twins = values.copy()
    for name, value in LCDM_PROJECTION.items():
        if name in names:
            twins[:, names.index(name)] = value
    both = np.empty((2 * len(values), values.shape[1]))
    both[0::2], both[1::2] = values, twins
    return [s for sid in ids for s in (sid, sid + TWIN_SUFFIX)], both


def cosmology_of(settings, row: np.ndarray):
    return Cosmology.from_dict({**settings.fixed, **dict(zip(settings.box.names, map(float, row)))})


def task_memory_bytes(settings) -> int:
    """Memory one simulation task may use [bytes].

    The engine's own estimate counts particle and mesh arrays; measured peaks
    are about 1.5x that plus ~0.5 GB of interpreter, CAMB and FFTW state.
    """
    if settings.memory_per_task is not None:
        return settings.memory_per_task
    return int(0.5e9 + 1.5 * settings.sim.memory_estimate_bytes())


def sim_path(run_dir: Path, design: str, sim_id: str) -> Path:
    return run_dir / "sims" / design / f"{sim_id}.h5"


def matches_request(path: Path, cosmo, config) -> bool:
    """A complete file that passes its checksums and whose stored cosmology and physics
    settings equal the requested ones; a damaged one is logged and so re-simulated."""
    try:
        stored_cosmo, stored_config = read_config(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        log.warning("%s; it will be re-simulated", exc)
        return False
    same_cosmo = all(math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or a == b
                     for a, b in zip(stored_cosmo.to_dict().values(), cosmo.to_dict().values()))
    return same_cosmo and stored_config.replace(threads=None) == config.replace(threads=None)


def campaign_status(run_dir: Path) -> dict[str, dict[str, Any]]:
    """design -> {'done', 'failed', 'missing', 'corrupt': ids; 'unverified': the done ids of
    files written before checksums; 'reasons': {id: why corrupt}} from a run directory.

    Every simulation file is read and checked (checksums, completeness); a damaged
    one is 'corrupt' (never an exception) and the next run re-simulates it."""
    designs_dir = run_dir / "designs"
    if not (run_dir / "campaign.json").is_file() or not designs_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a cosmopipe run directory (no campaign.json / designs/)")
    return {table.stem: _design_status(run_dir, table.stem, _design_ids(table))
            for table in sorted(designs_dir.glob("*.csv"))}


def _design_ids(table: Path) -> list[str]:
    """The simulation ids of a design table (its first column)."""
    try:
        with table.open() as fh:
            return [line.split(",", 1)[0] for line in fh.read().splitlines()[1:] if line.strip()]
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{table}: damaged design table (not text: undecodable byte at offset "
                          f"{exc.start})") from None


def _design_status(run_dir: Path, design: str, ids: list[str]) -> dict[str, Any]:
    status = {"done": [], "failed": [], "missing": [], "corrupt": [], "unverified": [], "reasons": {}}
    for sid in ids:
        path = sim_path(run_dir, design, sid)
        try:
            verified = check(path)
        except FileNotFoundError:
            status["failed" if path.with_suffix(".failed").is_file() else "missing"].append(sid)
        except (OSError, ValueError) as exc:
            status["corrupt"].append(sid)
            status["reasons"][sid] = str(exc)
        else:
            status["done"].append(sid)
            if not verified:
                status["unverified"].append(sid)
    return status
