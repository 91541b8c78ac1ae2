"""Type Ia supernova likelihoods: Pantheon (Scolnic et al. 2018, arXiv:1710.00845) and
Pantheon+ (Brout et al. 2022, arXiv:2202.04077).

The data are standardised peak magnitudes m_i at CMB-frame (Hubble-diagram) redshift
z_i and heliocentric redshift zhel_i.  The model is
    m_i = mu(z_i, zhel_i) + M,    mu = 5 log10[(1 + zhel) D_M(z) / 10 pc],
with D_M the comoving transverse distance (Mpc) and M the absolute magnitude, which is
degenerate with H0.  M is marginalised analytically over a flat prior: with residuals
r = m - mu, A = r^T C^-1 r, B = 1^T C^-1 r, E = 1^T C^-1 1,
    -2 ln L = A - B^2 / E      (+ ln(E / 2 pi), a constant that is dropped),
which equals the chi^2 at the best-fitting M.

Samples:
* Pantheon ``binned`` (default): the official 40-bin compression with its full
  systematic covariance; C = sys + diag(dmb^2).
* Pantheon ``full``: the 1048 SNe.  Their systematic covariance (data set
  ``sn_pantheon_sys``) is not in the reference collection; with ``systematics: true``
  (the default) it is required, with ``systematics: false`` only diag(dmb^2) is used and
  the constraints are too tight (a warning says so).
* Pantheon+: 1701 light curves, of which those with zHD > 0.01 are used (peculiar
  velocities dominate below).  The release's STAT+SYS covariance (data set
  ``sn_pantheon_plus_cov``) is used when present; without it the diagonal errors
  m_b_corr_err_DIAG are used, which the release marks as unfit for cosmology (they omit
  all correlations, e.g. calibration systematics) -- a warning says so.
"""
from __future__ import annotations

import gzip
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cosmopipe.schema import boolean, choice, nonnegative_number

from . import data_registry
from .bao import comoving_transverse_distance
from .base import LikelihoodError, TheoryResult

__all__ = ["SNLikelihood", "distance_modulus", "pantheon", "pantheon_plus",
           "pantheon_from_config", "pantheon_plus_from_config"]


def distance_modulus(theory: TheoryResult, z, zhel, who: str = "sn") -> np.ndarray:
    """mu = 5 log10(D_L / Mpc) + 25 with D_L = (1 + zhel) D_M(z) [mag]."""
    z = np.asarray(z, dtype=float)
    d_l = (1.0 + np.asarray(zhel, dtype=float)) * comoving_transverse_distance(theory, z, who)
    return 5.0 * np.log10(d_l) + 25.0


@dataclass(frozen=True, eq=False)
class SNLikelihood:
    """Supernova magnitudes with the absolute magnitude marginalised.

    z, zhel   Hubble-diagram and heliocentric redshifts
    mag       standardised apparent magnitudes [mag]
    inv_cov   inverse covariance [mag^-2], (n, n); or None with ``inv_var`` (n,) when diagonal
    """

    name: str
    z: np.ndarray
    zhel: np.ndarray
    mag: np.ndarray
    inv_cov: np.ndarray | None
    inv_var: np.ndarray | None
    covariance: str

    def requirements(self) -> dict:
        return {"distances": True}

    def parameters(self) -> dict:
        return {}

    def _apply(self, v: np.ndarray) -> np.ndarray:
        return self.inv_var * v if self.inv_cov is None else self.inv_cov @ v

    def residuals(self, theory: TheoryResult) -> np.ndarray:
        """m - mu(z) [mag] (the absolute magnitude is not subtracted)."""
        return self.mag - distance_modulus(theory, self.z, self.zhel, self.name)

    def best_absolute_magnitude(self, theory: TheoryResult) -> float:
        """The M that maximises the likelihood (depends on H0) [mag]."""
        r = self.residuals(theory)
        w = self._apply(np.ones_like(r))
        return float(w @ r / w.sum())

    def chi2(self, theory: TheoryResult) -> float:
        r = self.residuals(theory)
        w = self._apply(np.ones_like(r))
        # chi^2 is unchanged by r -> r - const; removing the best M first avoids the
        # cancellation between two ~1e7 terms.
        r = r - (w @ r) / w.sum()
        return float(r @ self._apply(r) - (w @ r) ** 2 / w.sum())

    def loglike(self, theory: TheoryResult, params: Mapping[str, float] | None = None) -> float:
        return -0.5 * self.chi2(theory)


