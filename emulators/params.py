"""The parameter space of an emulator and the reading of user parameters.

An emulator is trained on some *varied* cosmology parameters, drawn from a
box [lower, upper], while the other :class:`sims.Cosmology` parameters were
held *fixed* (e.g. wa = 0, m_nu = 0.058 eV).  Callers give parameters as

* a :class:`sims.Cosmology` or a dict of numbers: one cosmology;
* a dict of equal-length 1-d arrays (scalars are broadcast), a numpy
  structured array, or an (n, p) array whose columns are the varied
  parameters in the emulator's order: a table of n cosmologies.

Every varied parameter must be given; a fixed one may be given only with
its training value; anything else is a ``ValueError`` naming the parameter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import functools
import math
from typing import Any, Mapping

import numpy as np

from cosmopipe.sims.cosmology import Cosmology

__all__ = ["ParameterSpace"]

# Relative slack for box edges and fixed values: values written to and read
# back from text (YAML, CSV, the command line) must still count as equal.
_REL_TOL = 1e-9


@functools.lru_cache(maxsize=1)
def _cosmology_names() -> tuple[str, ...]:
    return Cosmology.names()


@dataclass(frozen=True)
class ParameterSpace:
    """Varied parameters with their box, and the fixed values of the others.

    names   varied Cosmology parameter names, in the emulator's input order
    lower, upper  (p,) training box of the varied parameters (their units:
                  m_nu in eV, all others dimensionless)
    fixed   {name: value} of the Cosmology parameters held fixed in training
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        lower = np.asarray(self.lower, dtype=float).reshape(-1)
        upper = np.asarray(self.upper, dtype=float).reshape(-1)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "fixed", {str(k): float(v) for k, v in dict(self.fixed).items()})
        known = _cosmology_names()
        bad = [n for n in (*names, *self.fixed) if n not in known]
        if bad:
            raise ValueError(f"emulator parameters: unknown name(s) {', '.join(bad)}; allowed: {', '.join(known)}")
        if len(set(names)) != len(names) or set(names) & set(self.fixed):
            raise ValueError(f"emulator parameters: a name is repeated or both varied and fixed: {names}, {sorted(self.fixed)}")
        if not names:
            raise ValueError("emulator parameters: no varied parameter")
        if lower.shape != (len(names),) or upper.shape != (len(names),):
            raise ValueError(f"emulator parameters: box bounds have shapes {lower.shape}, {upper.shape}, "
                             f"expected ({len(names)},) for {', '.join(names)}")
        for n, lo, hi in zip(names, lower, upper):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"emulator parameters: box of {n} must be finite with lower < upper, got [{lo:g}, {hi:g}]")
        slack = _REL_TOL * (upper - lower)
        object.__setattr__(self, "_lo_edge", lower - slack)
        object.__setattr__(self, "_hi_edge", upper + slack)

    def __eq__(self, other):
        return (isinstance(other, ParameterSpace) and self.names == other.names
                and np.array_equal(self.lower, other.lower) and np.array_equal(self.upper, other.upper)
                and self.fixed == other.fixed)

    __hash__ = None

    @property
    def box(self) -> dict[str, tuple[float, float]]:
        return {n: (float(lo), float(hi)) for n, lo, hi in zip(self.names, self.lower, self.upper)}

    def to_unit(self, theta: np.ndarray) -> np.ndarray:
        """(n, p) parameter values -> network inputs, the box mapped to [-1, 1]."""
        return (2.0 * (theta - self.lower) - (self.upper - self.lower)) / (self.upper - self.lower)

    def value(self, name: str, theta: np.ndarray) -> np.ndarray | float:
        """Values of any Cosmology parameter: a column of ``theta`` or the fixed value."""
        if name in self.names:
            return theta[:, self.names.index(name)]
        if name in self.fixed:
            return self.fixed[name]
        return getattr(Cosmology(), name)

    def cosmology_dicts(self, theta: np.ndarray) -> list[dict[str, float]]:
        """Full parameter dicts (varied + fixed) of each row of ``theta``."""
        return [{**self.fixed, **dict(zip(self.names, map(float, row)))} for row in np.atleast_2d(theta)]

    def complete(self, params: Any) -> Any:
        """``params`` with every varied parameter left out set to the reference cosmology's
        value (EuclidEmulator2's reference, :class:`sims.Cosmology` defaults); fixed ones
        left out keep their training values.  The one place the command line and
        :func:`cosmopipe.emulators.predict` take defaults from; arrays are returned as given."""
        if hasattr(params, "to_dict") and not isinstance(params, (Mapping, np.ndarray)):
            params = params.to_dict()
        if not isinstance(params, Mapping):
            return params
        reference = _reference_values()
        return {**{n: reference[n] for n in self.names if n not in params}, **params}

    # -- reading user input ----------------------------------------------
    def read(self, params: Any, extrapolate: bool = False, who: str = "emulator") -> tuple[np.ndarray, bool]:
        """User parameters -> ((n, p) array of varied values, single).

        ``single`` is True for one cosmology (a Cosmology, a dict of scalars
        or a 1-d array).  Raises ValueError naming the parameter for unknown,
        missing, non-finite or (unless ``extrapolate``) out-of-box values.
        """
        if type(params) is dict and len(params) == len(self.names):
            fast = self._read_plain(params, extrapolate, who)
            if fast is not None:
                return fast, True
        columns, single = self._columns(params, who)
        known = _cosmology_names()
        unknown = sorted(set(columns) - set(known))
        if unknown:
            raise ValueError(f"{who}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ValueError(f"{who}: missing parameter(s) {', '.join(missing)} (this emulator varies "
                             f"{', '.join(self.names)})")
        if len(columns) > len(self.names):
            self._check_fixed(columns, who)
        if single:
            theta = np.array([[columns[n][0] for n in self.names]])
        else:
            theta = np.column_stack([columns[n] for n in self.names])
        if not extrapolate:
            self.check_box(theta, who)
        return theta, single

    def _read_plain(self, params: dict, extrapolate: bool, who: str) -> np.ndarray | None:
        """Fast path of :meth:`read` for the sampling case, a dict of exactly the varied
        parameters as finite floats: (1, p) values, or None to take the general path."""
        try:
            row = [params[n] for n in self.names]
        except KeyError:
            return None
        if not all(type(v) is float and math.isfinite(v) for v in row):
            return None
        theta = np.array([row])
        if not extrapolate:
            self.check_box(theta, who)
        return theta

    def _check_fixed(self, columns: dict[str, np.ndarray], who: str) -> None:
        for name, values in columns.items():
            if name in self.names:
                continue
            expected = self.fixed[name] if name in self.fixed else None
            if expected is None:
                # Not varied and not recorded as fixed: only the default is safe.
                expected = float(getattr(Cosmology(), name))
            ok = _same_value(values, expected)
            if not np.all(ok):
                bad = values[~ok][0]
                raise ValueError(f"{who}: parameter {name}={bad:.10g} differs from the value {expected:.10g} it was "
                                 f"fixed to in training (this emulator varies only {', '.join(self.names)})")

    def check_box(self, theta: np.ndarray, who: str = "emulator") -> None:
        """ValueError naming the first parameter outside the training box."""
        outside = (theta < self._lo_edge) | (theta > self._hi_edge)
        if outside.any():
            row, col = np.argwhere(outside)[0]
            name, value = self.names[col], theta[row, col]
            where = f" (cosmology {row} of {theta.shape[0]})" if theta.shape[0] > 1 else ""
            raise ValueError(f"{who}: parameter {name}={value:g}{where} is outside the training box "
                             f"[{self.lower[col]:g}, {self.upper[col]:g}]; pass extrapolate=True to evaluate "
                             "outside it anyway")

    def _columns(self, params: Any, who: str) -> tuple[dict[str, np.ndarray], bool]:
        if hasattr(params, "to_dict") and not isinstance(params, (Mapping, np.ndarray)):
            params = params.to_dict()
        if isinstance(params, Mapping):
            return _mapping_columns(params, who)
        if isinstance(params, np.ndarray) and params.dtype.names:
            arr = np.atleast_1d(params)
            if arr.ndim != 1:
                raise ValueError(f"{who}: a structured parameter array must be 1-d, got shape {params.shape}")
            cols = {n: _finite(n, arr[n], who) for n in arr.dtype.names}
            return cols, params.ndim == 0
        arr = np.asarray(params)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{who}: parameters must be a Cosmology, a dict, a structured array or an (n, "
                            f"{len(self.names)}) array, got {type(params).__name__}")
        arr = arr.astype(float)
        if arr.ndim not in (1, 2) or arr.shape[-1] != len(self.names):
            raise ValueError(f"{who}: a plain parameter array must have shape ({len(self.names)},) or (n, "
                             f"{len(self.names)}) with columns {', '.join(self.names)}; got shape {arr.shape}")
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.shape[0] == 0:
            raise ValueError(f"{who}: the parameter table is empty")
        return {n: _finite(n, arr[:, i], who) for i, n in enumerate(self.names)}, single


@functools.lru_cache(maxsize=1)
def _reference_values() -> dict[str, float]:
    return Cosmology().to_dict()


def _same_value(values: np.ndarray, expected: float) -> np.ndarray:
    """Equal up to text round-off, relative to the parameter's own scale.

    The scale must be the value's, never 1: A_s ~ 2e-9 against an absolute
    slack of 1e-9 let every A_s from 1.1e-9 to 3.1e-9 pass as the training
    value.  Zero (wa = 0) gets a tiny absolute slack instead.
    """
    scale = abs(expected) if expected != 0.0 else 1.0
    return np.abs(values - expected) <= _REL_TOL * scale


def _finite(name: str, values: Any, who: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: parameter {name}: expected numbers, got {values!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{who}: parameter {name}: values must be finite, got {values!r}")
    return arr


def _mapping_columns(params: Mapping, who: str) -> tuple[dict[str, np.ndarray], bool]:
    # Fast path for the sampling use case: one cosmology as a dict of floats.
    if all(type(v) in (float, int) for v in params.values()) and params:
        if all(math.isfinite(v) for v in params.values()):
            return {str(n): np.array([float(v)]) for n, v in params.items()}, True
    raw = {}
    for name, value in params.items():
        if isinstance(value, bool):
            raise ValueError(f"{who}: parameter {name}: expected a number, got {value!r}")
        arr = _finite(str(name), value, who)
        if arr.ndim > 1:
            raise ValueError(f"{who}: parameter {name}: expected a number or a 1-d array, got shape {arr.shape}")
        raw[str(name)] = arr
    lengths = {a.size for a in raw.values() if a.ndim == 1}
    if not raw:
        raise ValueError(f"{who}: no parameters given")
    if not lengths:
        return {n: a.reshape(1) for n, a in raw.items()}, True
    if len(lengths) > 1:
        shown = ", ".join(f"{n}: {a.size}" for n, a in raw.items() if a.ndim == 1)
        raise ValueError(f"{who}: parameter arrays have different lengths ({shown})")
    n = lengths.pop()
    if n == 0:
        raise ValueError(f"{who}: the parameter table is empty")
    return {name: np.broadcast_to(a, (n,)).astype(float) for name, a in raw.items()}, False
