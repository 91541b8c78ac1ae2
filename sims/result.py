"""The product of one simulation: spectra on a (z, k) grid plus provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import SimConfig
from .cosmology import Cosmology

__all__ = ["SimResult"]


@dataclass(frozen=True)
class SimResult:
    """Measured spectra of one COLA simulation (or of a paired couple).

    k        (nk,)      mode-weighted mean wavenumber of each bin [h/Mpc]
    z        (nz,)      output redshifts, decreasing
    pk       (nz, nk)   nonlinear CDM+baryon power [(Mpc/h)^3] (shot noise subtracted if config.shot_noise);
                        the mean over the pair when paired
    pk_lin   (nz, nk)   linear CDM+baryon power at the same k and z [(Mpc/h)^3]
    boost    (nz, nk)   pk / pk_lin
    nmodes   (nk,)      number of Fourier modes in each bin
    pk_runs  (nrun, nz, nk)  the spectrum of each run (2 when paired, else 1)
    cosmology, config   what was simulated
    timings  seconds spent per stage (keys such as 'linear', 'ic', 'evolve', 'power', 'total')
    version  cosmopipe version string
    extra    free-form provenance (host, threads, ...)
    """

    k: np.ndarray
    z: np.ndarray
    pk: np.ndarray
    pk_lin: np.ndarray
    boost: np.ndarray
    nmodes: np.ndarray
    pk_runs: np.ndarray
    cosmology: Cosmology
    config: SimConfig
    timings: dict[str, float] = field(default_factory=dict)
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
