"""Where tasks run: a local Dask cluster, SLURM/PBS through dask-jobqueue, or an existing scheduler.

Workflow forms of the ``cluster`` key::

    cluster: local                          # LocalCluster sized to this machine
    cluster: {local: {workers: 2, threads_per_worker: 1, memory_limit: 4GB}}
    cluster: {slurm: {cores: 32, memory: 120GB, walltime: "04:00:00", queue: regular,
                      account: m1234, job_directives: ["--constraint=cpu"], processes: 4,
                      worker_lifetime: 3h50m, jobs: 4, adaptive: {minimum: 1, maximum: 20}}}
    cluster: {pbs: {...same keys...}}
    cluster: {address: "tcp://host:8786", timeout: 10}

Workers we start advertise two Dask *resources*, ``memory`` (bytes) and
``cores``; simulation tasks request their estimated memory and thread count,
so a worker never runs more simulations at once than fit in its memory.
Scheduler and dashboard listen on 127.0.0.1 unless ``host`` /
``dashboard_address`` say otherwise (jobqueue clusters must listen on an
address the compute nodes reach: set ``interface`` or ``host`` there).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .schema import (ConfigError, Section, choice, list_of, nonnegative_int, optional, positive_int,
                     positive_number, string)

__all__ = ["ClusterSpec", "parse_cluster", "start_cluster", "stop_cluster", "parse_bytes", "machine_memory"]

KINDS = ("local", "slurm", "pbs", "address")


def parse_bytes(text: str | int | float) -> int:
    """'4GB', '512 MiB', 2e9 -> bytes."""
    from dask.utils import parse_bytes as _parse

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    return int(_parse(str(text)))


def _bytes(v: Any) -> int:
    try:
        n = parse_bytes(v)
    except (ValueError, TypeError):
        raise ValueError(f"must be a memory size such as 4GB or 512MiB, got {v!r}") from None
    if n <= 0:
        raise ValueError(f"must be a positive memory size, got {v!r}")
    return n


def machine_memory() -> int:
    """Physical memory of this machine [bytes] (cgroup limits respected by psutil/dask)."""
    from distributed.system import MEMORY_LIMIT

    return int(MEMORY_LIMIT)


@dataclass(frozen=True)
class ClusterSpec:
    kind: str                                  # local | slurm | pbs | address
    workers: int | None = None                 # local: worker processes (None: sized to machine)
    threads_per_worker: int | None = None      # local: task slots per worker (None: cores / workers)
    memory_limit: int | None = None            # local: bytes per worker (None: machine memory / workers)
    host: str = "127.0.0.1"
    dashboard_address: str = "127.0.0.1:0"
    address: str | None = None
    timeout: float = 10.0                      # seconds to reach an existing scheduler
    jobqueue: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "address":
            return f"existing scheduler at {self.address}"
        if self.kind == "local":
            return (f"local cluster ({self.workers or 'auto'} workers, "
                    f"{self.threads_per_worker or 'auto'} threads each)")
        jq = self.jobqueue
        from dask.utils import format_bytes

        return (f"{self.kind.upper()} jobs of {jq.get('cores')} cores / {format_bytes(jq.get('memory', 0))} "
                f"({jq.get('processes', 1)} worker processes each)")


_ADDRESS_RE = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s]+$")


def _parse_local(sec: Section) -> ClusterSpec:
    spec = ClusterSpec(
        kind="local",
        workers=sec.take("workers", optional(positive_int), default=None),
        threads_per_worker=sec.take("threads_per_worker", optional(positive_int), default=None),
        memory_limit=sec.take("memory_limit", optional(_bytes), default=None),
        host=sec.take("host", string, default="127.0.0.1"),
        dashboard_address=str(sec.take("dashboard_address", default="127.0.0.1:0")),
    )
    sec.finish()
    return spec


def _parse_jobqueue(sec: Section, kind: str) -> ClusterSpec:
    jq: dict[str, Any] = {
        "cores": sec.take("cores", positive_int),
        "memory": sec.take("memory", _bytes),
        "processes": sec.take("processes", positive_int, default=1),
        "walltime": sec.take("walltime", string, default="01:00:00"),
        "queue": sec.take("queue", optional(string), default=None),
        "account": sec.take("account", optional(string), default=None),
        "job_directives": sec.take("job_directives", list_of(string, min_len=0), default=[]),
        "job_script_prologue": sec.take("job_script_prologue", list_of(string, min_len=0), default=[]),
        "worker_lifetime": sec.take("worker_lifetime", optional(string), default=None),
        "worker_lifetime_stagger": sec.take("worker_lifetime_stagger", string, default="4m"),
        "jobs": sec.take("jobs", nonnegative_int, default=1),
        "interface": sec.take("interface", optional(string), default=None),
        "local_directory": sec.take("local_directory", optional(string), default=None),
        "log_directory": sec.take("log_directory", optional(string), default=None),
        "python": sec.take("python", optional(string), default=None),
    }
    adaptive = sec.sub("adaptive", default={}) if sec.has("adaptive") else None
    if adaptive is not None:
        lo = adaptive.take("minimum", nonnegative_int, default=0)
        hi = adaptive.take("maximum", positive_int)
        if lo > hi:
            raise adaptive.error("minimum", f"must not exceed adaptive.maximum ({hi}), got {lo}")
        adaptive.finish()
        jq["adaptive"] = {"minimum": lo, "maximum": hi}
    if jq["cores"] % jq["processes"]:
        raise sec.error("processes", f"must divide cores ({jq['cores']}), got {jq['processes']}")
    spec = ClusterSpec(
        kind=kind,
        host=sec.take("host", string, default="127.0.0.1"),
        dashboard_address=str(sec.take("dashboard_address", default="127.0.0.1:0")),
        jobqueue=jq,
    )
    sec.finish()
    return spec


def parse_cluster(value: Any, source: str, key: str = "cluster") -> ClusterSpec:
    """Validate the ``cluster`` setting (a name, an address, or a one-key mapping)."""
    if isinstance(value, str):
        if value in ("local", "slurm", "pbs"):
            value = {value: {}} if value == "local" else {value: None}
        elif _ADDRESS_RE.match(value):
            value = {"address": value}
        else:
            raise ConfigError(source, key, f"must be local, slurm, pbs, a scheduler address such as "
                                           f"tcp://host:8786, or a mapping; got {value!r}")
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(source, key, f"must be a mapping with exactly one of {', '.join(KINDS)}; got {value!r}")
    (kind, body), = value.items()
    if kind not in KINDS:
        raise ConfigError(source, f"{key}.{kind}", f"unknown cluster kind; allowed: {', '.join(KINDS)}")
    if kind == "address":
        if isinstance(body, str):
            body = {"address": body}
        sec = Section(body, key, source)
        address = sec.take("address", string)
        if not _ADDRESS_RE.match(address):
            raise sec.error("address", f"must look like tcp://host:port, got {address!r}")
        spec = ClusterSpec(kind="address", address=address, timeout=sec.take("timeout", positive_number, default=10.0))
        sec.finish()
        return spec
    if body is None:
        raise ConfigError(source, f"{key}.{kind}", f"{kind} needs settings (at least cores and memory) in the workflow "
                                                   f"file's cluster section")
    sec = Section(body, f"{key}.{kind}", source)
    return _parse_local(sec) if kind == "local" else _parse_jobqueue(sec, kind)


# -- starting -------------------------------------------------------------------
def _local_cluster(spec: ClusterSpec, log: logging.Logger):
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    workers = spec.workers or cores
    threads = spec.threads_per_worker or max(1, cores // workers)
    memory = spec.memory_limit or machine_memory() // workers
    log.info("starting a local Dask cluster: %d worker processes x %d threads, %.1f GB each",
             workers, threads, memory / 1e9)
    return LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, memory_limit=memory,
        host=spec.host, dashboard_address=spec.dashboard_address,
        resources={"memory": memory, "cores": threads}, silence_logs=logging.ERROR,
    )


def _jobqueue_cluster(spec: ClusterSpec, log: logging.Logger):
    jq = spec.jobqueue
    per_process_mem = jq["memory"] // jq["processes"]
    per_process_cores = jq["cores"] // jq["processes"]
    extra = ["--resources", f"memory={per_process_mem},cores={per_process_cores}"]
    if jq["worker_lifetime"]:
        # Workers retire before the walltime kills them; their tasks move elsewhere.
        extra += ["--lifetime", jq["worker_lifetime"], "--lifetime-stagger", jq["worker_lifetime_stagger"]]
    kwargs: dict[str, Any] = dict(
        cores=jq["cores"], memory=f"{jq['memory']}B", processes=jq["processes"], walltime=jq["walltime"],
        queue=jq["queue"], job_extra_directives=jq["job_directives"], job_script_prologue=jq["job_script_prologue"],
        worker_extra_args=extra, interface=jq["interface"], local_directory=jq["local_directory"],
        log_directory=jq["log_directory"],
        scheduler_options={"host": spec.host if jq["interface"] is None else None,
                           "dashboard_address": spec.dashboard_address},
    )
    if jq["python"]:
        kwargs["python"] = jq["python"]
    if spec.kind == "slurm":
        from dask_jobqueue import SLURMCluster as cls

        kwargs["account"] = jq["account"]
    else:
        from dask_jobqueue import PBSCluster as cls

        kwargs["account"] = jq["account"]
    kwargs["scheduler_options"] = {k: v for k, v in kwargs["scheduler_options"].items() if v is not None}
    cluster = cls(**kwargs)
    if "adaptive" in jq:
        cluster.adapt(minimum_jobs=jq["adaptive"]["minimum"], maximum_jobs=jq["adaptive"]["maximum"])
        log.info("%s cluster: adaptive, %d to %d jobs", spec.kind, jq["adaptive"]["minimum"], jq["adaptive"]["maximum"])
    else:
        cluster.scale(jobs=jq["jobs"])
        log.info("%s cluster: %d jobs requested", spec.kind, jq["jobs"])
    return cluster


def start_cluster(spec: ClusterSpec, log: logging.Logger | None = None):
    """Start (or connect to) the cluster; returns (cluster or None, client)."""
    from distributed import Client

    log = log or logging.getLogger("cosmopipe.cluster")
    if not logging.getLogger("cosmopipe").isEnabledFor(logging.DEBUG):
        # distributed sets its own INFO level when first imported; its worker start/stop
        # chatter would drown the campaign's log (-v keeps it).
        for name in ("distributed", "dask_jobqueue"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if spec.kind == "address":
        try:
            client = Client(spec.address, timeout=f"{spec.timeout}s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError("cluster", "address",
                              f"cannot reach a Dask scheduler at {spec.address} within {spec.timeout:g} s ({exc})") from None
        log.info("connected to the Dask scheduler at %s; dashboard %s", spec.address, client.dashboard_link)
        print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        return None, client
    cluster = _local_cluster(spec, log) if spec.kind == "local" else _jobqueue_cluster(spec, log)
    client = Client(cluster)
    log.info("Dask scheduler %s; dashboard %s", cluster.scheduler_address, client.dashboard_link)
    print(f"Dask dashboard: {client.dashboard_link}", flush=True)
    return cluster, client


def stop_cluster(cluster, client) -> None:
    try:
        client.close()
    finally:
        if cluster is not None:
            cluster.close()
