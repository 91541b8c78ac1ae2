"""Optional plug-in modules (subcommands, workflow stages) imported by name."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterable, Iterator

__all__ = ["optional_modules"]


def optional_modules(names: Iterable[str]) -> Iterator[ModuleType]:
    """Import each module; skip one that does not exist, re-raise errors from inside one."""
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
