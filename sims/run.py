"""One COLA simulation (or a paired couple) from cosmology to measured boost."""
from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from cosmopipe.provenance import code_version, host_info

from .cola import evolve, initial_state, time_steps
from .config import MemoryLimitError, SimConfig, available_memory_bytes, check_memory
from .cosmology import Cosmology
from .forces import PMForce
from .growth import background_from_camb, growth_factors
from .ic import lattice, linear_density_k, lpt_displacements, white_noise
from .linear import linear_power
from .mesh import set_threads
from .power import PowerMeter, bin_modes
from .result import SimResult

__all__ = ["run_simulation", "check_memory", "available_memory_bytes", "MemoryLimitError"]

log = logging.getLogger("cosmopipe.sims")


# A campaign worker runs many simulations with one set-up: each thread keeps its last
# force solver and power meter (mesh buffers with their FFT plans) for the next run,
# instead of allocating and faulting in the same meshes again (~0.1 s per 256^3 buffer
# on a busy machine).  One entry per thread, so concurrent runs never share buffers.
_solvers_local = threading.local()
# CAMB keeps its state in Fortran module variables: two threads of one worker calling it
# at once get "No k values available" or wrong spectra.  Runs take turns for it.
_CAMB_LOCK = threading.Lock()


def _solvers(config: SimConfig, n_particles: int, threads: int, edges: np.ndarray) -> tuple[PMForce, PowerMeter]:
    key = (config.mesh, config.box, n_particles, config.assignment, threads, config.deconvolve, config.gradient,
           config.pk_mesh, tuple(np.asarray(edges, float).tolist()), config.pk_assignment, config.interlacing)
    cached = getattr(_solvers_local, "entry", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    _solvers_local.entry = None  # free the old buffers before allocating new ones
    force = PMForce(config.mesh, config.box, n_particles, config.assignment, threads, config.deconvolve,
                    config.gradient)
    # P(k) is measured between steps, when the force mesh is free: share it when the sizes agree.
    meter = PowerMeter(config.pk_mesh, config.box, edges, config.pk_assignment, config.interlacing, threads,
                       mesh=force.mesh if config.pk_mesh == config.mesh else None)
    _solvers_local.entry = (key, (force, meter))
    return force, meter


def _progress_bar(total: int, enabled: bool, desc: str):
    if not enabled:
        return None, (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    return bar.update, bar.close


def run_simulation(cosmology: Cosmology, config: SimConfig, progress: bool = True,
                   memory_limit: int | None = None) -> SimResult:
    """Run COLA for ``cosmology`` with ``config`` and measure P(k, z) and the boost.

    ``memory_limit`` [bytes] (default: MemAvailable) refuses up front, with
    :class:`MemoryLimitError`, a run whose memory estimate exceeds it.

    The linear spectrum (CDM + baryons, from CAMB at z = 0) is scaled to the
    starting redshift with the growth factor D1 of the same background
    ("back-scaling"), and the boost's denominator is that same linear theory
    at each output z, averaged over the modes of each k bin: on large scales
    B -> 1 exactly where the simulation follows linear theory.
    """
    check_memory(config, memory_limit)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    threads = set_threads(config.threads if config.threads is not None else os.cpu_count())
    n_p, box = config.particles, config.box

    t0 = time.perf_counter()
    k_corner = np.sqrt(3.0) * np.pi * max(config.mesh, config.pk_mesh) / box
    # CAMB's OpenMP threads follow the run's thread count: a campaign task that was
    # given one core must not use all of them (oversubscription doubled task times).
    import camb

    with _CAMB_LOCK:
        camb_threads, camb.config.ThreadNum = camb.config.ThreadNum, threads
        try:
            lin = linear_power(cosmology, (0.0,), kmax=max(20.0, 1.1 * k_corner))
            growth = growth_factors(background_from_camb(cosmology))
        finally:
            camb.config.ThreadNum = camb_threads
    timings["linear"] = time.perf_counter() - t0

    edges = config.k_bins()
    a_out = [1.0 / (1.0 + z) for z in config.z_out]
    D_out = np.array([float(growth.D1(a)) for a in a_out])
    p_lin0 = bin_modes(config.pk_mesh, box, edges, lambda k: lin(k, 0.0, "cb"))
    pk_lin = D_out[:, None] ** 2 * p_lin0[None, :]

    a_steps = time_steps(config.a_init, config.a_final, config.steps, config.step_spacing)
    force, meter = _solvers(config, n_p**3, threads, edges)
    # Lattice sites midway between force-mesh nodes: CIC is then linear in small
    # displacements (on a node its weights have a kink, which biases early forces).
    q = lattice(n_p, box) + 0.5 * box / config.mesh
    noise = white_noise(n_p, config.seed, config.noise)

    runs = [False, True] if config.paired else [False]
    pk_runs = np.zeros((len(runs), len(a_out), len(edges) - 1))
    k_mean = nmodes = None
    for r, flip in enumerate(runs):
        t0 = time.perf_counter()
        delta_k = linear_density_k(noise, box, lambda k: lin(k, 0.0, "cb"), config.fixed_amplitude, flip, threads)
        psi1, psi2 = lpt_displacements(delta_k, box, config.lpt_order, threads)
        del delta_k
        state = initial_state(q, psi1, psi2, growth, config.a_init, box)
        timings["ic"] = timings.get("ic", 0.0) + time.perf_counter() - t0

        measured = {}

        def on_output(a, x):
            ps = meter(x, subtract_shot_noise=config.shot_noise)
            measured[round(a, 12)] = ps
            nonlocal k_mean, nmodes
            k_mean, nmodes = ps.k, ps.nmodes

        label = f"COLA {'paired ' if config.paired else ''}run {r + 1}/{len(runs)}"
        log.info("%s: %d^3 particles, %d^3 mesh, box %g Mpc/h, %d steps, %d threads",
                 label, n_p, config.mesh, box, config.steps, threads)
        update, close = _progress_bar(config.steps, progress, label)
        t0 = time.perf_counter()
        step_t: dict[str, float] = {}
        try:
            evolve(state, growth, force, box, a_steps, a_out, on_output, config.step_spacing,
                   config.cola_nlpt, update, step_t)
        finally:
            close()
        timings["evolve"] = timings.get("evolve", 0.0) + time.perf_counter() - t0 - step_t["output"]
        timings["power"] = timings.get("power", 0.0) + step_t["output"]
        for key in ("force", "update"):
            timings["evolve_" + key] = timings.get("evolve_" + key, 0.0) + step_t[key]
        for i, a in enumerate(a_out):
            pk_runs[r, i] = measured[round(a, 12)].pk
        del state, psi1, psi2

    pk = pk_runs.mean(axis=0)
    timings["total"] = time.perf_counter() - t_start
    return SimResult(
        k=k_mean, z=np.asarray(config.z_out, dtype=float), pk=pk, pk_lin=pk_lin, boost=pk / pk_lin,
        nmodes=nmodes, pk_runs=pk_runs, cosmology=cosmology, config=config, timings=timings,
        version=code_version(),
        extra={"threads": threads, "sigma8": lin.sigma8, "sigma8_cb": lin.sigma8_cb,
               "growth_D1": D_out.tolist(), **host_info()},
    )
