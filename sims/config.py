"""Simulation settings: one immutable, validated object per run.

Lengths are comoving Mpc/h, wavenumbers h/Mpc.  Every field is stored in the
output file, so a result can always be traced back to the settings that made
it (and a campaign can refuse to mix results of different settings).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["SimConfig", "ASSIGNMENTS", "as_current_record", "STEP_SPACINGS", "MemoryLimitError", "available_memory_bytes", "check_memory"]

ASSIGNMENTS = ("ngp", "cic", "tsc", "pcs")
NOISE_KINDS = ("lattice", "nested")   # sims.ic.white_noise
STEP_SPACINGS = ("linear", "log")

# Settings added after results were first stored, with the value every older record implies
# (white noise was drawn on the lattice until 'noise' existed).
ADDED_SETTINGS = {"noise": "lattice"}


def as_current_record(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored simulation-settings record (campaign.json, an archive's sim_config) as it reads
    today: settings added since it was written take the value that made it."""
    return {**ADDED_SETTINGS, **stored}


def _bad(name: str, msg: str, value: Any) -> ValueError:
    return ValueError(f"simulation setting {name}: {msg}, got {value!r}")


def _int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    # Typed as in a workflow file (pipeline.schema): no strings, no floats, no bools,
    # so '32' or 32.0 is refused the same way in YAML and in Python.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _bad(name, "expected an integer", value)
    out = int(value)
    if out < lo or (hi is not None and out > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise _bad(name, f"must be an integer in {rng}", value)
    return out


def _float(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(name, "expected a number", value)
    out = float(value)
    if not math.isfinite(out) or out < lo or out > hi or (lo_open and out == lo):
        bracket = "(" if lo_open else "["
        raise _bad(name, f"must be a number in {bracket}{lo:g}, {hi:g}]", value)
    return out


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise _bad(name, f"must be one of {', '.join(allowed)}", value)
    return value.lower()


@dataclass(frozen=True)
class SimConfig:
    """Settings of one COLA simulation.

    box            side of the periodic box [Mpc/h]
    particles      particles per side (N_p^3 in total)
    mesh           force mesh cells per side (default 2 * particles; >= particles)
    steps          number of COLA kick-drift-kick steps from z_init to min(z_out)
    z_init         starting redshift of the 2LPT initial conditions
    z_out          output redshifts, strictly decreasing (spectra are measured there)
    step_spacing   'linear' (uniform in a, default) or 'log' (uniform in ln a)
    assignment     force mass assignment: 'cic' (default) or 'tsc' ('ngp', 'pcs' too)
    deconvolve     divide the force by the assignment window squared (held fixed beyond
                   half the mesh Nyquist frequency, see forces.capped_window)
    gradient       force gradient kernel: 'fd4' (4-point difference, default), 'fd2' or 'exact'
    lpt_order      1 (Zel'dovich) or 2 (2LPT) initial conditions and COLA frame
    cola_nlpt      Tassev et al. (2013) time-stepping exponent n_LPT; None gives the
                   standard (unmodified) kick and drift integrals
    seed           random seed of the initial Gaussian field
    noise          how the seed draws it: 'lattice' (default) or 'nested', whose large-scale
                   modes are the same at every particle count (resolution studies; sims.ic)
    paired         also run the phase-flipped partner and average the spectra
    fixed_amplitude  set |delta_k| to sqrt(P(k)) exactly (Angulo & Pontzen 2016)
    pk_mesh        mesh per side for measuring P(k) (default: the force mesh)
    pk_assignment  mass assignment for P(k) (default 'cic')
    interlacing    interlace two shifted meshes against aliasing (default True)
    shot_noise     subtract the Poisson shot noise L^3/N from P(k).  Off by default:
                   particles start on a lattice, whose discreteness noise is far below
                   Poisson on large scales, so subtracting L^3/N biases P low there
                   (by 13 % at k = 0.02 h/Mpc, z = 2 for 64^3 particles in 512 Mpc/h)
    k_max          largest k of the output bins [h/Mpc] (default: particle Nyquist)
    nk             number of linear k bins (default: N_p / 2)
    threads        threads for FFTs and particle loops (default: all cores)
    """

    box: float = 256.0
    particles: int = 64
    mesh: int | None = None
    steps: int = 25
    z_init: float = 19.0
    z_out: tuple[float, ...] = (0.0,)
    step_spacing: str = "linear"
    assignment: str = "cic"
    deconvolve: bool = True
    gradient: str = "fd4"
    lpt_order: int = 2
    cola_nlpt: float | None = -2.5
    seed: int = 1
    noise: str = "lattice"
    paired: bool = False
    fixed_amplitude: bool = False
    pk_mesh: int | None = None
    pk_assignment: str = "cic"
    interlacing: bool = True
    shot_noise: bool = False
    k_max: float | None = None
    nk: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "box", _float("box", self.box, 0.0, 1e5, lo_open=True))
        s(self, "particles", _int("particles", self.particles, 2, 4096))
        mesh = 2 * self.particles if self.mesh is None else _int("mesh", self.mesh, 2, 16384)
        if mesh < self.particles:
            raise _bad("mesh", f"the force mesh must have at least as many cells per side as particles "
                       f"per side ({self.particles})", self.mesh)
        s(self, "mesh", mesh)
        s(self, "steps", _int("steps", self.steps, 1, 10000))
        s(self, "z_init", _float("z_init", self.z_init, 0.0, 1000.0, lo_open=True))
        z_out = self.z_out
        if isinstance(z_out, numbers.Real) and not isinstance(z_out, bool):
            z_out = (z_out,)
        if isinstance(z_out, (str, bytes)) or not hasattr(z_out, "__iter__") or any(
                isinstance(z, bool) or not isinstance(z, numbers.Real) for z in z_out):
            raise _bad("z_out", "expected a list of numbers", self.z_out)
        z_out = tuple(float(z) for z in z_out)
        if not z_out:
            raise _bad("z_out", "at least one output redshift is needed", self.z_out)
        if any(not math.isfinite(z) or z < 0 for z in z_out):
            raise _bad("z_out", "redshifts must be finite and >= 0", self.z_out)
        if any(b >= a for a, b in zip(z_out, z_out[1:])):
            raise _bad("z_out", "output redshifts must be strictly decreasing (e.g. 2 1 0.5 0)", self.z_out)
        if z_out[0] >= self.z_init:
            raise _bad("z_out", f"output redshifts must be below z_init={self.z_init:g}", self.z_out)
        s(self, "z_out", z_out)
        s(self, "step_spacing", _choice("step_spacing", self.step_spacing, STEP_SPACINGS))
        s(self, "assignment", _choice("assignment", self.assignment, ASSIGNMENTS))
        s(self, "gradient", _choice("gradient", self.gradient, ("exact", "fd2", "fd4")))
        s(self, "noise", _choice("noise", self.noise, NOISE_KINDS))
        s(self, "lpt_order", _int("lpt_order", self.lpt_order, 1, 2))
        if self.cola_nlpt is not None:
            s(self, "cola_nlpt", _float("cola_nlpt", self.cola_nlpt, -10.0, 10.0))
        s(self, "seed", _int("seed", self.seed, 0, 2**63 - 1))
        for flag in ("paired", "fixed_amplitude", "interlacing", "deconvolve", "shot_noise"):
            if not isinstance(getattr(self, flag), bool):
                raise _bad(flag, "expected true or false", getattr(self, flag))
        pk_mesh = mesh if self.pk_mesh is None else _int("pk_mesh", self.pk_mesh, 2, 16384)
        s(self, "pk_mesh", pk_mesh)
        s(self, "pk_assignment", _choice("pk_assignment", self.pk_assignment, ASSIGNMENTS))
        if self.k_max is not None:
            s(self, "k_max", _float("k_max", self.k_max, 0.0, math.pi * pk_mesh / self.box, lo_open=True))
        if self.nk is not None:
            s(self, "nk", _int("nk", self.nk, 1, 100000))
        if self.threads is not None:
            s(self, "threads", _int("threads", self.threads, 1, 1024))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SimConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown simulation setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**dict(d))

    def replace(self, **changes: Any) -> "SimConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- derived quantities ---------------------------------------------
    @property
    def a_init(self) -> float:
        return 1.0 / (1.0 + self.z_init)

    @property
    def a_final(self) -> float:
        return 1.0 / (1.0 + min(self.z_out))

    @property
    def k_nyquist(self) -> float:
        """Particle Nyquist frequency pi N_p / L [h/Mpc]."""
        return math.pi * self.particles / self.box

    @property
    def k_fundamental(self) -> float:
        return 2.0 * math.pi / self.box

    def k_bins(self):
        """Edges of the linear output k bins [h/Mpc]: from k_f/2 in steps of k_f up to k_max."""
        import numpy as np

        k_max = self.k_max if self.k_max is not None else self.k_nyquist
        kf = self.k_fundamental
        nk = self.nk if self.nk is not None else max(1, int(round((k_max - 0.5 * kf) / kf)))
        return np.linspace(0.5 * kf, k_max, nk + 1)

    def memory_estimate_bytes(self) -> int:
        """Rough peak memory of one run: particle arrays plus mesh buffers."""
        n_part = self.particles**3
        per_particle = 8 * 3 + 4 * 3 * 3 + 4 * 3  # x (f64), psi1, psi2, p (f32), accel (f32)
        n_mesh = max(self.mesh, self.pk_mesh) ** 3
        per_cell = 4 * (2 + 2 + 1)  # real, complex (~2 x real), one private deposit grid
        return int(n_part * per_particle + n_mesh * per_cell)


