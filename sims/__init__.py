"""COLA particle-mesh simulations measuring the nonlinear matter power spectrum."""
from .config import SimConfig
from .cosmology import EE2_REFERENCE, Cosmology
from .io import read_result, write_result
from .result import SimResult

__all__ = ["Cosmology", "EE2_REFERENCE", "SimConfig", "SimResult", "run_simulation", "read_result", "write_result"]


def __getattr__(name):
    # The engine (numba kernels, scipy; CAMB on first use) loads when run_simulation is
    # first asked for, not at import: every sims.* import goes through this package.
    if name == "run_simulation":
        from .run import run_simulation

        return run_simulation
    raise AttributeError(name)
