"""Where tasks run: a local Dask cluster, SLURM/PBS through dask-jobqueue, or an existing scheduler.

Workflow forms of the ``cluster`` key::

    cluster: local                          # LocalCluster sized to this machine
    cluster: {local: {workers: 2, threads_per_worker: 1, memory_limit: 4GB}}
    cluster: {slurm: {cores: 32, memory: 120GB, walltime: "04:00:00", queue: regular,
                      account: m1234, job_directives: ["--constraint=cpu"], processes: 4,
                      worker_lifetime: 3h50m, jobs: 4, adaptive: {minimum: 1, maximum: 20}}}
    cluster: {pbs: {...same keys...}}
    cluster: {address: "tcp://host:8786", timeout: 10}
    cluster: {slurm: {..., interface: ib0, security: temporary}}     # TLS beyond loopback
    cluster: {slurm: {..., security: {tls_ca_file: ca.pem, tls_cert: me.pem, tls_key: me.key}}}

``cosmopipe run --cluster X`` merges with the file's section (:func:`merge_cluster`):
``--cluster slurm`` keeps the file's slurm settings, ``local`` and an address
replace them.

Workers we start advertise two Dask *resources*, ``memory`` (bytes) and
``cores``; simulation tasks request their estimated memory and thread count,
so a worker never runs more simulations at once than fit in its memory.
Scheduler and dashboard listen on 127.0.0.1 unless ``host`` /
``dashboard_address`` say otherwise (jobqueue clusters must listen on an
address the compute nodes reach: set ``interface`` or ``host`` there). A
scheduler beyond loopback without ``security`` accepts anyone who reaches it
(it runs whatever code it is sent), so that is logged as a warning.
Jobqueue workers stop ``death_timeout`` seconds after losing the scheduler, so
a killed driver leaves no job running; job ids go to RUN_DIR/jobs.json
(pipeline.cluster_jobs) for ``cosmopipe status`` and ``cosmopipe cancel``.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cosmopipe.schema import (ConfigError, Section, list_of, nonnegative_int, optional, positive_int,
                              positive_number, string)

from .cluster_jobs import JobMonitor

__all__ = ["ClusterSpec", "parse_cluster", "merge_cluster", "start_cluster", "stop_cluster", "parse_bytes",
           "machine_memory", "job_script", "cluster_plan", "exposed_without_tls"]

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
    security: Any = None                       # None | "temporary" | (ca_file, cert, key)

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
_LOOPBACK = ("127.", "localhost", "::1", "[::1]")
# Values left from a template; submitting them wastes a queue wait on a rejected job.
_PLACEHOLDER_RE = re.compile(r"^(your[_-]?\w*|<.*>|changeme|xxx+|todo|fixme|m0000)$", re.IGNORECASE)


def _security(sec: Section) -> Any:
    """``security: temporary`` or ``{tls_ca_file, tls_cert, tls_key}`` (paths) -> spec value."""
    if not sec.has("security"):
        return None
    value = sec.data["security"]
    if value == "temporary":
        return sec.take("security")
    if not isinstance(value, dict):
        sec.take("security")
        raise sec.error("security", f"must be temporary or a mapping of tls_ca_file, tls_cert, tls_key; got {value!r}")
    tls = sec.sub("security")
    files = tuple(tls.take(k, string) for k in ("tls_ca_file", "tls_cert", "tls_key"))
    tls.finish()
    for key, path in zip(("tls_ca_file", "tls_cert", "tls_key"), files):
        if not os.path.isfile(path):
            raise tls.error(key, f"file {path} not found")
    return files


def _parse_local(sec: Section) -> ClusterSpec:
    spec = ClusterSpec(
        kind="local",
        workers=sec.take("workers", optional(positive_int), default=None),
        threads_per_worker=sec.take("threads_per_worker", optional(positive_int), default=None),
        memory_limit=sec.take("memory_limit", optional(_bytes), default=None),
        host=sec.take("host", string, default="127.0.0.1"),
        dashboard_address=str(sec.take("dashboard_address", default="127.0.0.1:0")),
        security=_security(sec),
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
        "job_name": sec.take("job_name", string, default="cosmopipe"),
        # Workers (and so their jobs) end this long after losing the scheduler: a killed driver
        # costs at most this much allocation.
        "death_timeout": sec.take("death_timeout", positive_number, default=60.0),
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
        security=_security(sec),
    )
    sec.finish()
    return spec


def merge_cluster(file_value: Any, override: str | None) -> Any:
    """The ``cluster`` value to parse when ``--cluster override`` meets the file's section.

    ``--cluster slurm`` (or pbs/local) keeps the file's settings for that kind, so a
    workflow that configures slurm only needs ``--cluster slurm`` to switch to it; any
    other kind, or a scheduler address, replaces the section.
    """
    if override is None:
        return file_value
    if override in ("local", "slurm", "pbs") and isinstance(file_value, dict) and set(file_value) == {override}:
        return file_value
    return override


def _parse_address(body: Any, source: str, key: str) -> ClusterSpec:
    if isinstance(body, str):
        body = {"address": body}
    sec = Section(body, key, source)
    address = sec.take("address", string)
    if not _ADDRESS_RE.match(address):
        raise sec.error("address", f"must look like tcp://host:port, got {address!r}")
    spec = ClusterSpec(kind="address", address=address, timeout=sec.take("timeout", positive_number, default=10.0),
                       security=_security(sec))
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
    if isinstance(value, dict) and "address" in value and len(value) > 1:
        # {address: tcp://..., timeout: 5, security: ...}: the address form with options
        return _parse_address(value, source, key)
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(source, key, f"must be a mapping with exactly one of {', '.join(KINDS)}; got {value!r}")
    (kind, body), = value.items()
    if kind not in KINDS:
        raise ConfigError(source, f"{key}.{kind}", f"unknown cluster kind; allowed: {', '.join(KINDS)}")
    if kind == "address":
        return _parse_address(body, source, key)
    if body is None:
        raise ConfigError(source, f"{key}.{kind}", f"{kind} needs settings (at least cores and memory) in the workflow "
                                                   f"file's cluster: {{{kind}: ...}} section")
    sec = Section(body, f"{key}.{kind}", source)
    return _parse_local(sec) if kind == "local" else _parse_jobqueue(sec, kind)


# -- exposure and TLS -------------------------------------------------------------
def exposed_without_tls(spec: ClusterSpec) -> str | None:
    """Where the scheduler listens beyond loopback with no TLS, or None."""
    if spec.kind == "address" or spec.security is not None:
        return None
    interface = spec.jobqueue.get("interface")
    if interface and interface != "lo":
        return f"interface {interface}"
    if not spec.host.startswith(_LOOPBACK):
        return f"host {spec.host}"
    return None


def make_security(spec: ClusterSpec):
    """distributed Security for the spec (None: plain tcp)."""
    if spec.security is None:
        return None
    from distributed.security import Security

    if spec.security == "temporary":
        # Self-signed CA and certificate, generated in memory for this run only.
        return Security.temporary()
    ca, cert, key = spec.security
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, tls_scheduler_cert=cert,
                    tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def _warn_if_exposed(spec: ClusterSpec, log: logging.Logger) -> None:
    where = exposed_without_tls(spec)
    if where:
        log.warning("the Dask scheduler listens beyond loopback (%s) without TLS: anyone who reaches it can run "
                    "code as you. Set cluster.%s.security: temporary (or tls_ca_file/tls_cert/tls_key)",
                    where, spec.kind)


# -- job scripts and the plan -----------------------------------------------------
def _job_kwargs(spec: ClusterSpec) -> dict[str, Any]:
    """Keyword arguments of dask-jobqueue's Job (shared by the cluster and the dry-run script)."""
    jq = spec.jobqueue
    per_process_mem = jq["memory"] // jq["processes"]
    per_process_cores = jq["cores"] // jq["processes"]
    extra = ["--resources", f"memory={per_process_mem},cores={per_process_cores}"]
    if jq["worker_lifetime"]:
        # Workers retire before the walltime kills them; their tasks move elsewhere.
        extra += ["--lifetime", jq["worker_lifetime"], "--lifetime-stagger", jq["worker_lifetime_stagger"]]
    kwargs: dict[str, Any] = dict(
        cores=jq["cores"], memory=f"{jq['memory']}B", processes=jq["processes"], walltime=jq["walltime"],
        queue=jq["queue"], account=jq["account"], job_extra_directives=jq["job_directives"],
        job_script_prologue=jq["job_script_prologue"], worker_extra_args=extra, interface=jq["interface"],
        local_directory=jq["local_directory"], log_directory=jq["log_directory"], job_name=jq["job_name"],
        death_timeout=jq["death_timeout"],
    )
    if jq["python"]:
        kwargs["python"] = jq["python"]
    return kwargs


