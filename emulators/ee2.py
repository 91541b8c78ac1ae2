"""EuclidEmulator2 nonlinear boost B(k, z) = P_nl / P_lin (Knabenhans et al. 2021).

A thin, quiet wrapper around the ``euclidemu2`` package:

* parameters use the names of :class:`sims.Cosmology` and are checked against
  the emulator box *before* the package sees them (its C++ core calls
  ``exit(1)`` on out-of-range input, which would kill the interpreter);
* the package's ``print`` chatter is swallowed;
* the boost is evaluated only at the emulator's own 613 wavenumbers and
  interpolated here with a cubic spline of ln B in ln k, so the values at the
  native k are exactly the package's output.

Outside the emulated k range [EE2_K_RANGE]:

* below k_min (8.73e-3 h/Mpc) B = 1: these scales are linear by construction
  of the emulator (note that EE2's own B(k_min) is ~0.995 at z = 0, so there
  is a small step there, exactly as in the package);
* above k_max (9.41 h/Mpc) B is held constant at B(k_max); a ``UserWarning``
  says so once per process.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import threading
import warnings
from typing import Any, Mapping

import numpy as np

__all__ = ["EE2_BOX", "EE2_K_RANGE", "EE2_Z_RANGE", "ee2_boost", "in_box", "check_box", "first_outside_box"]

# Emulator box in our parameter names, as in euclidemu2's check_param_range
# (identical double literals, so both sides agree at the edges).
EE2_BOX: dict[str, tuple[float, float]] = {
    "Omega_m": (0.24, 0.40),
    "Omega_b": (0.04, 0.06),
    "m_nu": (0.0, 0.15),
    "n_s": (0.92, 1.00),
    "h": (0.61, 0.73),
    "w0": (-1.3, -0.7),
    "wa": (-0.7, 0.5),
    "A_s": (1.7e-9, 2.5e-9),
}

# First and last entry of the emulator's kvec [h/Mpc] (613 log-spaced-ish
# points, read from ee2_bindata.dat; checked against the package in tests).
EE2_K_RANGE: tuple[float, float] = (0.00873075, 9.40909)

EE2_Z_RANGE: tuple[float, float] = (0.0, 10.0)

# Our names -> the keys euclidemu2.convert_to_emu looks for first.
_EE2_KEYS = {
    "Omega_m": "Omega_m",
    "Omega_b": "Omega_b",
    "m_nu": "m_ncdm",
    "n_s": "n_s",
    "h": "h",
    "w0": "w0_fld",
    "wa": "wa_fld",
    "A_s": "A_s",
}

# The C++ core stores at most 101 redshifts per call (double Bvec[101][613]);
# more would write past the end of that array.
_MAX_Z_PER_CALL = 101

_emulator = None
# The emulator object keeps its result in shared arrays, and stdout
# redirection is process-wide: one call at a time.
_lock = threading.Lock()
_warned_high_k = False


def _quiet():
    """Context swallowing Python-level prints of the euclidemu2 package."""
    return contextlib.redirect_stdout(io.StringIO())


def _get_emulator():
    global _emulator
    if _emulator is None:
        with _quiet():
            # Importing prints a long "Classy could not be found" notice.
            import euclidemu2

            _emulator = euclidemu2.PyEuclidEmulator()
    return _emulator


def _params(cosmology: Any) -> dict[str, float]:
    """Our eight parameters as floats, from a Cosmology or a complete mapping."""
    if isinstance(cosmology, Mapping):
        given = dict(cosmology)
    elif hasattr(cosmology, "to_dict"):
        given = cosmology.to_dict()
    else:
        raise TypeError(f"EuclidEmulator2: expected a Cosmology or a dict of parameters, got {type(cosmology).__name__}")
    missing = [name for name in EE2_BOX if name not in given]
    unknown = sorted(set(given) - set(EE2_BOX))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise ValueError(f"EuclidEmulator2: parameters {'; '.join(parts)} (needed: {', '.join(EE2_BOX)})")
    out = {}
    for name in EE2_BOX:
        value = given[name]
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"EuclidEmulator2: parameter {name}: expected a number, got {value!r}") from None
        if not math.isfinite(out[name]):
            raise ValueError(f"EuclidEmulator2: parameter {name}: must be finite, got {value!r}")
    return out


def check_box(cosmology: Any) -> None:
    """Raise ValueError naming the first parameter outside the emulator box."""
    for name, value in _params(cosmology).items():
        lo, hi = EE2_BOX[name]
        if not lo <= value <= hi:
            raise ValueError(
                f"EuclidEmulator2: parameter {name}={value:g} is outside the emulator box [{lo:g}, {hi:g}]"
            )


def first_outside_box(names: list[str] | tuple[str, ...], theta: np.ndarray,
                      fixed: Mapping[str, float]) -> tuple[int, str] | None:
    """The first row of ``theta`` (n, len(names)), completed by ``fixed``, that
    :func:`check_box` refuses, as (row index, its message); None when all pass.

    Vectorised over rows (a Python loop over rows cost half of a 10^4-row hybrid
    prediction); the fixed values and the completeness of the eight parameters are
    checked once per (names, fixed) and remembered."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    if theta.shape[0] == 0:
        return None
    names = tuple(names)
    problem = _fixed_problem(names, tuple(sorted((n, float(v)) for n, v in fixed.items())))
    if problem is not None:
        return 0, problem
    lo, hi, cols = _box_columns(names)
    if theta.shape[0] == 1:  # the sampling case: plain floats beat numpy on seven numbers
        row = theta[0].tolist()
        if all(a <= row[j] <= b for j, a, b in zip(cols, lo.tolist(), hi.tolist())):
            return None
        i = 0
    else:
        sub = theta[:, cols]
        # "not inside" rather than "outside", so that NaN counts as outside
        bad = np.flatnonzero(~np.all((sub >= lo) & (sub <= hi), axis=1))
        if bad.size == 0:
            return None
        i = int(bad[0])
    try:
        check_box({**fixed, **dict(zip(names, map(float, theta[i])))})
    except ValueError as exc:
        return i, str(exc)
    raise AssertionError("EuclidEmulator2: vectorised and scalar box checks disagree")  # never: same bounds