# -- memory guard -------------------------------------------------------------
class MemoryLimitError(MemoryError):
    """A simulation refused before it starts because it would not fit in memory."""


def available_memory_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable of this machine [bytes]: what can be allocated without swapping;
    None where the kernel does not report it (then no limit is applied)."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def check_memory(config: SimConfig, memory_limit: int | None = None) -> None:
    """Refuse a run whose engine memory estimate exceeds ``memory_limit`` [bytes]
    (default: MemAvailable): numpy would otherwise fail deep inside, or the kernel kill it."""
    if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, int)
                                     or memory_limit <= 0):
        raise ValueError(f"memory_limit: expected a positive number of bytes, got {memory_limit!r}")
    limit, what = memory_limit, "the given memory limit"
    if limit is None:
        limit, what = available_memory_bytes(), "available memory (MemAvailable in /proc/meminfo)"
        if limit is None:
            return
    need = config.memory_estimate_bytes()
    if need > limit:
        raise MemoryLimitError(
            f"simulation with {config.particles}^3 particles and a {max(config.mesh, config.pk_mesh)}^3 mesh "
            f"needs about {_size(need)} (engine estimate) but {what} is {_size(limit)}; use fewer particles "
            f"or a smaller mesh, or raise the limit (memory_limit=, --max-memory)")
