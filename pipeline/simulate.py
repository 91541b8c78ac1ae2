"""The ``simulate`` stage: COLA simulations of training and test designs on a Dask cluster.

Workflow section::

    simulate:
      parameters:                  # varied parameters: [min, max] (the box before widening)
        Omega_m: [0.24, 0.40]
        w0: [-1.3, -0.7]
      fixed: {wa: 0.0, m_nu: 0.058}   # every other Cosmology parameter (defaults otherwise)
      designs:
        train: {n: 200, seed: 1, widen: 0.1}          # Latin hypercube (random-cd optimised)
        test:  {n: 50, seed: 2}
        extra: {table: designs/extra.csv}             # or an explicit table (CSV with a header)
        paired: {n: 100, seed: 3, twins: lcdm}         # each point also at w0 = -1, wa = 0 (id <id>-lcdm)
      seed_from: archive/            # <design>.h5 datasets of an earlier run: their simulations are
                                     # written back into sims/ instead of being run again
      simulation: {box: 256, particles: 64, steps: 20, paired: true, fixed_amplitude: true, seed: 7}
      redshifts: [3, 2, 1, 0.5, 0]  # or {min: 0, max: 3, n: 40} (n values uniform in z)
      k: {max: 1.0, n: 24}          # output bins [h/Mpc]; default: particle Nyquist, N_p/2 bins
      retries: 2                    # per task, on top of the first attempt
      threads_per_task: 1
      memory_per_task: auto         # or e.g. 2GB

Run directory layout::

    RUN_DIR/workflow.yaml          the workflow as run
    RUN_DIR/campaign.json          physics fingerprint (a rerun with other physics is refused)
    RUN_DIR/designs/<design>.csv   id + parameter values
    RUN_DIR/sims/<design>/<id>.h5  one simulation (written atomically by its worker)
    RUN_DIR/sims/<design>/<id>.failed   JSON traceback of the last failed attempt
    RUN_DIR/datasets/<design>.h5   consolidated dataset (pipeline.dataset)
    RUN_DIR/run.log                log

Every simulation of a campaign uses the same initial-condition seed: the
emulator then learns the cosmology dependence without seed-to-seed scatter
(cosmic variance is common to all runs and largely cancels in the boost).

This module runs the stage; the section is parsed in campaign_settings.py, the points
and their files are campaign_points.py, the task a worker runs is campaign_task.py, the
up-front checks campaign_checks.py, the dry-run plan campaign_plan.py and the datasets
and archives archive.py.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from pathlib import Path

from cosmopipe.provenance import code_version
from cosmopipe.sims.design import write_table

from .archive import CONSOLIDATE_EVERY, consolidate, seed_run_dir
from .campaign_checks import check_simulate, verify_run_dir, worker_resources
from .campaign_plan import plan_simulate
from .campaign_points import (TWIN_SUFFIX, campaign_status, cosmology_of, design_points, matches_request, sim_path,
                              task_memory_bytes)
from .campaign_settings import DesignSpec, SimulateSettings, parse_simulate
from .campaign_task import simulate_task
from .rundir import RunDirError, describe_os_error, fatal_os_error, naming_file
from .workflow import RunContext, Stage

# The stage is spread over the campaign_* modules; the names that callers and tests
# import from here stay importable from here.
__all__ = ["SimulateSettings", "DesignSpec", "parse_simulate", "run_simulate", "plan_simulate",
           "design_points", "campaign_status", "simulate_task", "task_memory_bytes", "consolidate", "TWIN_SUFFIX",
           "check_run_dir", "cosmology_of", "sim_path", "STAGES"]

log = logging.getLogger("cosmopipe.simulate")


def run_simulate(settings: SimulateSettings, ctx: RunContext) -> None:
    run_dir = ctx.run_dir
    check_run_dir(settings, run_dir)
    points = design_points(settings)
    tasks = _write_designs(settings, run_dir, points)
    seed_run_dir(settings, run_dir, points)
    todo = _interleaved([t for t in tasks if not matches_request(sim_path(run_dir, t[0], t[1]), t[2], settings.sim)],
                        points)
    log.info("simulate: %d simulations in %d design(s); %d already complete, %d to run",
             len(tasks), len(points), len(tasks) - len(todo), len(todo))
    failures = _collect(settings, ctx, _submit(settings, ctx, todo), points) if todo else []
    _consolidate_all(settings, ctx, points)
    if failures:
        log.error("simulate: %d simulation(s) failed: %s (tracebacks above and in sims/*/*.failed); "
                  "rerun the workflow to retry them", len(failures), ", ".join(failures))
        raise RuntimeError(f"{len(failures)} simulation(s) failed: {', '.join(failures[:10])}")


def check_run_dir(settings: SimulateSettings, run_dir: Path) -> None:
    """:func:`verify_run_dir`, then record this workflow's fingerprint in a new run directory."""
    if verify_run_dir(settings, run_dir):
        return
    path = run_dir / "campaign.json"
    tmp = path.with_suffix(".json.tmp")
    try:
        with naming_file(path):
            run_dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(json.loads(json.dumps(settings.fingerprint())), indent=1))
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_designs(settings: SimulateSettings, run_dir: Path, points: dict) -> list[tuple]:
    """designs/<design>.csv of every design; returns its (design, id, Cosmology) tasks."""
    tasks = []
    for design, (ids, values, box) in points.items():
        table = run_dir / "designs" / f"{design}.csv"
        with naming_file(table):
            write_table(table, box.names, values, ids)
        tasks += [(design, sid, cosmology_of(settings, row)) for sid, row in zip(ids, values)]
    return tasks


