"""Where a result came from: code version, host description, and how two configuration fingerprints differ."""
from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from cosmopipe._version import __version__

__all__ = ["code_version", "host_info", "fingerprint_diff", "describe_diff"]

# The checkout root: this package directory is pipeline/foundation/ in it.
_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parents[1]  # this file is pipeline/foundation/provenance.py


def _git(*args: str) -> str | None:
    """Output of a git command run in the package directory, or None on any failure."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version, plus ``+g<short sha>`` (and ``.dirty`` when tracked files
    differ from HEAD) when running from a git checkout of cosmopipe.

    Falls back to the plain version when git is missing, the package is an
    installed copy, or the checkout has no commit yet.
    """
    toplevel = _git("rev-parse", "--show-toplevel")
    # Guard against an installed copy that happens to live inside some
    # unrelated repository (e.g. a venv inside another project).
    if toplevel is None or Path(toplevel).resolve() != _REPO_ROOT:
        return __version__
    sha = _git("rev-parse", "--short", "HEAD")
    if not sha:
        return __version__
    status = _git("status", "--porcelain", "--untracked-files=no")
    dirty = ".dirty" if status else ""
    return f"{__version__}+g{sha}{dirty}"


def host_info() -> dict[str, object]:
    """Short description of the machine and interpreter running this process."""
    import numpy

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "cpu_count": os.cpu_count(),
    }


def fingerprint_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``'key.sub: old -> new'`` for every leaf where two JSON-like fingerprints differ
    (sorted by key; a key missing on one side shows as ``"<absent>"``).

    Results (simulations, chains, archives) are reused only when the configuration that
    made them matches; this says which settings stand in the way.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += fingerprint_diff(old.get(key, "<absent>"), new.get(key, "<absent>"),
                                    f"{prefix}.{key}" if prefix else key)
        return out
    if old != new:
        return [f"{prefix}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def describe_diff(diff: list[str], limit: int = 6) -> str:
    """The first ``limit`` differences on one line (a long prior list would swamp an error message)."""
    return "; ".join(diff[:limit]) + (f"; ... ({len(diff)} differences)" if len(diff) > limit else "")