@functools.lru_cache(maxsize=64)
def _fixed_problem(names: tuple[str, ...], fixed: tuple[tuple[str, float], ...]) -> str | None:
    """check_box's message for the fixed values (varied ones at the box centre), or None."""
    centre = {n: 0.5 * (EE2_BOX[n][0] + EE2_BOX[n][1]) if n in EE2_BOX else 0.0 for n in names}
    try:
        check_box({**dict(fixed), **centre})
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=64)
def _box_columns(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    cols = [j for j, name in enumerate(names) if name in EE2_BOX]
    return (np.array([EE2_BOX[names[j]][0] for j in cols]), np.array([EE2_BOX[names[j]][1] for j in cols]), cols)


def in_box(cosmology: Any) -> bool:
    """True when every parameter lies inside the emulator box."""
    try:
        check_box(cosmology)
    except ValueError:
        return False
    return True


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"EuclidEmulator2: {name} must be a scalar or a 1-d array, got shape {arr.shape}")
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ValueError(f"EuclidEmulator2: {name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"EuclidEmulator2: {name} must be finite")
    return arr


def _native_boost(params: dict[str, float], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EE2's own k grid [h/Mpc] and B at those k, shape (nz, 613)."""
    ee2_params = {_EE2_KEYS[name]: value for name, value in params.items()}
    rows = []
    with _lock:
        emu = _get_emulator()
        for start in range(0, z.size, _MAX_Z_PER_CALL):
            chunk = z[start:start + _MAX_Z_PER_CALL]
            with _quiet():
                k_native, boost = emu.get_boost(ee2_params, chunk)
            rows.extend(np.asarray(boost[i], dtype=float) for i in range(chunk.size))
    return np.asarray(k_native, dtype=float), np.vstack(rows)


def ee2_boost(k: Any, z: Any, cosmology: Any) -> np.ndarray:
    """EuclidEmulator2 boost B(k, z) = P_nl / P_lin of the total matter.

    k          wavenumbers [h/Mpc], scalar or 1-d, any order, > 0
    z          redshifts in [0, 10], scalar or 1-d
    cosmology  a :class:`sims.Cosmology` or a dict with all eight of its
               parameter names; it must lie inside :data:`EE2_BOX`

    Returns an array of shape (nz, nk), also for scalar input.  Below the
    emulated range B = 1, above it B(k_max) (see the module docstring).
    """
    params = _params(cosmology)
    check_box(params)
    z = _as_1d("z", z)
    zlo, zhi = EE2_Z_RANGE
    bad = z[(z < zlo) | (z > zhi)]
    if bad.size:
        raise ValueError(f"EuclidEmulator2: redshift z={bad[0]:g} is outside the emulated range [{zlo:g}, {zhi:g}]")
    k = _as_1d("k", k)
    if np.any(k <= 0):
        raise ValueError(f"EuclidEmulator2: wavenumbers k must be positive, got k={k[k <= 0][0]:g}")

    k_native, boost_native = _native_boost(params, z)
    k_lo, k_hi = k_native[0], k_native[-1]
    if np.any(k > k_hi):
        _warn_high_k(k_hi)

    # scipy.interpolate is imported here, on first use: it costs ~0.3 s, which importing
    # cosmopipe.emulators (and with it the command line) should not pay.
    from scipy.interpolate import CubicSpline

    # ln B is smoother than B over the three decades of k.
    spline = CubicSpline(np.log(k_native), np.log(boost_native), axis=1)
    inside = (k >= k_lo) & (k <= k_hi)
    out = np.ones((z.size, k.size))
    out[:, inside] = np.exp(spline(np.log(k[inside])))
    out[:, k > k_hi] = boost_native[:, -1:]
    return out


def _warn_high_k(k_hi: float) -> None:
    global _warned_high_k
    if _warned_high_k:
        return
    _warned_high_k = True
    warnings.warn(
        f"EuclidEmulator2 emulates B(k) only up to k = {k_hi:.4g} h/Mpc; "
        "larger k get the constant B(k_max) (this warning is shown once per process)",
        UserWarning,
        stacklevel=3,
    )


def euclidemu2_version() -> str:
    """The installed euclidemu2 release, recorded with every model built on it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("euclidemu2")
    except PackageNotFoundError:
        return "unknown"
