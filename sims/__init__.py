"""COLA particle-mesh simulations measuring the nonlinear matter power spectrum."""
from .config import SimConfig
from .cosmology import EE2_REFERENCE, Cosmology
from .result import SimResult

__all__ = ["Cosmology", "EE2_REFERENCE", "SimConfig", "SimResult", "run_simulation", "read_result", "write_result"]


def __getattr__(name):
    # Heavy modules (CAMB, numba kernels) load on first use, not at import.
    if name == "run_simulation":
        from .run import run_simulation

        return run_simulation
    if name in ("read_result", "write_result"):
        from . import io

        return getattr(io, name)
    raise AttributeError(name)
