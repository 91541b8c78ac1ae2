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
import tempfile
from pathlib import Path

import numpy as np

from cosmopipe.provenance import code_version, fingerprint_diff
from cosmopipe.sims.config import as_current_record
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.dataset import SimDataset, read_dataset, write_dataset
from cosmopipe.sims.io import is_complete, read_result, write_result
from cosmopipe.sims.result import SimResult

from .campaign_points import cosmology_of, design_points, matches_request, sim_path
from .workflow import load_workflow

__all__ = ["consolidate", "seed_run_dir", "export_archive"]

log = logging.getLogger("cosmopipe.simulate")

# Completed simulations between two rewrites of the datasets during a campaign.
CONSOLIDATE_EVERY = 10


def consolidate(settings, run_dir: Path, design: str, ids: list[str], box,
                workflow_raw: dict, quiet: bool = False, out: Path | None = None) -> Path | None:
    """Gather the complete simulations of a design into datasets/<design>.h5."""
    present = [sid for sid in ids if is_complete(sim_path(run_dir, design, sid))]
    if not present:
        return None
    results = [read_result(sim_path(run_dir, design, sid)) for sid in present]
    k, z = results[0].k, results[0].z
    for sid, r in zip(present, results):
        if r.k.shape != k.shape or not np.allclose(r.k, k, rtol=1e-6) or not np.array_equal(r.z, z):
            raise ValueError(f"{sim_path(run_dir, design, sid)}: k or z grid differs from the rest of design {design}")
    names = Cosmology.names()
    missing = [sid for sid in ids if sid not in present]
    ds = SimDataset(
        names=names,
        params=np.array([[r.cosmology.to_dict()[n] for n in names] for r in results]),
        varied=box.names, lower=np.asarray(box.lower), upper=np.asarray(box.upper),
        z=z, k=k,
        boost=np.stack([r.boost for r in results]), pk=np.stack([r.pk for r in results]),
        pk_lin=np.stack([r.pk_lin for r in results]), nmodes=results[0].nmodes,
        sim_ids=tuple(present), timings=np.array([r.timings.get("total", np.nan) for r in results]),
        pk_runs=(np.stack([r.pk_runs for r in results])
                 if len({r.pk_runs.shape for r in results}) == 1 else None),
        attrs={"design": design, "sim_config": json.dumps(settings.fingerprint()["simulation"]),
               "workflow": json.dumps(workflow_raw, default=str), "code_version": code_version(),
               "missing": json.dumps(missing)},
    )
    path = write_dataset(out or run_dir / "datasets" / f"{design}.h5", ds)
    if missing and not quiet:
        log.warning("dataset %s: %d of %d simulations missing (%s%s)", path, len(missing), len(ids),
                    ", ".join(missing[:5]), " ..." if len(missing) > 5 else "")
    return path


def _same_point(a: dict[str, float], b: dict[str, float]) -> bool:
    """Cosmology parameters equal to round-off (they went through CSV and HDF5)."""
    return all(math.isclose(a[n], b[n], rel_tol=1e-12, abs_tol=1e-15) for n in a)


def _archive_physics(path: Path, ds, settings) -> None:
    """Refuse an archive whose simulation settings differ from the workflow's."""

    stored = as_current_record(json.loads(ds.attrs.get("sim_config", "{}") or "{}"))
    wanted = settings.fingerprint()["simulation"]
    diff = fingerprint_diff(stored, json.loads(json.dumps(wanted)))
    if diff:
        raise ValueError(f"{path}: simulate.seed_from: this archive was made with other simulation settings: "
                         + "; ".join(diff[:6]))


def _result_of_row(ds, i: int, cosmology, config, source: Path):
    """The simulation file content of dataset row ``i``."""

    pk_runs = ds.pk_runs[i] if ds.pk_runs is not None else ds.pk[i][None]
    return SimResult(k=ds.k, z=ds.z, pk=ds.pk[i], pk_lin=ds.pk_lin[i], boost=ds.boost[i], nmodes=ds.nmodes,
                     pk_runs=pk_runs, cosmology=cosmology, config=config,
                     timings={"total": float(ds.timings[i])}, version=str(ds.attrs.get("code_version", "")),
                     extra={"seeded_from": str(source), "sim_id": ds.sim_ids[i],
                            "design": str(ds.attrs.get("design", ""))})


def seed_design(settings, run_dir: Path, design: str, ids: list[str], values: np.ndarray) -> int:
    """Write the simulations of ``design`` held in the archive into ``run_dir``; returns how many."""


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
        if matches_request(target, cosmo, settings.sim):
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
    run_dir, dest = Path(run_dir), Path(dest)
    source = run_dir / "workflow.yaml"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: not found (is {run_dir} a cosmopipe run directory?)")
    with tempfile.TemporaryDirectory() as scratch:
        workflow = load_workflow(_without_seed_from(source, Path(scratch)), run_dir=run_dir)
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

    return read_dataset(path).sim_ids


def _without_seed_from(source: Path, scratch: Path) -> Path:
    """The run directory's workflow minus ``simulate.seed_from`` (a path relative to the
    original workflow file, meaningless here; archiving reads no archive)."""
    import yaml

    raw = yaml.safe_load(source.read_text())
    raw.get("simulate", {}).pop("seed_from", None)
    path = scratch / "workflow.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
