"""Baryon acoustic oscillation likelihoods: 6dFGS, SDSS DR7 MGS, BOSS DR12 consensus,
DESI DR1 and DR2.

Distances (Mpc) at redshift z from the theory:
    D_M(z) = (1+z) D_A(z)                 comoving transverse distance
    D_H(z) = c / H(z)                     Hubble distance
    D_V(z) = [z D_M^2 D_H]^(1/3)          isotropic BAO distance
and r_d, the sound horizon at the drag epoch.  The data sets:

* ``sixdf_2011`` -- 6dFGS, Beutler et al. 2011 (arXiv:1106.3366): r_s/D_V(0.106) =
  0.336 +- 0.015, Gaussian.  The paper quotes r_s on the Eisenstein & Hu (1998) fitting
  formula scale, about 2.7% above the r_d of a Boltzmann code; the model is therefore
  r_d * 1.027369826 / D_V (the ratio 153.9/149.8 of the two at the paper's fiducial
  cosmology, the convention of CosmoMC and Cobaya).
* ``sdss_dr7_mgs`` -- SDSS DR7 Main Galaxy Sample, Ross et al. 2015 (arXiv:1409.3242):
  the published non-Gaussian chi^2(alpha), tabulated at alpha = 0.8005 ... 1.1985 where
  alpha = (D_V/r_d) / (D_V/r_d)_fid at z = 0.15 with (D_V/r_d)_fid = 638.9518/148.69;
  interpolated with a cubic spline; alpha outside the table gives ln L = -inf.
* ``boss_dr12`` -- BOSS DR12 BAO-only consensus, Alam et al. 2017 (arXiv:1607.03155):
  D_M (r_d,fid/r_d) [Mpc] and H (r_d/r_d,fid) [km/s/Mpc] at z = 0.38, 0.51, 0.61 with
  r_d,fid = 147.78 Mpc and their 6x6 covariance.
* ``desi_dr1`` -- DESI 2024 (arXiv:2404.03002) 12 Gaussian points of D_V/r_d, D_M/r_d,
  D_H/r_d with their covariance.
* ``desi_dr2`` -- DESI DR2 (arXiv:2503.14738) 13 points, same form.

DESI and BOSS DR12 share part of their volume (LRGs at z ~ 0.5), so combining them
double-counts information (a warning says so); DR1 and DR2 cannot be combined.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cosmopipe.schema import boolean, choice, list_of

from . import data_registry
from .base import LikelihoodError, TheoryResult

__all__ = [
    "C_KM_S", "SIXDF_RS_RESCALE", "MGS_DV_OVER_RD_FID", "BAO_SETS", "DEFAULT_SETS",
    "comoving_transverse_distance", "hubble_distance", "volume_distance", "bao_observable",
    "GaussianBAO", "TabulatedBAO", "BAOLikelihood", "bao_likelihood", "from_config",
]

C_KM_S = 299792.458
SIXDF_RS_RESCALE = 153.9 / 149.8       # = 1.027369826, see the module docstring
MGS_DV_OVER_RD_FID = 638.9518 / 148.69  # (D_V / r_d) of the MGS fiducial cosmology
BOSS_DR12_RD_FID = 147.78               # Mpc

BAO_SETS = ("sixdf_2011", "sdss_dr7_mgs", "boss_dr12", "desi_dr1", "desi_dr2")
DEFAULT_SETS = ("sixdf_2011", "sdss_dr7_mgs", "boss_dr12")

OBSERVABLES = ("DV_over_rs", "DM_over_rs", "DH_over_rs", "rs_over_DV", "bao_Hz_rs")


# -- distances from the theory ------------------------------------------------------------

def _call(fn, z: np.ndarray, what: str, who: str) -> np.ndarray:
    if fn is None:
        raise LikelihoodError(f"{who}: the theory provides no {what}; request {{'distances': True}}")
    flat = np.atleast_1d(z).ravel()
    value = np.asarray(fn(flat), dtype=float)
    if value.shape != flat.shape:
        # A provider that only handles scalars.
        value = np.array([float(fn(float(x))) for x in flat])
    value = value.reshape(z.shape)
    if not np.all(np.isfinite(value)) or np.any(value <= 0):
        bad = z.ravel()[np.argmax(~np.isfinite(value.ravel()) | (value.ravel() <= 0))]
        raise LikelihoodError(f"{who}: the theory's {what} is not finite and positive at z = {bad:g}")
    return value


def comoving_transverse_distance(theory: TheoryResult, z, who: str = "likelihood") -> np.ndarray:
    """D_M(z) [Mpc]: (1+z) D_A when the theory gives D_A (exact with curvature), else the
    comoving distance (equal to D_M in a flat universe)."""
    z = np.asarray(z, dtype=float)
    if theory.angular_diameter_distance is not None:
        return (1.0 + z) * _call(theory.angular_diameter_distance, z, "angular_diameter_distance", who)
    return _call(theory.comoving_distance, z, "comoving_distance", who)


def hubble_distance(theory: TheoryResult, z, who: str = "likelihood") -> np.ndarray:
    """D_H(z) = c / H(z) [Mpc]."""
    z = np.asarray(z, dtype=float)
    return C_KM_S / _call(theory.hubble, z, "hubble (H(z))", who)


def volume_distance(theory: TheoryResult, z, who: str = "likelihood") -> np.ndarray:
    """D_V(z) = [z D_M^2 D_H]^(1/3) [Mpc]."""
    z = np.asarray(z, dtype=float)
    return np.cbrt(z * comoving_transverse_distance(theory, z, who) ** 2 * hubble_distance(theory, z, who))


def _rdrag(theory: TheoryResult, who: str) -> float:
    rd = theory.rdrag
    if rd is None or not np.isfinite(rd) or not 50.0 < rd < 300.0:
        raise LikelihoodError(f"{who}: the theory's rdrag must be the drag-epoch sound horizon in Mpc "
                              f"(50-300), got {rd!r}; request {{'rdrag': True}}")
    return float(rd)


def bao_observable(kind: str, z, theory: TheoryResult, rs_fid: float = 1.0, who: str = "bao") -> np.ndarray:
    """Model value of a BAO observable, in the units of the data files.

    DV_over_rs, DM_over_rs, DH_over_rs   D (r_fid / r_d)  [Mpc if rs_fid in Mpc; 1 for D/r_d]
    bao_Hz_rs                            H(z) r_d / r_fid [km/s/Mpc]
    rs_over_DV                           r_d / D_V (dimensionless)
    """
    z = np.asarray(z, dtype=float)
    rd = _rdrag(theory, who)
    if kind == "DV_over_rs":
        return volume_distance(theory, z, who) * rs_fid / rd
    if kind == "DM_over_rs":
        return comoving_transverse_distance(theory, z, who) * rs_fid / rd
    if kind == "DH_over_rs":
        return hubble_distance(theory, z, who) * rs_fid / rd
    if kind == "bao_Hz_rs":
        return C_KM_S / hubble_distance(theory, z, who) * rd / rs_fid
    if kind == "rs_over_DV":
        return rd / volume_distance(theory, z, who)
    raise LikelihoodError(f"{who}: unknown BAO observable {kind!r}; known: {', '.join(OBSERVABLES)}")


# -- the two kinds of data -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GaussianBAO:
    """Gaussian BAO measurements: values of ``kinds`` at ``z`` with covariance ``cov``.

    rs_fid    r_d,fid of the data file's scaling (Mpc; 1 for dimensionless D/r_d)
    rs_scale  factor applied to the theory r_d (6dF's Eisenstein-Hu rescaling; else 1)
    """

    name: str
    z: np.ndarray
    kinds: tuple
    values: np.ndarray
    inv_cov: np.ndarray
    rs_fid: float = 1.0
    rs_scale: float = 1.0

    def model(self, theory: TheoryResult) -> np.ndarray:
        if self.rs_scale != 1.0:
            theory = _scaled_rdrag(theory, self.rs_scale, self.name)
        out = np.empty(self.z.size)
        for kind in set(self.kinds):
            mask = np.array([k == kind for k in self.kinds])
            out[mask] = bao_observable(kind, self.z[mask], theory, self.rs_fid, self.name)
        return out

    def chi2(self, theory: TheoryResult) -> float:
        r = self.model(theory) - self.values
        return float(r @ self.inv_cov @ r)


@dataclass(frozen=True, eq=False)
class TabulatedBAO:
    """A measurement of alpha = (D_V/r_d) / dv_over_rd_fid given as chi^2 on a uniform grid."""

    name: str
    z: float
    dv_over_rd_fid: float
    alpha: np.ndarray
    chi2_table: np.ndarray

    def __post_init__(self):
        from scipy.interpolate import CubicSpline

        object.__setattr__(self, "_spline", CubicSpline(self.alpha, self.chi2_table))

    def alpha_of(self, theory: TheoryResult) -> float:
        return float(bao_observable("DV_over_rs", np.array([self.z]), theory, 1.0, self.name)[0]) / self.dv_over_rd_fid

    def chi2(self, theory: TheoryResult) -> float:
        a = self.alpha_of(theory)
        if not self.alpha[0] <= a <= self.alpha[-1]:
            return np.inf
        return float(self._spline(a))


def _scaled_rdrag(theory: TheoryResult, factor: float, who: str) -> TheoryResult:
    from dataclasses import replace

    return replace(theory, rdrag=_rdrag(theory, who) * factor)


# -- readers ----------------------------------------------------------------------------

def _read_table(path, who: str) -> list[list[str]]:
    rows = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    if not rows:
        raise LikelihoodError(f"{who}: {str(path)!r} holds no measurements")
    return rows


def _gaussian_from_files(name: str, mean_path, cov_path, rs_fid: float) -> GaussianBAO:
    rows = _read_table(mean_path, name)
    try:
        z = np.array([float(r[0]) for r in rows])
        values = np.array([float(r[1]) for r in rows])
    except (ValueError, IndexError):
        raise LikelihoodError(f"{name}: {str(mean_path)!r} must have rows 'z value observable'") from None
    kinds = tuple(r[2] for r in rows)
    unknown = set(kinds) - set(OBSERVABLES)
    if unknown:
        raise LikelihoodError(f"{name}: {str(mean_path)!r} has unknown observables {sorted(unknown)}")
    cov = np.loadtxt(cov_path, ndmin=2)
    if cov.shape != (z.size, z.size):
        raise LikelihoodError(f"{name}: covariance {str(cov_path)!r} is {cov.shape}, expected {z.size}x{z.size}")
    return GaussianBAO(name=name, z=z, kinds=kinds, values=values, inv_cov=np.linalg.inv(cov), rs_fid=rs_fid)


def _load_set(name: str, data_dir, verify: bool):
    if name == "sixdf_2011":
        folder = data_registry.dataset_path("bao_sixdf_2011", data_dir, verify)
        rows = _read_table(folder / "sixdf_2011_bao.txt", name)
        if len(rows) != 1 or len(rows[0]) != 4 or rows[0][3] != "rs_over_DV":
            raise LikelihoodError(f"{name}: sixdf_2011_bao.txt must hold one row 'z value sigma rs_over_DV'")
        z, value, sigma = map(float, rows[0][:3])
        return GaussianBAO(name=name, z=np.array([z]), kinds=("rs_over_DV",), values=np.array([value]),
                           inv_cov=np.array([[1.0 / sigma**2]]), rs_scale=SIXDF_RS_RESCALE)
    if name == "sdss_dr7_mgs":
        folder = data_registry.dataset_path("bao_sdss_mgs", data_dir, verify)
        chi2 = np.loadtxt(folder / "sdss_MGS_prob.txt")
        # Grid of the published table (Ross et al. 2015): alpha = 0.8005 + 0.001 i.
        alpha = 0.8005 + 0.001 * np.arange(chi2.size)
        if chi2.size != 399:
            raise LikelihoodError(f"{name}: sdss_MGS_prob.txt must hold 399 chi^2 values, got {chi2.size}")
        return TabulatedBAO(name=name, z=0.15, dv_over_rd_fid=MGS_DV_OVER_RD_FID, alpha=alpha, chi2_table=chi2)
    if name == "boss_dr12":
        folder = data_registry.dataset_path("bao_boss_dr12", data_dir, verify)
        return _gaussian_from_files(name, folder / "sdss_DR12Consensus_bao.dat",
                                    folder / "BAO_consensus_covtot_dM_Hz.txt", BOSS_DR12_RD_FID)
    if name == "desi_dr1":
        folder = data_registry.dataset_path("bao_desi_dr1", data_dir, verify)
        return _gaussian_from_files(name, folder / "desi_2024_gaussian_bao_ALL_GCcomb_mean.txt",
                                    folder / "desi_2024_gaussian_bao_ALL_GCcomb_cov.txt", 1.0)
    if name == "desi_dr2":
        folder = data_registry.dataset_path("bao_desi_dr2", data_dir, verify)
        return _gaussian_from_files(name, folder / "desi_gaussian_bao_ALL_GCcomb_mean.txt",
                                    folder / "desi_gaussian_bao_ALL_GCcomb_cov.txt", 1.0)
    raise LikelihoodError(f"bao: unknown data set {name!r}; choose from {', '.join(BAO_SETS)}")


# -- the likelihood --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class BAOLikelihood:
    """Sum of independent BAO data sets; ln L = -chi^2/2 (no normalisation constant)."""

    parts: tuple
    name: str = "bao"

    def requirements(self) -> dict:
        return {"distances": True, "rdrag": True}

    def parameters(self) -> dict:
        return {}

    def chi2_by_set(self, theory: TheoryResult) -> dict[str, float]:
        return {part.name: part.chi2(theory) for part in self.parts}

    def chi2(self, theory: TheoryResult) -> float:
        return float(sum(self.chi2_by_set(theory).values()))

    def loglike(self, theory: TheoryResult, params: Mapping[str, float] | None = None) -> float:
        return -0.5 * self.chi2(theory)


def bao_likelihood(sets=DEFAULT_SETS, data_dir=None, verify: bool = True) -> BAOLikelihood:
    """BAO likelihood for the named data ``sets`` (see BAO_SETS)."""
    sets = tuple(sets)
    if not sets:
        raise LikelihoodError(f"bao: choose at least one data set from {', '.join(BAO_SETS)}")
    unknown = [s for s in sets if s not in BAO_SETS]
    if unknown:
        raise LikelihoodError(f"bao: unknown data set(s) {unknown}; choose from {', '.join(BAO_SETS)}")
    if len(set(sets)) != len(sets):
        raise LikelihoodError(f"bao: data sets are repeated in {list(sets)}")
    if "desi_dr1" in sets and "desi_dr2" in sets:
        raise LikelihoodError("bao: desi_dr1 and desi_dr2 measure the same galaxies; use one of them")
    if "boss_dr12" in sets and any(s.startswith("desi") for s in sets):
        warnings.warn("bao: BOSS DR12 and DESI overlap in volume (LRGs at z ~ 0.4-0.6); their combination "
                      "double-counts part of the information", stacklevel=2)
    return BAOLikelihood(parts=tuple(_load_set(s, data_dir, verify) for s in sets))


def from_config(section, info) -> BAOLikelihood:
    """YAML keys: ``sets`` (list from sixdf_2011, sdss_dr7_mgs, boss_dr12, desi_dr1, desi_dr2;
    default the 6dF + MGS + BOSS DR12 combination), ``verify_checksums``."""
    sets = section.take("sets", list_of(choice(*BAO_SETS), unique=True), default=list(DEFAULT_SETS))
    verify = section.take("verify_checksums", boolean, default=True)
    section.finish()
    try:
        return bao_likelihood(sets, info.get("data_dir"), verify)
    except data_registry.DataError:
        raise
    except LikelihoodError as exc:
        raise section.error("sets", str(exc)) from None
