"""Campaign archives: a run directory seeded from consolidated datasets.

A production campaign runs for many hours and is interrupted many times; a
new session may even get a new machine.  What survives is its consolidated
datasets (``RUN_DIR/datasets/<design>.h5``, rewritten every few simulations
and committed as they accumulate).  ``simulate.seed_from: DIR`` names a
directory of such datasets: before anything is run, every simulation they
hold that belongs to the workflow's designs is written back into ``sims/``
as a simulation file, so only the rest is simulated.

The datasets hold every array of a simulation file (``pk_runs`` included),
so a seeded run directory consolidates to the same spectra, bit for bit, as
the run directory that made the archive.  An archive made with other physics
is refused with the list of differences, never mixed in.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

__all__ = ["seed_run_dir"]

log = logging.getLogger("cosmopipe.simulate")


def _same_point(a: dict[str, float], b: dict[str, float]) -> bool:
    """Cosmology parameters equal to round-off (they went through CSV and HDF5)."""
    return all(math.isclose(a[n], b[n], rel_tol=1e-12, abs_tol=1e-15) for n in a)


def _archive_physics(path: Path, ds, settings) -> None:
    """Refuse an archive whose simulation settings differ from the workflow's."""
    from cosmopipe.provenance import fingerprint_diff

    stored = json.loads(ds.attrs.get("sim_config", "{}") or "{}")
    wanted = settings.fingerprint()["simulation"]
    diff = fingerprint_diff(stored, json.loads(json.dumps(wanted)))
    if diff:
        raise ValueError(f"{path}: simulate.seed_from: this archive was made with other simulation settings: "
                         + "; ".join(diff[:6]))


def _result_of_row(ds, i: int, cosmology, config, source: Path):
    """The simulation file content of dataset row ``i``."""
    from cosmopipe.sims.result import SimResult

    pk_runs = ds.pk_runs[i] if ds.pk_runs is not None else ds.pk[i][None]
    return SimResult(k=ds.k, z=ds.z, pk=ds.pk[i], pk_lin=ds.pk_lin[i], boost=ds.boost[i], nmodes=ds.nmodes,
                     pk_runs=pk_runs, cosmology=cosmology, config=config,
                     timings={"total": float(ds.timings[i])}, version=str(ds.attrs.get("code_version", "")),
                     extra={"seeded_from": str(source), "sim_id": ds.sim_ids[i],
                            "design": str(ds.attrs.get("design", ""))})


def seed_design(settings, run_dir: Path, design: str, ids: list[str], values: np.ndarray) -> int:
    """Write the simulations of ``design`` held in the archive into ``run_dir``; returns how many."""
    from cosmopipe.sims.io import write_result

    from cosmopipe.sims.dataset import read_dataset
    from .simulate import _matches, cosmology_of, sim_path

    path = Path(settings.seed_from) / f"{design}.h5"
    if not path.is_file():
        return 0
    ds = read_dataset(path)
    _archive_physics(path, ds, settings)
    rows = {sid: i for i, sid in enumerate(ds.sim_ids)}
    written = 0
    for sid, point in zip(ids, values):
        if sid not in rows:
            continue
        cosmo = cosmology_of(settings, point)
        stored = dict(zip(ds.names, map(float, ds.params[rows[sid]])))
        if not _same_point(cosmo.to_dict(), stored):
            raise ValueError(f"{path}: simulate.seed_from: simulation {sid} has other parameters than design "
                             f"{design} of this workflow (the archive belongs to another design)")
        target = sim_path(run_dir, design, sid)
        if _matches(target, cosmo, settings.sim):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_result(target, _result_of_row(ds, rows[sid], cosmo, settings.sim, path))
        written += 1
    return written


def seed_run_dir(settings, run_dir: Path, points: dict) -> int:
    """Seed every design of ``points`` (design -> (ids, values, box)) from ``settings.seed_from``."""
    if settings.seed_from is None:
        return 0
    total = 0
    for design, (ids, values, _) in points.items():
        n = seed_design(settings, run_dir, design, ids, values)
        if n:
            log.info("simulate: %d simulation(s) of design %s taken from the archive %s", n, design,
                     settings.seed_from)
        total += n
    return total


def export_archive(run_dir: Path, dest: Path) -> dict[str, int]:
    """Consolidate every design of ``run_dir`` (its own workflow.yaml) into ``dest/<design>.h5``.

    Only complete simulations that pass their checks go in; ``missing`` in each file's
    attributes lists the rest.  Reads the run directory and writes nothing into it, so it
    may run beside the campaign.  Returns design -> simulations archived.
    """
    from .simulate import consolidate, design_points
    from .workflow import load_workflow

    run_dir, dest = Path(run_dir), Path(dest)
    source = run_dir / "workflow.yaml"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: not found (is {run_dir} a cosmopipe run directory?)")
    workflow = load_workflow(_without_seed_from(source, dest), run_dir=run_dir)
    settings = workflow.stages.get("simulate")
    if settings is None:
        raise ValueError(f"{source}: the workflow has no simulate stage to archive")
    dest.mkdir(parents=True, exist_ok=True)
    counts = {}
    for design, (ids, _, box) in design_points(settings).items():
        path = consolidate(settings, run_dir, design, ids, box, workflow.raw, quiet=True, out=dest / f"{design}.h5")
        counts[design] = 0 if path is None else len(_archived_ids(path))
    return counts


def _archived_ids(path: Path) -> tuple[str, ...]:
    from cosmopipe.sims.dataset import read_dataset

    return read_dataset(path).sim_ids


def _without_seed_from(source: Path, scratch: Path) -> Path:
    """The run directory's workflow minus ``simulate.seed_from`` (a path relative to the
    original workflow file, meaningless here; archiving reads no archive)."""
    import yaml

    raw = yaml.safe_load(source.read_text())
    raw.get("simulate", {}).pop("seed_from", None)
    path = scratch / ".workflow-for-archive.yaml"
    scratch.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
