"""Typed, validated reading of YAML workflow sections.

Every error names the file, the key path and what was expected, e.g.
``workflows/x.yaml: simulate.design.n: must be a positive integer, got -3``.
Unknown keys are errors. Stages parse their own section with a `Section`:

    sec = Section(data, "simulate", source="workflows/x.yaml")
    n = sec.take("n", positive_int)
    steps = sec.take("steps", positive_int, default=20)
    design = sec.sub("design")          # a nested Section (must be a mapping)
    sec.finish()                        # unknown keys -> ConfigError
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "ConfigError", "Section", "REQUIRED", "load_yaml",
    "positive_int", "nonnegative_int", "integer", "number", "positive_number", "nonnegative_number",
    "boolean", "string", "choice", "list_of", "number_range", "path_string", "optional",
    "file_name", "inside_path", "FILE_NAME_RULE",
]


class ConfigError(ValueError):
    """An invalid workflow: message is ``<file>: <key.path>: <what was expected>``."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.detail = source, key, message
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


REQUIRED = object()


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_yaml(path: str | Path) -> dict:
    """Read a YAML file that must hold a mapping; errors name the file and line."""
    # yaml is imported here, not at the top: the command line imports this module for
    # ConfigError alone, and `cosmopipe --help` should not pay for a YAML parser.
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "", "workflow file not found")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not a text (UTF-8) file: undecodable byte at offset {exc.start}") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), "", f"malformed YAML: {where}{problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"must be a mapping of stage names to settings, got {type(data).__name__}")
    return data


# -- value checkers: f(value) -> converted value, or raise ValueError(expected) --
Checker = Callable[[Any], Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(v: Any) -> int:
    if not _is_int(v):
        raise ValueError(f"must be an integer, got {_show(v)}")
    return int(v)


def positive_int(v: Any) -> int:
    if not _is_int(v) or v <= 0:
        raise ValueError(f"must be a positive integer, got {_show(v)}")
    return int(v)


def nonnegative_int(v: Any) -> int:
    if not _is_int(v) or v < 0:
        raise ValueError(f"must be a non-negative integer, got {_show(v)}")
    return int(v)


def number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {_show(v)}")
    return float(v)


def positive_number(v: Any) -> float:
    x = number(v) if not isinstance(v, bool) and isinstance(v, (int, float)) else None
    if x is None or not x > 0:
        raise ValueError(f"must be a positive number, got {_show(v)}")
    return x


def nonnegative_number(v: Any) -> float:
    x = number(v) if not isinstance(v, bool) and isinstance(v, (int, float)) else None
    if x is None or x < 0:
        raise ValueError(f"must be a non-negative number, got {_show(v)}")
    return x


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {_show(v)}")
    return v


def string(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {_show(v)}")
    return v


path_string = string

FILE_NAME_RULE = "letters, digits and underscores (at most 64)"
_FILE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def file_name(v: Any) -> str:
    """A name that becomes part of file names (workflow, design): no separators, no dots,
    so no output can leave the run directory."""
    if not isinstance(v, str) or not _FILE_NAME.fullmatch(v):
        raise ValueError(f"must be {FILE_NAME_RULE}, got {_show(v)}")
    return v


def inside_path(v: Any) -> str:
    """A relative path without ``..``: an output location inside the run directory."""
    text = string(v)
    p = Path(text)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"must be a relative path inside the run directory (no leading / and no ..), got {_show(v)}")
    return text


def choice(*allowed: str) -> Checker:
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}; got {_show(v)}")
        return v
    return check


def optional(inner: Checker) -> Checker:
    """Accept None (YAML ``null``) or what ``inner`` accepts."""
    def check(v: Any) -> Any:
        return None if v is None else inner(v)
    return check


def list_of(inner: Checker, min_len: int = 1, unique: bool = False) -> Checker:
    def check(v: Any) -> list:
        if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (list, tuple)):
            raise ValueError(f"must be a list, got {_show(v)}")
        if len(v) < min_len:
            raise ValueError(f"must hold at least {min_len} item(s), got {len(v)}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(inner(item))
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
        if unique and len(set(out)) != len(out):
            raise ValueError("must not repeat items")
        return out
    return check


def number_range(v: Any) -> tuple[float, float]:
    """``[min, max]`` with min < max."""
    if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"must be a range [min, max], got {_show(v)}")
    lo, hi = number(v[0]), number(v[1])
    if not lo < hi:
        raise ValueError(f"must be a range [min, max] with min < max, got [{lo:g}, {hi:g}]")
    return lo, hi


# -- sections -------------------------------------------------------------------
@dataclass
class Section:
    """A mapping read from a workflow, with its key path and file for error messages."""

    data: Mapping
    path: str
    source: str = "<workflow>"
    _used: set = field(default_factory=set, repr=False)

    def __post_init__(self):
        if self.data is None:
            self.data = {}
        if not isinstance(self.data, Mapping):
            raise ConfigError(self.source, self.path, f"must be a mapping of settings, got {_show(self.data)}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else str(name)

    def error(self, name: str | None, message: str) -> ConfigError:
        return ConfigError(self.source, self.key(name) if name is not None else self.path, message)

    def has(self, name: str) -> bool:
        return name in self.data

    def take(self, name: str, check: Checker = lambda v: v, default: Any = REQUIRED) -> Any:
        """The value at ``name`` converted by ``check``; ``default`` when absent."""
        self._used.add(name)
        if name not in self.data:
            if default is REQUIRED:
                raise self.error(name, "is required")
            return default
        try:
            return check(self.data[name])
        except ConfigError:
            raise
        except ValueError as exc:
            raise self.error(name, str(exc)) from None

    def sub(self, name: str, default: Any = REQUIRED) -> "Section":
        """Nested mapping as a Section (empty when absent and default is {})."""
        self._used.add(name)
        if name not in self.data:
            if default is REQUIRED:
                raise self.error(name, "is required")
            return Section(dict(default or {}), self.key(name), self.source)
        value = self.data[name]
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.error(name, f"must be a mapping of settings, got {_show(value)}")
        return Section(value, self.key(name), self.source)

    def keys(self) -> Iterable[str]:
        return self.data.keys()

    def finish(self, allowed_hint: Iterable[str] | None = None) -> None:
        """Raise on keys that were never read."""
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            allowed = sorted(allowed_hint) if allowed_hint is not None else sorted(self._used)
            name = unknown[0]
            raise self.error(str(name), f"unknown key; allowed keys here: {', '.join(map(str, allowed))}")
