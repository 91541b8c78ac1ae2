"""What ``cosmopipe run --dry-run`` says of the ``simulate`` stage: the designs, the cost of
one simulation and of the campaign, and its wall time on the workflow's cluster."""
from __future__ import annotations

import math
import os

from .campaign_points import TWIN_SUFFIX, campaign_status, design_points, task_memory_bytes
from .campaign_settings import SimulateSettings
from .cluster import cluster_slots, max_jobs, walltime_seconds
from .workflow import RunContext

__all__ = ["plan_simulate", "NS_PER_PARTICLE_STEP_2CORES"]

# Measured on the reference machine (benchmarks/bench_cola.py, 128^3 particles, 256^3
# mesh, 25 steps, 2 threads, 2026-12-06): 149 ns of wall time per particle per step, the
# whole run, CAMB included.
NS_PER_PARTICLE_STEP_2CORES = 149.0


def plan_simulate(settings: SimulateSettings, ctx: RunContext) -> str:
    points = design_points(settings)
    n_total = sum(len(ids) for ids, _, _ in points.values())
    core_seconds = _core_seconds_per_task(settings)
    lines = [*_space_lines(settings, points),
             *_cost_lines(settings, n_total, core_seconds),
             f"cluster: {ctx.workflow.cluster.describe()}",
             *_wall_estimate(settings, ctx.workflow.cluster, n_total, core_seconds),
             f"run directory: {ctx.run_dir}"]
    done = _already_done(ctx)
    if done is not None:
        lines.append(f"already complete: {done} of {n_total}")
    return "\n".join(lines)


def _particle_steps(settings: SimulateSettings) -> int:
    """Particle-steps of one task (a paired task runs twice)."""
    sim = settings.sim
    return sim.particles**3 * sim.steps * (2 if sim.paired else 1)


def _core_seconds_per_task(settings: SimulateSettings) -> float:
    return _particle_steps(settings) * NS_PER_PARTICLE_STEP_2CORES * 2 * 1e-9


def _space_lines(settings: SimulateSettings, points: dict) -> list[str]:
    """The varied and fixed parameters, and each design's points and box."""
    box = settings.box
    lines = ["parameters: " + ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, lo, hi in zip(box.names, box.lower, box.upper)),
             "fixed: " + ", ".join(f"{n}={v:g}" for n, v in settings.fixed.items())]
    for name, (ids, _, dbox) in points.items():
        twins = sum(sid.endswith(TWIN_SUFFIX) for sid in ids)
        count = f"{len(ids) - twins} cosmologies + {twins} LCDM twins" if twins else f"{len(ids)} cosmologies"
        lines.append(f"design {name}: {count} in " + ", ".join(
            f"{n} [{lo:.4g}, {hi:.4g}]" for n, lo, hi in zip(dbox.names, dbox.lower, dbox.upper)))
    return lines


def _cost_lines(settings: SimulateSettings, n_total: int, core_seconds: float) -> list[str]:
    """One simulation's setup, memory and cost, and the campaign's core-hours."""
    sim = settings.sim
    runs = 2 if sim.paired else 1
    mem = task_memory_bytes(settings)
    return [
        f"simulation: {sim.box:g} Mpc/h, {sim.particles}^3 particles, {sim.mesh}^3 mesh, {sim.steps} steps "
        f"from z={sim.z_init:g}, {len(sim.z_out)} output redshifts in [{min(sim.z_out):g}, {max(sim.z_out):g}]"
        f"{', paired' if sim.paired else ''}{', fixed amplitude' if sim.fixed_amplitude else ''}",
        f"tasks: {n_total} ({runs} run{'s' if runs > 1 else ''} each)",
        f"memory per task: {mem / 1e9:.1f} GB (engine estimate {sim.memory_estimate_bytes() / 1e9:.1f} GB)",
        f"cost: {_particle_steps(settings):.3g} particle-steps per task x {2 * NS_PER_PARTICLE_STEP_2CORES:.0f} core-ns "
        f"(measured: {NS_PER_PARTICLE_STEP_2CORES:.0f} ns wall per particle-step on 2 cores) "
        f"= {_duration(core_seconds)} per task, {n_total * core_seconds / 3600:,.3g} core-hours in all "
        f"(COLA evolution only; initial conditions and {len(sim.z_out)} spectrum measurements add to it)",
    ]


def _duration(core_seconds: float) -> str:
    if core_seconds < 3600:
        return f"{core_seconds:.3g} core-seconds"
    return f"{core_seconds / 3600:.3g} core-hours"


def _wall_estimate(settings: SimulateSettings, spec, n_tasks: int, core_seconds: float) -> list[str]:
    """Wall time and allocated core-hours of the campaign on the workflow's cluster (a plan estimate)."""
    slots = cluster_slots(spec, settings.threads_per_task, task_memory_bytes(settings))
    if not slots:
        return ["estimated wall time: unknown (the workers of an existing scheduler are not known before the run)"
                if slots is None else "estimated wall time: never (no worker can hold one simulation)"]
    task_wall = core_seconds / settings.threads_per_task
    wall = math.ceil(n_tasks / slots) * task_wall
    if spec.kind == "local":
        cores = os.cpu_count() or 1
    else:
        cores = max_jobs(spec) * spec.jobqueue["cores"]
    lines = [f"estimated wall time: {wall / 3600:,.3g} h ({slots} simulations at once, {task_wall:,.3g} s each); "
             f"{wall * cores / 3600:,.4g} core-hours allocated on {cores} cores"]
    if spec.kind in ("slurm", "pbs") and wall > walltime_seconds(spec.jobqueue["walltime"]):
        jq = spec.jobqueue
        lines.append(f"warning: the campaign outlasts one job's walltime ({jq['walltime']})"
                     + ("" if jq["worker_lifetime"] and "adaptive" in jq else
                        f": set cluster.{spec.kind}.worker_lifetime and adaptive so replacement jobs continue it"))
    return lines


def _already_done(ctx: RunContext) -> int | None:
    """Simulations already complete in an existing run directory (None for a new one)."""
    if not (ctx.run_dir / "campaign.json").is_file():
        return None
    try:
        return sum(len(s["done"]) for s in campaign_status(ctx.run_dir).values())
    except FileNotFoundError:   # campaign.json without designs/: nothing was run yet
        return None
