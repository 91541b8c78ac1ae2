"""Checks of the ``simulate`` stage that run before anything is written to the run directory:
the physics recorded in an existing run directory, and the memory each simulation needs."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from cosmopipe.provenance import describe_diff, fingerprint_diff
from cosmopipe.schema import ConfigError
from cosmopipe.sims.config import MemoryLimitError, as_current_record, check_memory

from .campaign_points import task_memory_bytes
from .cluster import machine_memory
from .rundir import RunDirError, describe_os_error

log = logging.getLogger("cosmopipe.simulate")

__all__ = ["verify_run_dir", "check_simulate"]


def _read_campaign(path: Path) -> dict:
    """campaign.json of a run directory; a damaged one is a RunDirError naming it."""
    try:
        old = json.loads(path.read_text())
    except OSError as exc:
        raise RunDirError(describe_os_error(exc) or f"{path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # truncated, binary (UnicodeDecodeError is a ValueError too)
        raise RunDirError(f"{path}: damaged campaign record ({type(exc).__name__} at byte "
                          f"{getattr(exc, 'pos', getattr(exc, 'start', '?'))}); restore it or use a new "
                          f"run directory") from None
    if not isinstance(old, dict):
        raise RunDirError(f"{path}: damaged campaign record (not a JSON object); restore it or use a new "
                          f"run directory")
    return old


def verify_run_dir(settings, run_dir: Path) -> bool:
    """Refuse to mix physics: an existing campaign.json must equal this workflow's fingerprint.
    Writes nothing; returns whether campaign.json exists."""
    path = run_dir / "campaign.json"
    if not path.is_file():
        return False
    new = json.loads(json.dumps(settings.fingerprint()))
    old = _read_campaign(path)
    if isinstance(old.get("simulation"), dict):
        old["simulation"] = as_current_record(old["simulation"])
    diff = fingerprint_diff(old, new)
    if diff:
        raise ConfigError(settings.source, "simulate",
                          f"the run directory {run_dir} holds simulations made with other physics settings "
                          f"({describe_diff(diff)}). Use a new run_dir (or --run-dir) or remove the old one; results are "
                          f"never mixed.")
    return True


def _worker_memory(spec) -> int | None:
    """Memory of one worker of a cluster we start [bytes]; None for an existing scheduler."""
    if spec.kind == "local":
        return spec.memory_limit or machine_memory() // (spec.workers or os.cpu_count() or 1)
    if spec.kind in ("slurm", "pbs"):
        return spec.jobqueue["memory"] // spec.jobqueue["processes"]
    return None


def check_simulate(settings, ctx) -> None:
    """Before anything is written: the run directory's physics and the memory each task needs
    (settings: SimulateSettings, ctx: RunContext)."""
    verify_run_dir(settings, ctx.run_dir)
    spec = ctx.workflow.cluster
    need = task_memory_bytes(settings)
    if ctx.client_started or (spec.kind == "address" and not ctx.dry_run):
        worker_resources(ctx.client(), need, settings.threads_per_task)  # what the workers advertise
        return
    where = "simulate.memory_per_task" if settings.memory_per_task is not None else "simulate.simulation"
    have = _worker_memory(spec)
    if have is not None and need > have:
        raise ConfigError(settings.source, where,
                          f"each simulation needs about {need / 1e9:.2f} GB but a worker of the {spec.kind} cluster "
                          f"has {have / 1e9:.2f} GB: use fewer particles, or give the workers more memory "
                          f"(fewer workers, or the cluster's memory setting)")
    if spec.kind == "local":
        try:
            check_memory(settings.sim)
        except MemoryLimitError as exc:
            raise ConfigError(settings.source, "simulate.simulation", str(exc)) from None


def worker_resources(client, need_memory: int, need_cores: int) -> dict | None:
    """Dask resources to request, or None when the workers advertise none."""
    workers = client.scheduler_info().get("workers", {})
    have = [w.get("resources", {}) for w in workers.values()]
    with_mem = [r for r in have if "memory" in r]
    if not with_mem:
        if workers:
            log.warning("the workers advertise no 'memory' resource: concurrency per worker is not limited "
                        "by the %.2f GB each simulation needs", need_memory / 1e9)
        return None
    biggest = max(r["memory"] for r in with_mem)
    if need_memory > biggest:
        raise ConfigError("simulate", "memory_per_task",
                          f"each simulation needs about {need_memory / 1e9:.2f} GB but the largest worker offers "
                          f"{biggest / 1e9:.2f} GB: give the workers more memory or use fewer particles")
    res = {"memory": need_memory}
    if all("cores" in r for r in with_mem):
        res["cores"] = min(need_cores, max(r["cores"] for r in with_mem))
    return res
