"""Run-directory safety: one lock per run directory, stale temp files, disk and permission faults.

``cosmopipe run`` holds ``RUN_DIR/.lock`` (an ``fcntl`` lock, released by the
kernel when the process dies, however it dies) for the whole run, so two runs
never simulate the same cosmologies twice.  While holding it, temp files that
a killed writer left behind are removed.  Operating-system faults that the
user must fix (a full disk, a read-only directory) become :class:`RunDirError`
with one line naming the file, instead of a traceback.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Iterator

__all__ = ["RunDirError", "run_dir_lock", "remove_stale_temp_files", "describe_os_error", "fatal_os_error",
           "naming_file", "STALE_TEMP_SECONDS"]

log = logging.getLogger("cosmopipe.rundir")

LOCK_NAME = ".lock"

# A live writer finishes (or at least touches) its temp file within seconds; one
# untouched for this long was left by a killed process [s].  The age matters only
# for workers of a killed run on other hosts, which the run lock cannot see.
STALE_TEMP_SECONDS = 60.0

# Names our writers give temp files: x.tmp / x.failed.tmp / x.json.tmp (rename-into-place),
# .x.h5.tmp-<pid>-<hex> (sims.io.atomic_hdf5, chains, posteriors), x.tmp.npz (caches).
_TEMP_NAME = re.compile(r"(\.tmp|\.tmp\.npz)$|^\..+\.tmp-\d+")

# errno -> what the user has to fix; anything else is a bug and keeps its traceback.
_FAULTS = {
    errno.ENOSPC: "no space left on the device; free some space or use another run directory",
    errno.EDQUOT: "disk quota exceeded; free some space or use another run directory",
    errno.EROFS: "read-only file system; use a writable run directory",
    errno.EACCES: "permission denied; use a directory you can write to",
    errno.EPERM: "operation not permitted; use a directory you can write to",
}


class RunDirError(Exception):
    """A fault of the run directory or the disk (full, read-only, busy, damaged file): one line, exit 2."""


def fatal_os_error(exc: BaseException) -> bool:
    """True for the OS errors no retry can fix (disk full, read-only, no permission)."""
    return isinstance(exc, OSError) and exc.errno in _FAULTS


def describe_os_error(exc: OSError) -> str | None:
    """One line ``<file>: <problem>`` for a disk/permission fault, else None."""
    if exc.errno not in _FAULTS:
        return None
    where = exc.filename if exc.filename is not None else "(file not known)"
    return f"{where}: {_FAULTS[exc.errno]}"


@contextlib.contextmanager
def naming_file(path: str | os.PathLike) -> Iterator[None]:
    """Attach ``path`` to an OSError raised inside the block that names no file
    (``write()`` on a full disk, h5py errors), so the report can name it."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _owner(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


@contextlib.contextmanager
def run_dir_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``run_dir`` (created if needed) while the block runs.

    A second holder is refused at once with RunDirError naming the directory and
    the process (PID and host) that holds it.  The lock file stays; the lock does not.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    with naming_file(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    with naming_file(path):
        handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"run directory {run_dir} is in use by {_owner(handle)}; wait for that run to "
                              f"finish or stop it (the lock is released when it exits)") from None
        with naming_file(path):
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
        yield path
    finally:
        handle.close()


def remove_stale_temp_files(run_dir: str | os.PathLike, min_age_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove temp files under ``run_dir`` untouched for ``min_age_s`` seconds; returns them.

    Call it only while holding :func:`run_dir_lock`: then no other run writes there.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    now = time.time()
    removed = []
    for dirpath, _, files in os.walk(run_dir):
        for name in files:
            if not _TEMP_NAME.search(name):
                continue
            path = Path(dirpath) / name
            try:
                if now - path.stat().st_mtime < min_age_s:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # its writer finished meanwhile
            removed.append(path)
    if removed:
        log.info("removed %d temp file(s) left by an interrupted run in %s", len(removed), run_dir)
    return removed