def _read_square_matrix(path, n: int, who: str) -> np.ndarray:
    """Covariance stored as 'N' then N*N values (row-major), as text, optionally gzipped."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        try:
            values = np.array(fh.read().split(), dtype=float)
        except ValueError as exc:
            raise LikelihoodError(f"{who}: {str(path)!r} is not a list of numbers: {exc}") from None
    if values.size == 0 or values[0] != n or values.size != 1 + n * n:
        raise LikelihoodError(f"{who}: {str(path)!r} must hold N = {n} then {n}x{n} values, "
                              f"got N = {values[0] if values.size else 'nothing'} and {values.size - 1} values")
    return values[1:].reshape(n, n)


def _read_lcparam(path, who: str) -> dict[str, np.ndarray]:
    """Columns zcmb, zhel, mb, dmb of a Pantheon lcparam file."""
    with open(path) as fh:
        header = fh.readline().lstrip("#").split()
    try:
        cols = [header.index(c) for c in ("zcmb", "zhel", "mb", "dmb")]
    except ValueError:
        raise LikelihoodError(f"{who}: {str(path)!r} lacks a header with zcmb zhel mb dmb") from None
    table = np.loadtxt(path, usecols=cols, ndmin=2)
    return dict(zip(("zcmb", "zhel", "mb", "dmb"), table.T))


def pantheon(data_dir=None, sample: str = "binned", systematics: bool = True, verify: bool = True) -> SNLikelihood:
    """Pantheon: ``sample`` 'binned' (40 bins) or 'full' (1048 SNe); ``systematics`` adds
    the systematic covariance."""
    if sample == "binned":
        folder = data_registry.dataset_path("sn_pantheon_binned", data_dir, verify)
        data = _read_lcparam(folder / "lcparam_DS17f.txt", "pantheon")
        sys_path = folder / "sys_DS17f.txt"
    elif sample == "full":
        folder = data_registry.dataset_path("sn_pantheon", data_dir, verify)
        data = _read_lcparam(folder / "lcparam_full_long_zhel.txt", "pantheon")
        sys_path = data_registry.dataset_file("sn_pantheon_sys", "sys_full_long.txt", data_dir, verify) \
            if systematics else None
    else:
        raise LikelihoodError(f"pantheon: sample must be 'binned' or 'full', got {sample!r}")
    n = data["mb"].size
    if systematics:
        cov = _read_square_matrix(sys_path, n, "pantheon") + np.diag(data["dmb"] ** 2)
        inv_cov, inv_var = np.linalg.inv(cov), None
    else:
        if sample == "full":
            warnings.warn("pantheon: statistical errors only -- without the systematic covariance "
                          "(data set sn_pantheon_sys) the constraints are too tight", stacklevel=2)
        inv_cov, inv_var = None, 1.0 / data["dmb"] ** 2
    return SNLikelihood(name="pantheon", z=data["zcmb"], zhel=data["zhel"], mag=data["mb"], inv_cov=inv_cov,
                        inv_var=inv_var, covariance="stat+sys" if systematics else "stat")


def pantheon_plus(data_dir=None, zmin: float = 0.01, covariance: str = "auto", verify: bool = True) -> SNLikelihood:
    """Pantheon+ with zHD > ``zmin``; ``covariance`` 'auto' (full if its file is present,
    else diagonal with a warning), 'full' (required) or 'diagonal'."""
    if covariance not in ("auto", "full", "diagonal"):
        raise LikelihoodError(f"pantheon_plus: covariance must be auto, full or diagonal, got {covariance!r}")
    if not 0.0 <= zmin < 1.0:
        raise LikelihoodError(f"pantheon_plus: zmin must lie in [0, 1), got {zmin!r}")
    folder = data_registry.dataset_path("sn_pantheon_plus", data_dir, verify)
    path = folder / "Pantheon+SH0ES.dat"
    with open(path) as fh:
        header = fh.readline().split()
    names = ("zHD", "zHEL", "m_b_corr", "m_b_corr_err_DIAG")
    try:
        cols = [header.index(c) for c in names]
    except ValueError:
        raise LikelihoodError(f"pantheon_plus: {str(path)!r} lacks columns {names}") from None
    z, zhel, mag, err = np.loadtxt(path, skiprows=1, usecols=cols, unpack=True)
    keep = z > zmin
    if covariance == "auto":
        covariance = "full" if data_registry.available("sn_pantheon_plus_cov", data_dir) else "diagonal"
    if covariance == "full":
        cov_path = data_registry.dataset_file("sn_pantheon_plus_cov", "Pantheon+SH0ES_STAT+SYS.cov", data_dir, verify)
        cov = _read_square_matrix(cov_path, z.size, "pantheon_plus")[np.ix_(keep, keep)]
        inv_cov, inv_var = np.linalg.inv(cov), None
    else:
        warnings.warn("pantheon_plus: using diagonal errors (m_b_corr_err_DIAG) without the STAT+SYS covariance; "
                      "the release says these are not for cosmology fits -- add data set sn_pantheon_plus_cov "
                      "(see likelihoods.data_registry) for the real likelihood", stacklevel=2)
        inv_cov, inv_var = None, 1.0 / err[keep] ** 2
    return SNLikelihood(name="pantheon_plus", z=z[keep], zhel=zhel[keep], mag=mag[keep], inv_cov=inv_cov,
                        inv_var=inv_var, covariance=covariance)


def pantheon_from_config(section, info) -> SNLikelihood:
    """YAML keys: ``sample`` (binned | full, default binned), ``systematics`` (default true),
    ``verify_checksums``."""
    sample = section.take("sample", choice("binned", "full"), default="binned")
    systematics = section.take("systematics", boolean, default=True)
    verify = section.take("verify_checksums", boolean, default=True)
    section.finish()
    return pantheon(info.get("data_dir"), sample=sample, systematics=systematics, verify=verify)


def pantheon_plus_from_config(section, info) -> SNLikelihood:
    """YAML keys: ``zmin`` (default 0.01), ``covariance`` (auto | full | diagonal, default
    auto), ``verify_checksums``."""
    zmin = section.take("zmin", nonnegative_number, default=0.01)
    covariance = section.take("covariance", choice("auto", "full", "diagonal"), default="auto")
    verify = section.take("verify_checksums", boolean, default=True)
    section.finish()
    try:
        return pantheon_plus(info.get("data_dir"), zmin=zmin, covariance=covariance, verify=verify)
    except data_registry.DataError:
        raise
    except LikelihoodError as exc:
        raise section.error("zmin", str(exc)) from None
