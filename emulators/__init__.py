"""Fast predictions of the nonlinear matter power spectrum (emulators)."""
from .ee2 import EE2_BOX, EE2_K_RANGE, ee2_boost

__all__ = ["EE2_BOX", "EE2_K_RANGE", "ee2_boost"]
