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
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosmopipe.sims.design import ParameterBox, read_table, widen_box, write_table

from .archive import CONSOLIDATE_EVERY, consolidate, seed_run_dir
from .campaign_checks import check_simulate, verify_run_dir, worker_resources
from .campaign_points import (LCDM_PROJECTION, TWIN_SUFFIX, cosmology_of, design_points, matches_request,
                              sim_path, task_memory_bytes)
from .rundir import RunDirError, describe_os_error, fatal_os_error, naming_file
from cosmopipe.schema import (FILE_NAME_RULE, ConfigError, Section, boolean, choice, file_name, list_of, nonnegative_int,
                     number, number_range, positive_int, positive_number, string)
from .workflow import RunContext, Stage

__all__ = ["SimulateSettings", "DesignSpec", "parse_simulate", "run_simulate", "plan_simulate",
           "design_points", "campaign_status", "simulate_task", "task_memory_bytes", "consolidate", "TWIN_SUFFIX",
           "STAGES"]

log = logging.getLogger("cosmopipe.simulate")

# Measured on the reference machine (benchmarks/bench_cola.py): COLA evolution
# costs 245 ns of wall time per particle per step with 2 threads.
NS_PER_PARTICLE_STEP_2CORES = 245.0


@dataclass(frozen=True)
class DesignSpec:
    name: str
    method: str                    # 'lhs' or 'table'
    n: int = 0
    seed: int = 0
    widen: float = 0.0
    optimization: str | None = "random-cd"
    table: tuple[tuple[float, ...], ...] = ()   # explicit points (method 'table')
    table_source: str = ""
    twins: str | None = None       # 'lcdm': each point also run at its LCDM projection, same seed


