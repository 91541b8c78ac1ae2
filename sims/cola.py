"""COLA time stepping (Tassev, Zaldarriaga & Eisenstein 2013).

Particles move in the frame of their 2LPT trajectories: x = x_LPT + x_res,
x_LPT = q + D1 psi1 + D2 psi2.  With time a, H0 = 1, comoving x [Mpc/h] and
the momentum p = a^3 E dx/da, the equations of motion are

    dx/da = p / (a^3 E),        dp/da = 3/2 Omega_cb0 g(x) / (a^2 E),
    g = -grad nabla^-2 delta    (sims/forces.py)

and the LPT trajectories obey the same equations with
g_LPT = D1 psi1 + (D2 - D1^2) psi2 (the growth ODEs of sims/growth.py).  Only
the residual p_res = p - p_LPT is integrated, kick-drift-kick, driven by
g - g_LPT; the LPT part of every drift is exact.

With ``nlpt`` set, the kick and drift integrals assume p_res ~ a^nlpt between
steps (Tassev et al. 2013, eqs. A.15-A.16; the scheme of L-PICOLA and FML),
which keeps large scales on linear theory with few steps; ``nlpt=None``
uses the plain integrals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from numba import njit, prange
from scipy.integrate import quad

from .growth import Growth

__all__ = ["time_steps", "drift_factor", "kick_factor", "ColaState", "evolve"]


def time_steps(a_init: float, a_final: float, steps: int, spacing: str = "linear") -> np.ndarray:
    """Scale factors of the step boundaries, ``steps + 1`` values from a_init to a_final."""
    if spacing == "linear":
        return np.linspace(a_init, a_final, steps + 1)
    if spacing == "log":
        return np.exp(np.linspace(np.log(a_init), np.log(a_final), steps + 1))
    raise ValueError(f"step_spacing must be 'linear' or 'log', got {spacing!r}")


def _midpoints(a: np.ndarray, spacing: str) -> np.ndarray:
    return np.sqrt(a[:-1] * a[1:]) if spacing == "log" else 0.5 * (a[:-1] + a[1:])


def drift_factor(E: Callable, a0: float, a1: float, a_ref: float, nlpt: float | None) -> float:
    """Delta x_res / p_res(a_ref) over [a0, a1] [Mpc/h per unit p]."""
    if nlpt is None:
        return quad(lambda a: 1.0 / (a**3 * E(a)), a0, a1, epsabs=0, epsrel=1e-10)[0]
    return quad(lambda a: (a / a_ref) ** nlpt / (a**3 * E(a)), a0, a1, epsabs=0, epsrel=1e-10)[0]


def kick_factor(E: Callable, a0: float, a1: float, a_ref: float, nlpt: float | None) -> float:
    """Delta p_res / [3/2 Omega_cb0 (g - g_LPT)(a_ref)] over [a0, a1]."""
    if nlpt is None:
        return quad(lambda a: 1.0 / (a**2 * E(a)), a0, a1, epsabs=0, epsrel=1e-10)[0]
    # p_res ~ a^n: dp/da at a_ref equals the force there.
    return (a1**nlpt - a0**nlpt) / (nlpt * a_ref ** (nlpt - 1.0)) / (a_ref**2 * E(a_ref))


@dataclass
class ColaState:
    """Mutable particle state of a COLA run (the only mutable object in sims/).

    x     (N, 3) float64 positions in [0, box) [Mpc/h]
    p     (N, 3) float64 residual momentum a^3 E dx_res/da
    psi1, psi2  (N, 3) float32 LPT displacement fields at z = 0 amplitude [Mpc/h]
    a     current scale factor of the positions
    """

    x: np.ndarray
    p: np.ndarray
    psi1: np.ndarray
    psi2: np.ndarray
    a: float


def initial_state(q: np.ndarray, psi1: np.ndarray, psi2: np.ndarray, growth: Growth, a_init: float,
                  box: float) -> ColaState:
    """Particles on their LPT trajectories at a_init, with zero residual momentum."""
    state = ColaState(x=q, p=np.zeros_like(q), psi1=psi1, psi2=psi2, a=0.0)
    x = np.empty_like(q)
    _drift_kernel(x, q, psi1, psi2, state.p, float(growth.D1(a_init)), float(growth.D2(a_init)), 0.0, float(box))
    return ColaState(x=x, p=state.p, psi1=psi1, psi2=psi2, a=float(a_init))


@njit(parallel=True, fastmath=True, cache=True)
def _kick_kernel(p, g, psi1, psi2, c1, c2, kick):
    """p += kick * (g - c1 psi1 - c2 psi2), one fused pass over the particles."""
    for i in prange(p.shape[0]):
        for d in range(3):
            p[i, d] += kick * (g[i, d] - c1 * psi1[i, d] - c2 * psi2[i, d])


@njit(parallel=True, fastmath=True, cache=True)
def _drift_kernel(out, x, psi1, psi2, p, dD1, dD2, fac, box):
    for i in prange(x.shape[0]):
        for d in range(3):
            v = x[i, d] + dD1 * psi1[i, d] + dD2 * psi2[i, d] + fac * p[i, d]
            v = v - box * np.floor(v / box)
            # floor can leave v == box after rounding; keep positions in [0, box).
            out[i, d] = v if v < box else 0.0


@njit(parallel=True, fastmath=True, cache=True)
def _kick_drift_kernel(out, x, p, g, psi1, psi2, c1, c2, kick, dD1, dD2, fac, box):
    """_kick_kernel then _drift_kernel in one pass over the particles (the same
    arithmetic; psi1, psi2 and p are read once instead of twice)."""
    for i in prange(x.shape[0]):
        for d in range(3):
            p[i, d] += kick * (g[i, d] - c1 * psi1[i, d] - c2 * psi2[i, d])
            v = x[i, d] + dD1 * psi1[i, d] + dD2 * psi2[i, d] + fac * p[i, d]
            v = v - box * np.floor(v / box)
            out[i, d] = v if v < box else 0.0


def _drift(state: ColaState, growth: Growth, a1: float, fac: float, box: float, out: np.ndarray) -> np.ndarray:
    """Positions at a1: exact LPT increment plus the residual drift ``fac * p``."""
    dD1 = float(growth.D1(a1) - growth.D1(state.a))
    dD2 = float(growth.D2(a1) - growth.D2(state.a))
    _drift_kernel(out, state.x, state.psi1, state.psi2, state.p, dD1, dD2, fac, float(box))
    return out


def evolve(state: ColaState, growth: Growth, force: Callable[[np.ndarray], np.ndarray], box: float,
           a_steps: Sequence[float], a_out: Sequence[float], on_output: Callable[[float, np.ndarray], None],
           spacing: str = "linear", nlpt: float | None = -2.5, progress: Callable[[int], None] | None = None,
           timings: dict | None = None) -> ColaState:
    """Kick-drift-kick COLA from a_steps[0] to a_steps[-1].

    ``force(x)`` returns g = -grad nabla^-2 delta at the particles.  For every
    a in ``a_out`` (increasing, within the step range) ``on_output(a, x)`` is
    called with positions drifted to exactly that a from the last
    synchronised step using the current (half-step) momentum: outputs cost
    no force evaluation.  The residual momentum is left half a step behind
    the final positions (no force is evaluated after the last drift).
    """
    import time

    bg = growth.background
    E = bg.E_of_a
    om = bg.Omega_cb0
    a = np.asarray(a_steps, dtype=float)
    a_mid = _midpoints(a, spacing)
    out_list = sorted(float(v) for v in a_out)
    if out_list and (out_list[0] < a[0] - 1e-12 or out_list[-1] > a[-1] + 1e-12):
        raise ValueError("output scale factors must lie within the time-stepping range")
    t = timings if timings is not None else {}
    for key in ("force", "update", "output"):
        t.setdefault(key, 0.0)
    buf = np.empty_like(state.x)
    iout = 0
    while iout < len(out_list) and out_list[iout] <= a[0] + 1e-12:
        t0 = time.perf_counter()
        on_output(out_list[iout], state.x)
        t["output"] += time.perf_counter() - t0
        iout += 1
    for i in range(len(a) - 1):
        t0 = time.perf_counter()
        g = force(state.x)
        t1 = time.perf_counter()
        # Residual force: subtract the LPT trajectory's own acceleration.
        D1, D2 = float(growth.D1(a[i])), float(growth.D2(a[i]))
        a_from = a[0] if i == 0 else a_mid[i - 1]
        kick = 1.5 * om * kick_factor(E, a_from, a_mid[i], a[i], nlpt)
        fac = drift_factor(E, a[i], a[i + 1], a_mid[i], nlpt)
        output_inside = iout < len(out_list) and out_list[iout] < a[i + 1] - 1e-12
        if output_inside:
            _kick_kernel(state.p, g, state.psi1, state.psi2, D1, D2 - D1 * D1, kick)
        t_out = 0.0
        # Outputs inside (a_i, a_{i+1}): drift a copy, no extra force.
        while iout < len(out_list) and out_list[iout] < a[i + 1] - 1e-12:
            t_o = time.perf_counter()
            a_o = out_list[iout]
            on_output(a_o, _drift(state, growth, a_o, drift_factor(E, a[i], a_o, a_mid[i], nlpt), box, buf))
            iout += 1
            t_out += time.perf_counter() - t_o
        if output_inside:
            _drift(state, growth, a[i + 1], fac, box, buf)
        else:
            _kick_drift_kernel(buf, state.x, state.p, g, state.psi1, state.psi2, D1, D2 - D1 * D1, kick,
                               float(growth.D1(a[i + 1]) - growth.D1(state.a)),
                               float(growth.D2(a[i + 1]) - growth.D2(state.a)), fac, float(box))
        del g
        state.x, buf = buf, state.x
        state.a = float(a[i + 1])
        t2 = time.perf_counter()
        while iout < len(out_list) and out_list[iout] <= a[i + 1] + 1e-12:
            t_o = time.perf_counter()
            on_output(out_list[iout], state.x)
            t["output"] += time.perf_counter() - t_o
            iout += 1
        t["force"] += t1 - t0
        t["update"] += t2 - t1 - t_out
        t["output"] += t_out
        if progress is not None:
            progress(1)
    return state
