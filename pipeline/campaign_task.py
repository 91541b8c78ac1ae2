"""One simulation of a campaign, as a Dask worker runs it: :func:`simulate_task`.

The task is idempotent and writes its file atomically, so a task retried after a lost
worker, or a campaign rerun after a crash, never leaves a half-written result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import traceback
from pathlib import Path

from cosmopipe.sims.config import SimConfig
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims import run as engine
from cosmopipe.sims.io import write_result

from .campaign_points import matches_request
from .rundir import naming_file

__all__ = ["simulate_task"]

log = logging.getLogger("cosmopipe.simulate")


def simulate_task(sim_id: str, cosmo_params: dict, config_dict: dict, out_path: str, provenance: dict) -> dict:
    """Run one simulation and write it atomically; idempotent (a matching complete file is kept)."""
    out = Path(out_path)
    failed = out.with_suffix(".failed")
    where = _where()
    t0 = time.perf_counter()
    try:
        cosmo = Cosmology.from_dict(cosmo_params)
        config = SimConfig.from_dict(config_dict)
        if matches_request(out, cosmo, config):
            return {"id": sim_id, "status": "skipped", "seconds": 0.0, **where}
        result = engine.run_simulation(cosmo, config, progress=False)
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


def _where() -> dict[str, str | int]:
    """Host, process and Dask worker of this task (recorded in the result and the log)."""
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker

        where["worker"] = get_worker().address
    except (ImportError, ValueError):   # not on a Dask worker
        where["worker"] = "local"
    return where


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