@dataclass(frozen=True)
class SimulateSettings:
    box: ParameterBox
    fixed: dict[str, float]
    designs: tuple[DesignSpec, ...]
    sim: Any                       # sims.config.SimConfig (z_out, k_max, nk included)
    retries: int = 2
    threads_per_task: int = 1
    memory_per_task: int | None = None
    source: str = ""
    seed_from: Path | None = None  # directory of <design>.h5 datasets to seed sims/ from

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the physics of the results (not where or how fast they run)."""
        sim = {k: v for k, v in self.sim.to_dict().items() if k != "threads"}
        return {
            "parameters": {n: [lo, hi] for n, lo, hi in zip(self.box.names, self.box.lower, self.box.upper)},
            "fixed": dict(sorted(self.fixed.items())),
            "designs": {d.name: {"method": d.method, "n": d.n, "seed": d.seed, "widen": d.widen,
                                 "optimization": d.optimization, "table": [list(r) for r in d.table],
                                 **({"twins": d.twins} if d.twins else {})}
                        for d in self.designs},
            "simulation": {k: list(v) if isinstance(v, tuple) else v for k, v in sim.items()},
        }


# -- parsing ------------------------------------------------------------------
def _redshift_list(v: Any) -> tuple[float, ...]:
    zs = list_of(number, unique=True)(v)
    if any(z < 0 for z in zs):
        raise ValueError(f"redshifts must be >= 0, got {zs}")
    return tuple(sorted(zs, reverse=True))


def _redshifts(sec: Section) -> tuple[float, ...]:
    """``redshifts: [3, 1, 0]`` or ``redshifts: {min: 0, max: 3, n: 40}`` (uniform in z)."""
    if not sec.has("redshifts"):
        return (0.0,)
    if not isinstance(sec.data["redshifts"], dict):
        return sec.take("redshifts", _redshift_list)
    zsec = sec.sub("redshifts")
    lo = zsec.take("min", number)
    hi = zsec.take("max", number)
    n = zsec.take("n", positive_int)
    zsec.finish()
    if lo < 0 or hi <= lo:
        raise zsec.error(None, f"needs 0 <= min < max, got min={lo:g}, max={hi:g}")
    zs = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    return tuple(sorted((round(float(z), 10) for z in zs), reverse=True))


def _table_path(sec: Section, table: str, workflow_dir: Path, run_dir: Path | None) -> Path:
    """A design table is read only from the workflow file's directory or the run directory
    (relative paths are taken from the workflow file's directory)."""
    path = Path(table) if Path(table).is_absolute() else workflow_dir / table
    target = path.resolve()
    roots = [Path(workflow_dir).resolve()] + ([Path(run_dir).resolve()] if run_dir is not None else [])
    if not any(target == r or r in target.parents for r in roots):
        raise sec.error("table", "must be a file inside the workflow file's directory or the run directory, got "
                                 f"{table!r}")
    return path


def _parse_design(sec: Section, name: str, names: tuple[str, ...], workflow_dir: Path,
                  run_dir: Path | None = None) -> DesignSpec:
    if sec.has("table"):
        table = sec.take("table")
        if isinstance(table, str):
            path = _table_path(sec, table, workflow_dir, run_dir)
            try:
                values = read_table(path, names)
            except (OSError, ValueError) as exc:
                raise sec.error("table", str(exc)) from None
            source = str(path)
        elif isinstance(table, list) and table and all(isinstance(r, dict) for r in table):
            rows = []
            for i, row in enumerate(table):
                rsec = Section(row, sec.key(f"table[{i}]"), sec.source)
                rows.append([rsec.take(n, number) for n in names])
                rsec.finish()
            values, source = np.asarray(rows), "inline"
        else:
            raise sec.error("table", "must be a CSV file name or a list of {parameter: value} rows")
        twins = _twins(sec)
        sec.finish()
        return DesignSpec(name=name, method="table", n=len(values), table=tuple(map(tuple, values.tolist())),
                          table_source=source, twins=twins)
    n = sec.take("n", positive_int)
    seed = sec.take("seed", nonnegative_int)
    widen = sec.take("widen", number, default=0.0)
    if not 0 <= widen <= 1:
        raise sec.error("widen", f"must be a fraction in [0, 1] of each range's width, got {widen:g}")
    opt = sec.take("optimization", choice("random-cd", "lloyd", "none"), default="random-cd")
    sec.take("method", choice("lhs"), default="lhs")
    twins = _twins(sec)
    sec.finish()
    return DesignSpec(name=name, method="lhs", n=n, seed=seed, widen=widen,
                      optimization=None if opt == "none" else opt, twins=twins)




def _twins(sec: Section) -> str | None:
    twins = sec.take("twins", choice("lcdm", "none"), default="none")
    return None if twins == "none" else twins


def _check_twins(sec: Section, box: ParameterBox, fixed: dict[str, float], designs) -> None:
    """Twins need a dark-energy parameter that varies and an LCDM point inside the box."""
    for d in designs:
        if not d.twins:
            continue
        if not set(LCDM_PROJECTION) & set(box.names):
            raise sec.error(f"designs.{d.name}.twins", "lcdm twins need w0 or wa among simulate.parameters")
        for name, value in LCDM_PROJECTION.items():
            if name in box.names:
                lo, hi = box.lower[box.names.index(name)], box.upper[box.names.index(name)]
                if not lo <= value <= hi:
                    raise sec.error(f"designs.{d.name}.twins", f"the LCDM value {name}={value:g} lies outside "
                                                               f"simulate.parameters.{name} [{lo:g}, {hi:g}]")
            elif fixed.get(name) != value:
                raise sec.error(f"designs.{d.name}.twins", f"lcdm twins need {name} varied or fixed at {value:g}, "
                                                           f"it is fixed at {fixed.get(name):g}")


def _sim_config(sec: Section, z_out: tuple[float, ...], k_max: float | None, nk: int | None, threads: int):
    import re

    from cosmopipe.sims.config import SimConfig

    allowed = [f for f in SimConfig.__dataclass_fields__ if f not in ("z_out", "k_max", "nk", "threads")]
    kwargs = {}
    for name in list(sec.keys()):
        if name not in allowed:
            sec.take(name)  # mark used, then report it with the allowed list
            hint = " (use simulate.redshifts)" if name == "z_out" else " (use simulate.k)" if name in ("k_max", "nk") else ""
            raise sec.error(name, f"unknown simulation setting{hint}; allowed: {', '.join(allowed)}")
        kwargs[name] = sec.take(name)
    try:
        return SimConfig(**kwargs, z_out=z_out, k_max=k_max, nk=nk, threads=threads)
    except ValueError as exc:
        m = re.match(r"simulation setting (\w+): (.*)", str(exc))
        if m and m.group(1) in ("z_out",):
            raise ConfigError(sec.source, sec.path.rsplit(".", 1)[0] + ".redshifts", m.group(2)) from None
        if m and m.group(1) == "k_max":
            raise ConfigError(sec.source, sec.path.rsplit(".", 1)[0] + ".k.max", m.group(2)) from None
        if m:
            raise sec.error(m.group(1), m.group(2)) from None
        raise sec.error(None, str(exc)) from None


def parse_simulate(sec: Section, info: dict) -> SimulateSettings:
    from cosmopipe.sims.cosmology import PARAMETER_RANGES, Cosmology

    names_all = Cosmology.names()
    psec = sec.sub("parameters")
    names, lower, upper = [], [], []
    for name in list(psec.keys()):
        if name not in names_all:
            psec.take(name)
            raise psec.error(name, f"unknown cosmology parameter; allowed: {', '.join(names_all)}")
        lo, hi = psec.take(name, number_range)
        plo, phi = PARAMETER_RANGES[name]
        if lo < plo or hi > phi:
            raise psec.error(name, f"range [{lo:g}, {hi:g}] leaves the physical range [{plo:g}, {phi:g}]")
        names.append(name)
        lower.append(lo)
        upper.append(hi)
    if not names:
        raise psec.error(None, "name at least one varied parameter, e.g. Omega_m: [0.24, 0.40]")
    box = ParameterBox(tuple(names), tuple(lower), tuple(upper))

    fsec = sec.sub("fixed", default={})
    fixed = {}
    for name in list(fsec.keys()):
        if name not in names_all:
            fsec.take(name)
            raise fsec.error(name, f"unknown cosmology parameter; allowed: {', '.join(names_all)}")
        if name in names:
            fsec.take(name)
            raise fsec.error(name, "is also a varied parameter under simulate.parameters")
        fixed[name] = fsec.take(name, number)
    defaults = Cosmology().to_dict()
    fixed = {n: fixed.get(n, defaults[n]) for n in names_all if n not in names}
    try:
        Cosmology.from_dict({**fixed, **{n: lo for n, lo in zip(names, lower)}})
    except ValueError as exc:
        raise fsec.error(None, str(exc)) from None

    dsec = sec.sub("designs")
    designs = []
    for dname in list(dsec.keys()):
        try:
            file_name(dname)
        except ValueError:
            dsec.take(dname)
            raise dsec.error(str(dname), f"design names must be {FILE_NAME_RULE}") from None
        designs.append(_parse_design(dsec.sub(dname), dname, box.names, Path(info.get("workflow_dir", ".")),
                                     info.get("run_dir")))
    if not designs:
        raise dsec.error(None, "define at least one design, e.g. train: {n: 16, seed: 1}")
    for d in designs:
        if d.method == "table":
            inside = box.contains(np.asarray(d.table))
            if not inside.all():
                wide = widen_box(box, 1.0)  # tables may sit in a widened box; reject only far outliers
                if not wide.contains(np.asarray(d.table)).all():
                    raise dsec.error(d.name, "table points lie far outside simulate.parameters")

    _check_twins(sec, box, fixed, designs)
    seed_from = sec.take("seed_from", string, default=None)
    if seed_from is not None:
        seed_from = Path(seed_from) if Path(seed_from).is_absolute() else Path(info.get("workflow_dir", ".")) / seed_from
        if not seed_from.is_dir():
            raise sec.error("seed_from", f"{seed_from} is not a directory of <design>.h5 datasets")
    z_out = _redshifts(sec)
    ksec = sec.sub("k", default={})
    k_max = ksec.take("max", positive_number, default=None)
    nk = ksec.take("n", positive_int, default=None)
    ksec.finish()
    threads = sec.take("threads_per_task", positive_int, default=1)
    sim = _sim_config(sec.sub("simulation", default={}), z_out, k_max, nk, threads)
    retries = sec.take("retries", nonnegative_int, default=2)
    mem = sec.take("memory_per_task", default="auto")
    if mem == "auto":
        memory = None
    else:
        from .cluster import parse_bytes

        try:
            memory = parse_bytes(mem)
        except (ValueError, TypeError):
            raise sec.error("memory_per_task", f"must be auto or a size such as 2GB, got {mem!r}") from None
    sec.finish()
    return SimulateSettings(box=box, fixed=fixed, designs=tuple(designs), sim=sim, retries=retries,
                            threads_per_task=threads, memory_per_task=memory, source=sec.source,
                            seed_from=seed_from)


# -- the task (runs on a worker) ------------------------------------------------
def _write_failure(path: Path, sim_id: str, exc: BaseException) -> None:
    """Best effort: the record must never hide the failure it records (on a full or
    read-only disk it cannot be written; then no partial temp file is left either)."""
    tmp = path.with_suffix(".failed.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({
            "id": sim_id, "host": socket.gethostname(), "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        }, indent=1))
        os.replace(tmp, path)
    except OSError as record_exc:
        log.warning("cannot record the failure of %s in %s: %s", sim_id, path, record_exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def simulate_task(sim_id: str, cosmo_params: dict, config_dict: dict, out_path: str, provenance: dict) -> dict:
    """Run one simulation and write it atomically; idempotent (a matching complete file is kept)."""
    import dataclasses

    from cosmopipe.sims.config import SimConfig
    from cosmopipe.sims.cosmology import Cosmology
    from cosmopipe.sims.io import write_result
    from cosmopipe.sims.run import run_simulation

    out = Path(out_path)
    failed = out.with_suffix(".failed")
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker

        where["worker"] = get_worker().address
    except (ImportError, ValueError):
        where["worker"] = "local"
    t0 = time.perf_counter()
    try:
        cosmo = Cosmology.from_dict(cosmo_params)
        config = SimConfig.from_dict(config_dict)
        if matches_request(out, cosmo, config):
            return {"id": sim_id, "status": "skipped", "seconds": 0.0, **where}
        result = run_simulation(cosmo, config, progress=False)
        result = dataclasses.replace(result, extra={**result.extra, **provenance, "sim_id": sim_id,
                                                    "worker": where})
        with naming_file(out):
            write_result(out, result)
    except BaseException as exc:
        # Kept next to the results so `cosmopipe status` can show it; cleared on success.
        _write_failure(failed, sim_id, exc)
        raise
    failed.unlink(missing_ok=True)
    return {"id": sim_id, "status": "done", "seconds": time.perf_counter() - t0, **where}


# -- fingerprint and status -----------------------------------------------------
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


def campaign_status(run_dir: Path) -> dict[str, dict[str, Any]]:
    """design -> {'done', 'failed', 'missing', 'corrupt': ids; 'unverified': the done ids of
    files written before checksums; 'reasons': {id: why corrupt}} from a run directory.

    Every simulation file is read and checked (checksums, completeness); a damaged
    one is 'corrupt' (never an exception) and the next run re-simulates it."""
    from cosmopipe.sims.io import check

    designs_dir = run_dir / "designs"
    if not (run_dir / "campaign.json").is_file() or not designs_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a cosmopipe run directory (no campaign.json / designs/)")
    out = {}
    for table in sorted(designs_dir.glob("*.csv")):
        design = table.stem
        try:
            with table.open() as fh:
                ids = [line.split(",", 1)[0] for line in fh.read().splitlines()[1:] if line.strip()]
        except UnicodeDecodeError as exc:
            raise RunDirError(f"{table}: damaged design table (not text: undecodable byte at offset "
                              f"{exc.start})") from None
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
        out[design] = status
    return out


# -- the stage ----------------------------------------------------------------------
def _interleaved(tasks: list, points: dict) -> list:
    """Designs mixed in proportion (train, train, train, train, test, ...): a campaign
    stopped part-way then holds test simulations to validate what its training ones give."""
    position = {(d, sid): i / len(ids) for d, (ids, _, _) in points.items() for i, sid in enumerate(ids)}
    return sorted(tasks, key=lambda t: position[(t[0], t[1])])


def run_simulate(settings: SimulateSettings, ctx: RunContext) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from cosmopipe.provenance import code_version

    run_dir = ctx.run_dir
    check_run_dir(settings, run_dir)
    points = design_points(settings)
    tasks = []
    for design, (ids, values, box) in points.items():
        with naming_file(run_dir / "designs" / f"{design}.csv"):
            write_table(run_dir / "designs" / f"{design}.csv", box.names, values, ids)
        for sid, row in zip(ids, values):
            tasks.append((design, sid, cosmology_of(settings, row)))
    seed_run_dir(settings, run_dir, points)
    todo = [t for t in tasks if not matches_request(sim_path(run_dir, t[0], t[1]), t[2], settings.sim)]
    todo = _interleaved(todo, points)
    log.info("simulate: %d simulations in %d design(s); %d already complete, %d to run",
             len(tasks), len(points), len(tasks) - len(todo), len(todo))
    failures = []
    if todo:
        client = ctx.client()
        need = task_memory_bytes(settings)
        resources = worker_resources(client, need, settings.threads_per_task)
        provenance = {"workflow": ctx.workflow.name, "code_version": code_version()}
        config_dict = settings.sim.to_dict()
        futures = {}
        for design, sid, cosmo in todo:
            fut = client.submit(simulate_task, sid, cosmo.to_dict(), config_dict,
                                str(sim_path(run_dir, design, sid)), {**provenance, "design": design},
                                pure=False, retries=settings.retries, resources=resources)
            futures[fut] = sid
        bar = tqdm(total=len(futures), desc="simulations", unit="sim", disable=not ctx.progress, smoothing=0.1)
        # Log lines go above the bar instead of breaking it (root holds the console handler).
        redirect = logging_redirect_tqdm(loggers=[logging.root]) if ctx.progress else contextlib.nullcontext()
        finished, t_loop = 0, time.perf_counter()
        with redirect:
            for fut in as_completed(futures):
                sid = futures[fut]
                if fut.status == "finished":
                    info = fut.result()
                    log.info("%s %s on %s (%s) in %.1f s; %s", sid, info["status"], info["worker"], info["host"],
                             info["seconds"], _progress_line(finished + 1, len(futures), time.perf_counter() - t_loop))
                else:
                    exc = fut.exception()
                    if fatal_os_error(exc):
                        # A full or read-only disk fails every task alike: stop at the first.
                        for other in futures:
                            other.cancel()
                        bar.close()
                        raise RunDirError(f"{describe_os_error(exc)} (while writing simulation {sid}; the "
                                          f"other simulations were stopped, finished ones are kept)")
                    tb = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                    log.error("%s failed after %d retries: %s: %s\n%s", sid, settings.retries,
                              type(exc).__name__, exc, tb)
                    failures.append(sid)
                bar.update(1)
                finished += 1  # counted here: a disabled bar (--no-progress) counts nothing
                if finished % CONSOLIDATE_EVERY == 0 and finished < len(futures):
                    # A long campaign's results survive the machine: the datasets are kept
                    # current, to be committed and to seed a new run directory (seed_from).
                    for design, (ids, _, box) in points.items():
                        consolidate(settings, run_dir, design, ids, box, ctx.workflow.raw, quiet=True)
        bar.close()
    for design, (ids, _, box) in points.items():
        path = consolidate(settings, run_dir, design, ids, box, ctx.workflow.raw)
        if path is not None:
            log.info("dataset %s written (%s)", design, path)
    if failures:
        log.error("simulate: %d simulation(s) failed: %s (tracebacks above and in sims/*/*.failed); "
                  "rerun the workflow to retry them", len(failures), ", ".join(failures))
        raise RuntimeError(f"{len(failures)} simulation(s) failed: {', '.join(failures[:10])}")


def _progress_line(done: int, total: int, elapsed: float) -> str:
    """'12/500 done, ETA 3.1 h' from the rate so far (the log's ETA; the bar has its own)."""
    remaining = (total - done) * elapsed / max(done, 1)
    eta = f"{remaining / 3600:.1f} h" if remaining >= 3600 else f"{remaining / 60:.0f} min"
    return f"{done}/{total} done, ETA {eta}"


def _duration(core_seconds: float) -> str:
    if core_seconds < 3600:
        return f"{core_seconds:.3g} core-seconds"
    return f"{core_seconds / 3600:.3g} core-hours"


def _wall_estimate(settings: SimulateSettings, spec, n_tasks: int, core_seconds: float) -> list[str]:
    """Wall time and allocated core-hours of the campaign on the workflow's cluster (a plan estimate)."""
    from .cluster import cluster_slots, max_jobs, walltime_seconds

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


def plan_simulate(settings: SimulateSettings, ctx: RunContext) -> str:
    sim = settings.sim
    points = design_points(settings)
    n_total = sum(len(ids) for ids, _, _ in points.values())
    runs = 2 if sim.paired else 1
    particle_steps = sim.particles**3 * sim.steps * runs
    core_seconds = particle_steps * NS_PER_PARTICLE_STEP_2CORES * 2 * 1e-9
    mem = task_memory_bytes(settings)
    lines = [f"parameters: " + ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, lo, hi in
                                         zip(settings.box.names, settings.box.lower, settings.box.upper)),
             "fixed: " + ", ".join(f"{n}={v:g}" for n, v in settings.fixed.items())]
    for name, (ids, values, box) in points.items():
        twins = sum(sid.endswith(TWIN_SUFFIX) for sid in ids)
        count = f"{len(ids) - twins} cosmologies + {twins} LCDM twins" if twins else f"{len(ids)} cosmologies"
        lines.append(f"design {name}: {count} in " + ", ".join(
            f"{n} [{lo:.4g}, {hi:.4g}]" for n, lo, hi in zip(box.names, box.lower, box.upper)))
    lines += [
        f"simulation: {sim.box:g} Mpc/h, {sim.particles}^3 particles, {sim.mesh}^3 mesh, {sim.steps} steps "
        f"from z={sim.z_init:g}, {len(sim.z_out)} output redshifts in [{min(sim.z_out):g}, {max(sim.z_out):g}]"
        f"{', paired' if sim.paired else ''}{', fixed amplitude' if sim.fixed_amplitude else ''}",
        f"tasks: {n_total} ({runs} run{'s' if runs > 1 else ''} each)",
        f"memory per task: {mem / 1e9:.1f} GB (engine estimate {sim.memory_estimate_bytes() / 1e9:.1f} GB)",
        f"cost: {particle_steps:.3g} particle-steps per task x {2 * NS_PER_PARTICLE_STEP_2CORES:.0f} core-ns "
        f"(measured: {NS_PER_PARTICLE_STEP_2CORES:.0f} ns wall per particle-step on 2 cores) "
        f"= {_duration(core_seconds)} per task, {n_total * core_seconds / 3600:,.3g} core-hours in all "
        f"(COLA evolution only; initial conditions and {len(sim.z_out)} spectrum measurements add to it)",
        f"cluster: {ctx.workflow.cluster.describe()}",
        *_wall_estimate(settings, ctx.workflow.cluster, n_total, core_seconds),
        f"run directory: {ctx.run_dir}",
    ]
    if (ctx.run_dir / "campaign.json").is_file():
        try:
            st = campaign_status(ctx.run_dir)
            done = sum(len(s["done"]) for s in st.values())
            lines.append(f"already complete: {done} of {n_total}")
        except FileNotFoundError:
            pass
    return "\n".join(lines)


STAGES = [Stage("simulate", parse_simulate, run_simulate, plan_simulate,
                help="COLA simulations of the training and test designs", check=check_simulate)]
