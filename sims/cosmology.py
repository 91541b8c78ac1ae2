"""Cosmological parameters for wCDM / w0waCDM with massive neutrinos.

The parameter set is that of EuclidEmulator2 (Knabenhans et al. 2021), so a
:class:`Cosmology` can be handed to the simulation engine, to CAMB and to EE2
without translation:

==========  ==========================================================  =======
name        meaning                                                     unit
==========  ==========================================================  =======
Omega_m     total matter today (CDM + baryons + massive neutrinos)      --
Omega_b     baryons today                                               --
h           H0 / (100 km/s/Mpc)                                          --
A_s         primordial scalar amplitude at k_pivot = 0.05 / Mpc          --
n_s         scalar spectral index                                        --
w0, wa      dark-energy equation of state w(a) = w0 + wa (1 - a)         --
m_nu        sum of the three (degenerate) neutrino masses                eV
==========  ==========================================================  =======

A flat universe is assumed throughout: Omega_de = 1 - Omega_m - Omega_rad.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Cosmology", "PARAMETER_RANGES", "EE2_REFERENCE", "T_CMB", "N_EFF"]

T_CMB = 2.7255  # K, Fixsen 2009
N_EFF = 3.044  # effective number of relativistic species (CAMB default)
# Omega_nu h^2 = sum m_nu / 93.14 eV: the conversion EuclidEmulator2 uses.
NU_MASS_FACTOR_EV = 93.14

# Physical validity ranges (not an emulator box): outside these the
# background or the linear solver is either unphysical or untested.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "Omega_m": (0.05, 0.95),
    "Omega_b": (0.005, 0.2),
    "h": (0.4, 1.0),
    "A_s": (5.0e-10, 5.0e-9),
    "n_s": (0.8, 1.2),
    "w0": (-3.0, -0.3),
    "wa": (-3.0, 2.0),
    "m_nu": (0.0, 1.0),
}


def _as_float(name: str, value: Any) -> float:
    """Convert ``value`` to float or raise a ValueError naming ``name``."""
    # Typed as in a workflow file (pipeline.schema.number): '0.7' and True are refused.
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"cosmology parameter {name}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cosmology parameter {name}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"cosmology parameter {name}: must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Cosmology:
    """Immutable flat w0waCDM cosmology with massive neutrinos (see module doc).

    Defaults are the EuclidEmulator2 reference cosmology.  Construction
    validates every parameter and raises ``ValueError`` naming the offending
    parameter and its allowed range.
    """

    Omega_m: float = 0.319
    Omega_b: float = 0.049
    h: float = 0.67
    A_s: float = 2.1e-9
    n_s: float = 0.96
    w0: float = -1.0
    wa: float = 0.0
    m_nu: float = 0.058

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _as_float(f.name, getattr(self, f.name))
            lo, hi = PARAMETER_RANGES[f.name]
            if not lo <= value <= hi:
                raise ValueError(
                    f"cosmology parameter {f.name}={value:g} is outside the allowed range [{lo:g}, {hi:g}]"
                )
            object.__setattr__(self, f.name, value)
        if self.Omega_b + self.Omega_nu >= self.Omega_m:
            raise ValueError(
                f"cosmology parameter Omega_b={self.Omega_b:g}: Omega_b + Omega_nu ({self.Omega_nu:.4g}) "
                f"must be below Omega_m={self.Omega_m:g} (no room left for cold dark matter)"
            )
        if self.w0 + self.wa >= 0.0:
            raise ValueError(
                f"cosmology parameters w0={self.w0:g}, wa={self.wa:g}: w0 + wa must be negative "
                "(otherwise dark energy dominates at early times)"
            )

    # -- construction helpers -------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any], base: "Cosmology | None" = None) -> "Cosmology":
        """Build from a mapping; unspecified parameters come from ``base``
        (default: the EuclidEmulator2 reference).  Unknown names are errors."""
        unknown = sorted(set(params) - set(cls.names()))
        if unknown:
            raise ValueError(
                f"unknown cosmology parameter(s) {', '.join(unknown)}; allowed: {', '.join(cls.names())}"
            )
        base = base if base is not None else cls()
        return dataclasses.replace(base, **dict(params))

    def replace(self, **changes: Any) -> "Cosmology":
        return self.from_dict(changes, base=self)

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def lcdm(self) -> "Cosmology":
        """The same cosmology with w0 = -1, wa = 0 (the hybrid emulator's theta_LCDM)."""
        return dataclasses.replace(self, w0=-1.0, wa=0.0)

    # -- derived densities ----------------------------------------------
    @property
    def Omega_nu(self) -> float:
        """Massive-neutrino density today, Omega_nu = sum m_nu / (93.14 eV h^2)."""
        return self.m_nu / (NU_MASS_FACTOR_EV * self.h**2)

    @property
    def Omega_cb(self) -> float:
        """Cold dark matter plus baryons today: what the N-body particles carry."""
        return self.Omega_m - self.Omega_nu

    @property
    def Omega_c(self) -> float:
        return self.Omega_m - self.Omega_b - self.Omega_nu

    @property
    def f_nu(self) -> float:
        return self.Omega_nu / self.Omega_m

    def label(self) -> str:
        return ", ".join(f"{k}={v:.6g}" for k, v in self.to_dict().items())


EE2_REFERENCE = Cosmology()
