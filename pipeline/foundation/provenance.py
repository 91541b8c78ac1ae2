"""Where a result came from: code version and host description."""
from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

from cosmopipe._version import __version__

__all__ = ["code_version", "host_info"]

# The checkout root is the parent of this package directory.
_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent


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