def _job_class(kind: str):
    if kind == "slurm":
        from dask_jobqueue.slurm import SLURMJob

        return SLURMJob
    from dask_jobqueue.pbs import PBSJob

    return PBSJob


def job_script(spec: ClusterSpec) -> str:
    """The batch script one job would run, without starting a scheduler (for --dry-run)."""
    if spec.kind not in ("slurm", "pbs"):
        raise ValueError(f"{spec.kind} clusters submit no job script")
    scheme = "tls" if spec.security is not None else "tcp"
    job = _job_class(spec.kind)(scheduler=f"{scheme}://SCHEDULER-ADDRESS:PORT", name="cosmopipe-0", **_job_kwargs(spec))
    return job.job_script()


def walltime_seconds(text: str) -> float:
    """SLURM/PBS walltime ('12:00:00', '1-00:00:00', '30:00', '90') -> seconds."""
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    if len(parts) > 3 or not parts:
        raise ValueError(f"walltime must look like [D-]HH:MM:SS, got {text!r}")
    if len(parts) == 1:
        seconds = parts[0] * 60  # SLURM reads a lone number as minutes
    else:
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return seconds + float(days or 0) * 86400


def max_jobs(spec: ClusterSpec) -> int:
    jq = spec.jobqueue
    return jq["adaptive"]["maximum"] if "adaptive" in jq else jq["jobs"]


