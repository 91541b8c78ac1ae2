"""Batch jobs of a run: recorded in RUN_DIR/jobs.json, queried with squeue/qstat, cancelled on request.

While a SLURM/PBS cluster runs, :class:`JobMonitor` appends every job id that
dask-jobqueue submits to ``RUN_DIR/jobs.json`` and logs job and worker counts
when they change. ``cosmopipe status RUN_DIR`` shows the queue state of the
recorded jobs and ``cosmopipe cancel RUN_DIR`` cancels those still queued or
running (e.g. after the driver was killed: its workers would also stop by
themselves after their death timeout, but pending jobs would otherwise wait
in the queue until they start).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

__all__ = ["JobMonitor", "read_jobs", "job_states", "cancel_jobs", "JOBS_FILE"]

JOBS_FILE = "jobs.json"
_ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING")
_PBS_STATES = {"Q": "PENDING", "R": "RUNNING", "H": "PENDING", "E": "COMPLETING", "W": "PENDING", "S": "SUSPENDED"}


def read_jobs(run_dir: Path) -> dict:
    """The run's job record ({'kind', 'jobs': [{'id', 'submitted'}], ...}); empty when none."""
    path = Path(run_dir) / JOBS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"jobs": []}
    except ValueError:
        raise ValueError(f"{path}: unreadable job record (not JSON)") from None


def _write_jobs(run_dir: Path, record: dict) -> None:
    path = Path(run_dir) / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def job_states(kind: str, ids: list[str]) -> dict[str, str]:
    """Queue state of each job id still known to the batch system (finished jobs are absent)."""
    if not ids:
        return {}
    if kind == "slurm":
        if shutil.which("squeue") is None:
            raise RuntimeError("squeue not found: cannot ask SLURM about the recorded jobs")
        # All jobs, then filter: squeue -j fails outright when one id has left the queue.
        out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"squeue failed: {out.stderr.strip()}")
        states = dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())
    else:
        if shutil.which("qstat") is None:
            raise RuntimeError("qstat not found: cannot ask PBS about the recorded jobs")
        out = subprocess.run(["qstat", *ids], capture_output=True, text=True, timeout=60)
        states = {}
        for line in out.stdout.splitlines()[2:]:
            cols = line.split()
            if len(cols) >= 5:
                states[cols[0]] = _PBS_STATES.get(cols[4], cols[4])
    wanted = set(ids)
    return {i: s.strip() for i, s in states.items() if i in wanted}


def cancel_jobs(run_dir: Path) -> list[str]:
    """Cancel the run's recorded jobs that are still queued or running; returns their ids."""
    record = read_jobs(run_dir)
    kind = record.get("kind", "slurm")
    ids = [j["id"] for j in record.get("jobs", [])]
    live = [i for i, s in job_states(kind, ids).items() if s in _ACTIVE]
    if live:
        cmd = ["scancel", *live] if kind == "slurm" else ["qdel", *live]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"{cmd[0]} failed: {out.stderr.strip()}")
    return live


class JobMonitor:
    """Records submitted job ids and logs jobs/workers while a jobqueue cluster runs (a thread)."""

    def __init__(self, cluster, client, kind: str, run_dir: Path, log: logging.Logger, interval: float = 2.0):
        self.cluster, self.client, self.kind = cluster, client, kind
        self.run_dir, self.log, self.interval = Path(run_dir), log, interval
        self._stop = threading.Event()
        previous = read_jobs(self.run_dir) if (self.run_dir / JOBS_FILE).is_file() else {"jobs": []}
        # Earlier drivers' jobs stay listed, so `cosmopipe cancel` also reaches them.
        self.record = {"kind": kind, "driver": {"host": socket.gethostname(), "pid": os.getpid()},
                       "scheduler": cluster.scheduler_address, "jobs": previous.get("jobs", [])}
        self._known = {j["id"] for j in self.record["jobs"]}
        self._last_summary = None
        _write_jobs(self.run_dir, self.record)
        self._thread = threading.Thread(target=self._loop, name="cosmopipe-job-monitor", daemon=True)
        self._thread.start()

    def _job_ids(self) -> list[str]:
        try:
            jobs = list(self.cluster.workers.values())
        except RuntimeError:  # resized while we read it; next round
            return []
        return [str(j.job_id) for j in jobs if getattr(j, "job_id", None)]

    def poll(self) -> None:
        new = [i for i in self._job_ids() if i not in self._known]
        if new:
            now = time.strftime("%Y-%m-%dT%H:%M:%S")
            self.record["jobs"] += [{"id": i, "submitted": now} for i in new]
            self._known.update(new)
            _write_jobs(self.run_dir, self.record)
            self.log.info("%s: submitted job(s) %s", self.kind, ", ".join(new))
        self._log_summary()

    def _log_summary(self) -> None:
        current = self._job_ids()
        try:
            states = job_states(self.kind, current)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            states = {}
        pending = sum(s == "PENDING" for s in states.values())
        running = sum(s == "RUNNING" for s in states.values())
        workers = len(self.client.scheduler_info(n_workers=-1).get("workers", {})) if self.client.status == "running" else 0
        summary = (pending, running, workers)
        if summary != self._last_summary:
            self._last_summary = summary
            self.log.info("%s: %d job(s) pending, %d running; %d worker(s) connected", self.kind, pending,
                          running, workers)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # a monitoring hiccup must never stop the campaign
                self.log.debug("job monitor: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.poll()
        except Exception as exc:
            self.log.debug("job monitor: %s", exc)
