"""The ``simulate`` section of a workflow parsed into :class:`SimulateSettings`.

The section's keys are documented in pipeline/simulate.py; every error names the file and
the key path (``simulate.designs.train.n: must be a positive integer, got -3``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosmopipe.schema import (FILE_NAME_RULE, ConfigError, Section, choice, file_name, list_of, nonnegative_int,
                              number, number_range, positive_int, positive_number, string)
from cosmopipe.sims.config import SimConfig
from cosmopipe.sims.cosmology import PARAMETER_RANGES, Cosmology
from cosmopipe.sims.design import ParameterBox, read_table, widen_box

from .campaign_points import LCDM_PROJECTION
from .cluster import parse_bytes

__all__ = ["DesignSpec", "SimulateSettings", "parse_simulate"]


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
    sim: SimConfig                 # z_out, k_max and nk included
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


def parse_simulate(sec: Section, info: dict) -> SimulateSettings:
    # The keys are taken in this order so that, of several mistakes, the first one in the
    # documented layout is the one reported.
    workflow_dir = Path(info.get("workflow_dir", "."))
    box = _parameter_box(sec.sub("parameters"))
    fixed = _fixed_parameters(sec.sub("fixed", default={}), box)
    designs = _designs(sec.sub("designs"), box, workflow_dir, info.get("run_dir"))
    _check_twins(sec, box, fixed, designs)
    seed_from = _seed_from(sec, workflow_dir)
    z_out = _redshifts(sec)
    k_max, nk = _k_bins(sec.sub("k", default={}))
    threads = sec.take("threads_per_task", positive_int, default=1)
    sim = _sim_config(sec.sub("simulation", default={}), z_out, k_max, nk, threads)
    retries = sec.take("retries", nonnegative_int, default=2)
    memory = _memory_per_task(sec)
    sec.finish()
    return SimulateSettings(box=box, fixed=fixed, designs=tuple(designs), sim=sim, retries=retries,
                            threads_per_task=threads, memory_per_task=memory, source=sec.source,
                            seed_from=seed_from)


# -- the parameter space ------------------------------------------------------------
def _parameter_box(psec: Section) -> ParameterBox:
    """The varied parameters, each a range inside its physical range."""
    names_all = Cosmology.names()
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
    return ParameterBox(tuple(names), tuple(lower), tuple(upper))


def _fixed_parameters(fsec: Section, box: ParameterBox) -> dict[str, float]:
    """Every parameter that is not varied: as given, else the Cosmology default."""
    names_all = Cosmology.names()
    given = {}
    for name in list(fsec.keys()):
        if name not in names_all:
            fsec.take(name)
            raise fsec.error(name, f"unknown cosmology parameter; allowed: {', '.join(names_all)}")
        if name in box.names:
            fsec.take(name)
            raise fsec.error(name, "is also a varied parameter under simulate.parameters")
        given[name] = fsec.take(name, number)
    defaults = Cosmology().to_dict()
    fixed = {n: given.get(n, defaults[n]) for n in names_all if n not in box.names}
    # Cosmology validates the fixed values; the varied ones only complete the point (their
    # ranges were checked above).
    try:
        Cosmology.from_dict({**fixed, **dict(zip(box.names, box.lower))})
    except ValueError as exc:
        raise fsec.error(None, str(exc)) from None
    return fixed


# -- designs ----------------------------------------------------------------------
def _designs(dsec: Section, box: ParameterBox, workflow_dir: Path, run_dir: Path | None) -> list[DesignSpec]:
    designs = []
    for dname in list(dsec.keys()):
        try:
            file_name(dname)
        except ValueError:
            dsec.take(dname)
            raise dsec.error(str(dname), f"design names must be {FILE_NAME_RULE}") from None
        designs.append(_parse_design(dsec.sub(dname), dname, box.names, workflow_dir, run_dir))
    if not designs:
        raise dsec.error(None, "define at least one design, e.g. train: {n: 16, seed: 1}")
    for d in designs:
        if d.method == "table" and not widen_box(box, 1.0).contains(np.asarray(d.table)).all():
            # Tables may sit in a widened box (as widened LHS designs do); only far outliers
            # are mistakes.
            raise dsec.error(d.name, "table points lie far outside simulate.parameters")
    return designs


def _parse_design(sec: Section, name: str, names: tuple[str, ...], workflow_dir: Path,
                  run_dir: Path | None = None) -> DesignSpec:
    if sec.has("table"):
        values, source = _table_values(sec, names, workflow_dir, run_dir)
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


def _table_values(sec: Section, names: tuple[str, ...], workflow_dir: Path,
                  run_dir: Path | None) -> tuple[np.ndarray, str]:
    """(points, where they came from) of ``table:``, a CSV file or inline rows."""
    table = sec.take("table")
    if isinstance(table, str):
        path = _table_path(sec, table, workflow_dir, run_dir)
        try:
            return read_table(path, names), str(path)
        except (OSError, ValueError) as exc:
            raise sec.error("table", str(exc)) from None
    if isinstance(table, list) and table and all(isinstance(r, dict) for r in table):
        rows = []
        for i, row in enumerate(table):
            rsec = Section(row, sec.key(f"table[{i}]"), sec.source)
            rows.append([rsec.take(n, number) for n in names])
            rsec.finish()
        return np.asarray(rows), "inline"
    raise sec.error("table", "must be a CSV file name or a list of {parameter: value} rows")


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


def _seed_from(sec: Section, workflow_dir: Path) -> Path | None:
    seed_from = sec.take("seed_from", string, default=None)
    if seed_from is None:
        return None
    path = Path(seed_from) if Path(seed_from).is_absolute() else workflow_dir / seed_from
    if not path.is_dir():
        raise sec.error("seed_from", f"{path} is not a directory of <design>.h5 datasets")
    return path


# -- what each simulation measures and how it runs ------------------------------------------
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
    # Rounded so that a grid read back from a file compares equal to the requested one.
    return tuple(sorted((round(float(z), 10) for z in zs), reverse=True))


def _k_bins(ksec: Section) -> tuple[float | None, int | None]:
    """(k_max, number of bins); None leaves SimConfig's default (the particle Nyquist)."""
    k_max = ksec.take("max", positive_number, default=None)
    nk = ksec.take("n", positive_int, default=None)
    ksec.finish()
    return k_max, nk


def _sim_config(sec: Section, z_out: tuple[float, ...], k_max: float | None, nk: int | None,
                threads: int) -> SimConfig:
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
        raise _sim_config_error(sec, str(exc)) from None


def _sim_config_error(sec: Section, message: str) -> ConfigError:
    """SimConfig's ``simulation setting NAME: why`` as the workflow key that set NAME
    (z_out and k_max come from simulate.redshifts and simulate.k, not simulate.simulation)."""
    m = re.match(r"simulation setting (\w+): (.*)", message)
    parent = sec.path.rsplit(".", 1)[0]
    if m and m.group(1) == "z_out":
        return ConfigError(sec.source, parent + ".redshifts", m.group(2))
    if m and m.group(1) == "k_max":
        return ConfigError(sec.source, parent + ".k.max", m.group(2))
    if m:
        return sec.error(m.group(1), m.group(2))
    return sec.error(None, message)


def _memory_per_task(sec: Section) -> int | None:
    """Bytes, or None for ``auto`` (estimated from the simulation size)."""
    mem = sec.take("memory_per_task", default="auto")
    if mem == "auto":
        return None
    try:
        return parse_bytes(mem)
    except (ValueError, TypeError):
        raise sec.error("memory_per_task", f"must be auto or a size such as 2GB, got {mem!r}") from None