def placeholders(spec: ClusterSpec) -> list[str]:
    """Settings that still hold template values (e.g. account: your_account)."""
    out = []
    for key in ("account", "queue", "interface", "python", "local_directory"):
        value = spec.jobqueue.get(key)
        if isinstance(value, str) and _PLACEHOLDER_RE.match(value):
            out.append(f"cluster.{spec.kind}.{key}: {value!r} looks like a placeholder; set your site's value")
    for i, line in enumerate(spec.jobqueue.get("job_script_prologue", [])):
        if re.search(r"your[_-]|<[^>]+>", line):
            out.append(f"cluster.{spec.kind}.job_script_prologue[{i}]: {line!r} looks like a placeholder")
    return out


def cluster_plan(spec: ClusterSpec) -> str:
    """What --dry-run shows for the cluster: size, job script, warnings."""
    from dask.utils import format_bytes

    lines = [spec.describe()]
    where = exposed_without_tls(spec)
    if spec.kind in ("slurm", "pbs"):
        jq = spec.jobqueue
        n = max_jobs(spec)
        wall = walltime_seconds(jq["walltime"])
        how = (f"adaptive {jq['adaptive']['minimum']} to {n}" if "adaptive" in jq else f"{n}")
        lines.append(f"jobs: {how} x {jq['cores']} cores x {format_bytes(jq['memory'])} x walltime {jq['walltime']} "
                     f"= at most {n * jq['cores'] * wall / 3600:,.4g} core-hours per round of jobs"
                     + (f"; queue {jq['queue']}" if jq["queue"] else "")
                     + (f"; account {jq['account']}" if jq["account"] else ""))
        if jq["worker_lifetime"]:
            lines.append(f"workers retire after {jq['worker_lifetime']} (+- {jq['worker_lifetime_stagger']}); "
                         + ("adaptive scaling submits replacements" if "adaptive" in jq else
                            "without adaptive: no replacement jobs are submitted"))
        lines.append("job script:")
        lines += ["    " + line for line in job_script(spec).strip().splitlines()]
        lines += [f"warning: {w}" for w in placeholders(spec)]
    if where:
        lines.append(f"warning: the scheduler listens beyond loopback ({where}) without TLS; "
                     f"set cluster.{spec.kind}.security")
    return "\n".join(lines)


