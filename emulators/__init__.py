"""Fast predictions of the nonlinear matter power spectrum (emulators).

    from cosmopipe import emulators
    emu = emulators.load("<model name>")        # a shipped model (see `cosmopipe models`) ...
    emu = emulators.load("out/quickstart/emulators/boost.h5")   # ... or a file
    emu.boost(k, z, {"Omega_m": 0.3, ...})     # (nz, nk); a table of cosmologies -> (n, nz, nk)
    emu.pnl(k, z, params)                       # P_lin x B [(Mpc/h)^3]
    emulators.predict("<model name>", {"Omega_m": [0.3, 0.32]}, z=[0, 1])   # defaults as the CLI's

Heavy pieces (training, CAMB, EuclidEmulator2) load on first use.
"""
from .ee2 import EE2_BOX, EE2_K_RANGE, ee2_boost
from .io import save
from .registry import load, predict, shipped

__all__ = ["EE2_BOX", "EE2_K_RANGE", "ee2_boost", "load", "save", "predict", "shipped"]