def _interleaved(tasks: list, points: dict) -> list:
    """Designs mixed in proportion (train, train, train, train, test, ...): a campaign
    stopped part-way then holds test simulations to validate what its training ones give."""
    position = {(d, sid): i / len(ids) for d, (ids, _, _) in points.items() for i, sid in enumerate(ids)}
    return sorted(tasks, key=lambda t: position[(t[0], t[1])])


def _submit(settings: SimulateSettings, ctx: RunContext, todo: list[tuple]) -> dict:
    """future -> simulation id, one task per simulation to run."""
    client = ctx.client()
    resources = worker_resources(client, task_memory_bytes(settings), settings.threads_per_task)
    provenance = {"workflow": ctx.workflow.name, "code_version": code_version()}
    config_dict = settings.sim.to_dict()
    futures = {}
    for design, sid, cosmo in todo:
        fut = client.submit(simulate_task, sid, cosmo.to_dict(), config_dict,
                            str(sim_path(ctx.run_dir, design, sid)), {**provenance, "design": design},
                            pure=False, retries=settings.retries, resources=resources)
        futures[fut] = sid
    return futures


def _collect(settings: SimulateSettings, ctx: RunContext, futures: dict, points: dict) -> list[str]:
    """Wait for every task, logging each as it finishes; returns the ids that failed."""
    from distributed import as_completed
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    failures = []
    bar = tqdm(total=len(futures), desc="simulations", unit="sim", disable=not ctx.progress, smoothing=0.1)
    # Log lines go above the bar instead of breaking it (root holds the console handler).
    redirect = logging_redirect_tqdm(loggers=[logging.root]) if ctx.progress else contextlib.nullcontext()
    finished, t_loop = 0, time.perf_counter()
    with bar, redirect:
        for fut in as_completed(futures):
            sid = futures[fut]
            if fut.status == "finished":
                info = fut.result()
                log.info("%s %s on %s (%s) in %.1f s; %s", sid, info["status"], info["worker"], info["host"],
                         info["seconds"], _progress_line(finished + 1, len(futures), time.perf_counter() - t_loop))
            else:
                _failed(settings, fut, sid, futures)
                failures.append(sid)
            bar.update(1)
            finished += 1  # counted here: a disabled bar (--no-progress) counts nothing
            if finished % CONSOLIDATE_EVERY == 0 and finished < len(futures):
                # A long campaign's results survive the machine: the datasets are kept
                # current, to be committed and to seed a new run directory (seed_from).
                _consolidate_all(settings, ctx, points, quiet=True)
    return failures


def _failed(settings: SimulateSettings, fut, sid: str, futures: dict) -> None:
    """Log a task that failed after its retries; a full or read-only disk stops the campaign."""
    exc = fut.exception()
    if fatal_os_error(exc):
        # A full or read-only disk fails every task alike: stop at the first.
        for other in futures:
            other.cancel()
        raise RunDirError(f"{describe_os_error(exc)} (while writing simulation {sid}; the "
                          f"other simulations were stopped, finished ones are kept)")
    tb = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
    log.error("%s failed after %d retries: %s: %s\n%s", sid, settings.retries, type(exc).__name__, exc, tb)


def _consolidate_all(settings: SimulateSettings, ctx: RunContext, points: dict, quiet: bool = False) -> None:
    """datasets/<design>.h5 of every design from what is done so far."""
    for design, (ids, _, box) in points.items():
        path = consolidate(settings, ctx.run_dir, design, ids, box, ctx.workflow.raw, quiet=quiet)
        if path is not None and not quiet:
            log.info("dataset %s written (%s)", design, path)


def _progress_line(done: int, total: int, elapsed: float) -> str:
    """'12/500 done, ETA 3.1 h' from the rate so far (the log's ETA; the bar has its own)."""
    remaining = (total - done) * elapsed / max(done, 1)
    eta = f"{remaining / 3600:.1f} h" if remaining >= 3600 else f"{remaining / 60:.0f} min"
    return f"{done}/{total} done, ETA {eta}"


STAGES = [Stage("simulate", parse_simulate, run_simulate, plan_simulate,
                help="COLA simulations of the training and test designs", check=check_simulate)]