def cluster_slots(spec: ClusterSpec, task_cores: int, task_memory: int) -> int | None:
    """Simulations that can run at once on the whole cluster (None: unknown, e.g. an existing scheduler)."""
    if spec.kind == "address":
        return None
    if spec.kind == "local":
        cores = os.cpu_count() or 1
        workers = spec.workers or cores
        threads = spec.threads_per_worker or max(1, cores // workers)
        memory = spec.memory_limit or machine_memory() // workers
        per_worker = min(max(1, threads // task_cores), memory // task_memory)
        return workers * per_worker
    jq = spec.jobqueue
    per_process = min(max(1, jq["cores"] // jq["processes"] // task_cores),
                      jq["memory"] // jq["processes"] // task_memory)
    return max_jobs(spec) * jq["processes"] * per_process


# -- starting -------------------------------------------------------------------
def _local_cluster(spec: ClusterSpec, log: logging.Logger):
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    workers = spec.workers or cores
    threads = spec.threads_per_worker or max(1, cores // workers)
    memory = spec.memory_limit or machine_memory() // workers
    log.info("starting a local Dask cluster: %d worker processes x %d threads, %.1f GB each",
             workers, threads, memory / 1e9)
    security = make_security(spec)
    extra = {"security": security, "protocol": "tls://"} if security is not None else {}
    return LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, memory_limit=memory,
        host=spec.host, dashboard_address=spec.dashboard_address,
        resources={"memory": memory, "cores": threads}, silence_logs=logging.ERROR, **extra,
    )


def _jobqueue_cluster(spec: ClusterSpec, log: logging.Logger):
    jq = spec.jobqueue
    kwargs = _job_kwargs(spec)
    kwargs["scheduler_options"] = {"dashboard_address": spec.dashboard_address}
    if jq["interface"] is None:
        kwargs["scheduler_options"]["host"] = spec.host
    security = make_security(spec)
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
        if spec.security == "temporary":
            # Workers read the generated certificates from files on a shared file system.
            kwargs["shared_temp_directory"] = jq["log_directory"] or os.getcwd()
    from dask_jobqueue import PBSCluster, SLURMCluster

    cluster = (SLURMCluster if spec.kind == "slurm" else PBSCluster)(**kwargs)
    log.info("%s job script:\n%s", spec.kind, cluster.job_script())
    if "adaptive" in jq:
        cluster.adapt(minimum_jobs=jq["adaptive"]["minimum"], maximum_jobs=jq["adaptive"]["maximum"])
        log.info("%s cluster: adaptive, %d to %d jobs of %d cores, walltime %s%s", spec.kind,
                 jq["adaptive"]["minimum"], jq["adaptive"]["maximum"], jq["cores"], jq["walltime"],
                 f", queue {jq['queue']}" if jq["queue"] else "")
    else:
        cluster.scale(jobs=jq["jobs"])
        log.info("%s cluster: %d jobs of %d cores requested, walltime %s%s", spec.kind, jq["jobs"], jq["cores"],
                 jq["walltime"], f", queue {jq['queue']}" if jq["queue"] else "")
    return cluster


def _quiet_dask() -> None:
    if not logging.getLogger("cosmopipe").isEnabledFor(logging.DEBUG):
        # distributed sets its own INFO level when first imported; its worker start/stop
        # chatter would drown the campaign's log (-v keeps it).
        for name in ("distributed", "dask_jobqueue"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _connect(spec: ClusterSpec, log: logging.Logger):
    from distributed import Client

    try:
        client = Client(spec.address, timeout=f"{spec.timeout}s", security=make_security(spec))
    except (OSError, TimeoutError) as exc:
        raise ConfigError("cluster", "address",
                          f"cannot reach a Dask scheduler at {spec.address} within {spec.timeout:g} s ({exc})") from None
    log.info("connected to the Dask scheduler at %s; dashboard %s", spec.address, client.dashboard_link)
    print(f"Dask dashboard: {client.dashboard_link}", flush=True)
    return client


def start_cluster(spec: ClusterSpec, log: logging.Logger | None = None, run_dir=None):
    """Start (or connect to) the cluster; returns (cluster or None, client).

    With a run directory, jobqueue job ids are recorded there while the cluster runs.
    """
    from distributed import Client

    log = log or logging.getLogger("cosmopipe.cluster")
    _quiet_dask()
    if spec.kind == "address":
        return None, _connect(spec, log)
    _warn_if_exposed(spec, log)
    cluster = _local_cluster(spec, log) if spec.kind == "local" else _jobqueue_cluster(spec, log)
    client = Client(cluster, security=getattr(cluster, "security", None))
    log.info("Dask scheduler %s; dashboard %s", cluster.scheduler_address, client.dashboard_link)
    print(f"Dask dashboard: {client.dashboard_link}", flush=True)
    if run_dir is not None and spec.kind in ("slurm", "pbs"):
        cluster._cosmopipe_monitor = JobMonitor(cluster, client, spec.kind, run_dir, log)
    return cluster, client


def stop_cluster(cluster, client) -> None:
    monitor = getattr(cluster, "_cosmopipe_monitor", None)
    try:
        if monitor is not None:
            monitor.stop()
        client.close()
    finally:
        if cluster is not None:
            cluster.close()
