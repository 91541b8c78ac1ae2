"""One parameter vocabulary: the EE2 (simulation) names and the Planck (CMB) names of the
same flat LCDM + massive-neutrino cosmology, and the translations between them.

=====================  =====================================  ===========================
EE2 style (Cosmology)  Planck style (camb_theory)              relation
=====================  =====================================  ===========================
h                      H0 [km/s/Mpc]                            H0 = 100 h
Omega_b                ombh2                                    ombh2 = Omega_b h^2
Omega_m                omch2 (+ ombh2, omnuh2)                  omch2 = Omega_m h^2 - ombh2 - omnuh2
A_s                    logA = ln(10^10 A_s)  (or As = A_s)      at k_pivot = 0.05 / Mpc
n_s                    ns                                       equal
m_nu [eV]              mnu [eV]                                 equal (sum of masses)
--                     theta_MC_100, theta_star_100             need CAMB (an H0 solve)
w0, wa                 w0, wa                                   equal
=====================  =====================================  ===========================

omnuh2 is CAMB's own neutrino density for camb_theory's set-up (one massive eigenstate,
N_eff = 3.044, T_CMB = 2.7255 K), so Omega_m from either side is the total matter CAMB
computes.  :func:`complete` adds every name that follows from the given ones without
running CAMB; 100 theta_* or theta_MC given without H0 or h leave the EE2 names for the
theory provider that solves for H0 (CAMB or the observables emulator), and
:func:`require_h0` says so clearly where none does.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Mapping

from cosmopipe.sims.cosmology import N_EFF, T_CMB

from .contract import TheorySetupError

__all__ = ["EE2_NAMES", "PLANCK_NAMES", "THETA_NAMES", "ee2_to_planck", "planck_to_ee2", "complete",
           "omnuh2", "require_h0"]

EE2_NAMES = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "m_nu")
PLANCK_NAMES = ("ombh2", "omch2", "H0", "logA", "ns", "mnu")
# Acoustic-scale parameters: H0 follows from them only through a CAMB (or emulator) solve.
THETA_NAMES = ("theta_MC_100", "cosmomc_theta", "theta_star_100")
_MNU_DEFAULT = 0.06  # eV, as camb_theory (Planck 2018 minimal mass)


@functools.lru_cache(maxsize=1)
def _omnuh2_per_ev() -> float:
    """CAMB's Omega_nu h^2 per eV of summed mass for camb_theory's neutrino set-up."""
    import camb  # a required dependency; imported on first use only (~0.3 s)

    pars = camb.CAMBparams()
    pars.set_cosmology(H0=67.0, ombh2=0.022, omch2=0.12, mnu=0.06, nnu=N_EFF, num_massive_neutrinos=1,
                       neutrino_hierarchy="degenerate", TCMB=T_CMB, omk=0.0)
    return float(pars.omnuh2) / 0.06


def omnuh2(mnu: float) -> float:
    """Omega_nu h^2 of a summed neutrino mass ``mnu`` [eV] as CAMB computes it (camb_theory's set-up)."""
    return float(mnu) * _omnuh2_per_ev()


def _f(params: Mapping[str, Any], name: str) -> float:
    try:
        return float(params[name])
    except (TypeError, ValueError):
        raise TheorySetupError(f"parameter {name}: expected a number, got {params[name]!r}") from None


def ee2_to_planck(params: Mapping[str, Any]) -> dict[str, float]:
    """Planck-style names (ombh2, omch2, H0, logA, ns, mnu) from EE2-style ones
    (Omega_m, Omega_b, h, A_s, n_s, m_nu [eV, default 0.06])."""
    missing = [n for n in EE2_NAMES[:5] if n not in params]
    if missing:
        raise TheorySetupError(f"ee2_to_planck: missing {', '.join(missing)}; need {', '.join(EE2_NAMES)}")
    h = _f(params, "h")
    mnu = _f(params, "m_nu") if "m_nu" in params else _MNU_DEFAULT
    ombh2 = _f(params, "Omega_b") * h * h
    return {"ombh2": ombh2, "omch2": _f(params, "Omega_m") * h * h - ombh2 - omnuh2(mnu), "H0": 100.0 * h,
            "logA": math.log(1e10 * _f(params, "A_s")), "ns": _f(params, "n_s"), "mnu": mnu}


def _h0(params: Mapping[str, Any]) -> float | None:
    if "H0" in params:
        return _f(params, "H0")
    if "h" in params:
        return 100.0 * _f(params, "h")
    return None


def require_h0(params: Mapping[str, Any], who: str) -> float:
    """H0 [km/s/Mpc] from H0 or h; a clear error when only an acoustic angle is given."""
    h0 = _h0(params)
    if h0 is None:
        theta = [n for n in THETA_NAMES if n in params]
        if theta:
            raise TheorySetupError(f"{who}: {theta[0]} is given, and H0 follows from it only with CAMB or the "
                                   f"observables emulator; use sample.theory.provider camb (or emulator), or "
                                   f"sample H0 / h instead")
        raise TheorySetupError(f"{who}: needs H0 or h")
    return h0


def planck_to_ee2(params: Mapping[str, Any]) -> dict[str, float]:
    """EE2-style names from Planck-style ones (ombh2, omch2, H0 or h, logA or As, ns, mnu)."""
    missing = [n for n in ("ombh2", "omch2", "ns") if n not in params]
    if not ("logA" in params or "As" in params):
        missing.append("logA (or As)")
    if missing:
        raise TheorySetupError(f"planck_to_ee2: missing {', '.join(missing)}")
    h = require_h0(params, "planck_to_ee2") / 100.0
    mnu = _f(params, "mnu") if "mnu" in params else _MNU_DEFAULT
    a_s = _f(params, "As") if "As" in params else 1e-10 * math.exp(_f(params, "logA"))
    ombh2 = _f(params, "ombh2")
    return {"Omega_m": (ombh2 + _f(params, "omch2") + omnuh2(mnu)) / (h * h), "Omega_b": ombh2 / (h * h), "h": h,
            "A_s": a_s, "n_s": _f(params, "ns"), "m_nu": mnu}


def _has_ee2(params) -> bool:
    return all(n in params for n in EE2_NAMES[:5])


def _has_planck(params) -> bool:
    return (all(n in params for n in ("ombh2", "omch2", "ns")) and ("logA" in params or "As" in params)
            and _h0(params) is not None)


def complete(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the names of the other vocabulary added where they follow without
    CAMB; given names are never overwritten, and nothing is added from an incomplete set."""
    out = dict(params)
    if _has_ee2(out) and not any(n in out for n in ("ombh2", "omch2")):
        new = ee2_to_planck(out)
        if any(n in out for n in ("As",)):
            new.pop("logA")
        if any(n in out for n in THETA_NAMES):   # camb_theory takes one expansion parameter
            new.pop("H0")
        out.update({k: v for k, v in new.items() if k not in out})
    elif _has_planck(out) and not any(n in out for n in ("Omega_m", "Omega_b")):
        out.update({k: v for k, v in planck_to_ee2(out).items() if k not in out})
    return out
