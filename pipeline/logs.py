"""Run logs: everything the ``cosmopipe`` logger says also goes to ``RUN_DIR/run.log``."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

__all__ = ["attach_run_log", "LOG_FORMAT"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def attach_run_log(path: str | Path, level: int = logging.INFO):
    """Append the ``cosmopipe`` logger's records to ``path`` while the block runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("cosmopipe")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        previous, logger.level = logger.level, level
    else:
        previous = None
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        if previous is not None:
            logger.setLevel(previous)
