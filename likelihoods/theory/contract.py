"""What a theory provider hands a likelihood, and the errors of the theory layer.

:class:`TheoryResult` holds the observables of one parameter point (fields a provider did
not compute are None).  The errors say who is at fault: :class:`LikelihoodError` and
:class:`TheorySetupError` a configuration mistake (the run stops), :class:`TheoryError`
a point the theory refuses (the sampler counts it as zero likelihood).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["TheoryResult", "LikelihoodError", "TheoryError", "TheorySetupError", "number_param", "LENS_MARGIN"]

# extra ell CAMB computes so lensed spectra are right at lmax (CAMB and its EDE correction run)
LENS_MARGIN = 200

class LikelihoodError(ValueError):
    """Bad likelihood input (data files, parameters); message says what and where."""


class TheoryError(ValueError):
    """Parameters the theory cannot (or must not) compute; the message names the parameter and range."""


class TheorySetupError(TypeError):
    """A configuration mistake: missing parameter, unknown requirement or setting."""


def number_param(params: Mapping[str, Any], name: str) -> float:
    """params[name] as a finite float; TheorySetupError (not a number) or TheoryError (not finite)."""
    value = params[name]
    if isinstance(value, bool):
        raise TheorySetupError(f"parameter {name}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TheorySetupError(f"parameter {name}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise TheoryError(f"parameter {name} must be finite, got {value!r}")
    return out


@dataclass
class TheoryResult:
    """Observables at one parameter point; fields a provider did not compute are None.

    cls       dict of lensed CMB spectra C_ell for ell = 0..lmax, keys 'tt', 'te', 'ee', 'bb'
              [muK^2], and 'pp' the lensing-potential C_ell^{phi phi} [dimensionless]
    H0        [km/s/Mpc]
    rdrag     sound horizon at the drag epoch [Mpc]
    theta_star  100 theta_* (CMB acoustic angle)
    comoving_distance(z), angular_diameter_distance(z), luminosity_distance(z)   [Mpc]
    hubble(z) H(z) [km/s/Mpc]
    sigma8, S8 = sigma8 sqrt(Omega_m/0.3)
    pk_nl(k [h/Mpc], z) -> (nz, nk) [(Mpc/h)^3]; pk_lin likewise
    derived   any other derived parameters (name -> value), written with the chain
    """

    params: dict[str, float] = field(default_factory=dict)
    cls: dict[str, np.ndarray] | None = None
    H0: float | None = None
    rdrag: float | None = None
    theta_star: float | None = None
    comoving_distance: Callable | None = None
    angular_diameter_distance: Callable | None = None
    luminosity_distance: Callable | None = None
    hubble: Callable | None = None
    sigma8: float | None = None
    S8: float | None = None
    pk_nl: Callable | None = None
    pk_lin: Callable | None = None
    derived: dict[str, float] = field(default_factory=dict)
