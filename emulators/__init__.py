"""Fast predictions of the nonlinear matter power spectrum (emulators).

    from cosmopipe import emulators
    emu = emulators.load("out/quickstart/emulators/boost.h5")
    emu.boost(k, z, {"Omega_m": 0.3, ...})     # (nz, nk); a table of cosmologies -> (n, nz, nk)
    emu.pnl(k, z, params)                       # P_lin x B [(Mpc/h)^3]

Heavy pieces (training, CAMB, EuclidEmulator2) load on first use.
"""
from .ee2 import EE2_BOX, EE2_K_RANGE, ee2_boost
from .io import load, save

__all__ = ["EE2_BOX", "EE2_K_RANGE", "ee2_boost", "load", "save"]
