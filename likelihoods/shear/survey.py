"""Source sample of a cosmic-shear survey: tomographic n(z), galaxy density, shape noise.

The default is the LSST DESC Science Requirements Document (SRD, arXiv:1809.01669)
Year-1 source sample:

* parent distribution n(z) proportional to z^2 exp[-(z/z0)^alpha], z0 = 0.13, alpha = 0.78;
* 5 tomographic bins holding equal numbers of galaxies, with edges at the
  quantiles of the parent n(z) (in redshift);
* a galaxy at true redshift z has a Gaussian photometric redshift of width
  sigma_z (1 + z), sigma_z = 0.05, and belongs to bin i when its photo-z falls
  between edges i and i + 1, so the true-z distribution of bin i is
  n(z) [Phi((z_{i+1} - z)/s) - Phi((z_i - z)/s)], s = sigma_z (1 + z);
* n_eff = 10 arcmin^-2 in total, split equally, sigma_e = 0.26 per component,
  12 300 deg^2.

A user can give the n(z) of each bin instead, as a text file with a redshift
column followed by one column per bin (the layout of CosmoLike's ``.nz``
files, e.g. ``lsst_y1/source_LSSTY1.nz`` of the shared data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import erf

from cosmopipe.likelihoods.base import LikelihoodError

__all__ = ["Survey", "srd_parent_nz", "equal_number_edges", "photoz_bins", "lsst_y1_survey", "read_nz_file",
           "survey_from_nz_file", "bin_pairs", "ARCMIN2_PER_SR", "DEG2_FULL_SKY"]

ARCMIN2_PER_SR = (180.0 * 60.0 / np.pi) ** 2
DEG2_FULL_SKY = 4.0 * np.pi * (180.0 / np.pi) ** 2


def bin_pairs(nbins: int) -> list[tuple[int, int]]:
    """Tomographic pairs (i, j), i <= j, in data-vector order: (0,0), (0,1), ... (0,n-1), (1,1), ..."""
    return [(i, j) for i in range(nbins) for j in range(i, nbins)]


@dataclass(frozen=True)
class Survey:
    """Tomographic source sample.

    z          (nz,) redshift grid, increasing, >= 0
    nz         (nbins, nz) true-redshift distribution of each bin, each normalised
               to unit integral over z (trapezoid rule on ``z``) [per unit redshift]
    n_eff      (nbins,) effective galaxy density of each bin [arcmin^-2]
    sigma_e    shape-noise dispersion per ellipticity component
    area_deg2  survey area [deg^2]
    origin     where the n(z) came from (provenance text)
    """

    z: np.ndarray
    nz: np.ndarray
    n_eff: np.ndarray
    sigma_e: float
    area_deg2: float
    origin: str = "srd"
    edges: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        z = np.asarray(self.z, dtype=float)
        nz = np.atleast_2d(np.asarray(self.nz, dtype=float))
        n_eff = np.atleast_1d(np.asarray(self.n_eff, dtype=float))
        _check_nz(z, nz, where="Survey")
        if n_eff.shape != (nz.shape[0],):
            raise LikelihoodError(f"Survey.n_eff: need one density per bin ({nz.shape[0]}), got shape {n_eff.shape}")
        if not np.all(np.isfinite(n_eff)) or np.any(n_eff <= 0):
            raise LikelihoodError(f"Survey.n_eff: densities must be positive [arcmin^-2], got {n_eff.tolist()}")
        if not (np.isfinite(self.sigma_e) and 0 < self.sigma_e < 1):
            raise LikelihoodError(f"Survey.sigma_e: must lie in (0, 1), got {self.sigma_e!r}")
        if not (np.isfinite(self.area_deg2) and 0 < self.area_deg2 <= DEG2_FULL_SKY):
            raise LikelihoodError(f"Survey.area_deg2: must lie in (0, {DEG2_FULL_SKY:.0f}] deg^2, got {self.area_deg2!r}")
        norm = np.trapezoid(nz, z, axis=1)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "nz", nz / norm[:, None])
        object.__setattr__(self, "n_eff", n_eff)
        object.__setattr__(self, "sigma_e", float(self.sigma_e))
        object.__setattr__(self, "area_deg2", float(self.area_deg2))

    @property
    def nbins(self) -> int:
        return self.nz.shape[0]

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return bin_pairs(self.nbins)

    @property
    def f_sky(self) -> float:
        return self.area_deg2 / DEG2_FULL_SKY

    @property
    def area_sr(self) -> float:
        """Survey area [sr]."""
        return self.area_deg2 * (np.pi / 180.0) ** 2

    @property
    def n_eff_sr(self) -> np.ndarray:
        """Galaxy densities [sr^-1]."""
        return self.n_eff * ARCMIN2_PER_SR

    def noise_power(self) -> np.ndarray:
        """Shape-noise power sigma_e^2 / n_i of each bin (E and B modes alike) [sr]."""
        return self.sigma_e**2 / self.n_eff_sr

    def mean_z(self) -> np.ndarray:
        return np.trapezoid(self.nz * self.z, self.z, axis=1)

    def describe(self) -> dict:
        """Settings for provenance records."""
        out = {"origin": self.origin, "nbins": self.nbins, "n_eff_arcmin2": self.n_eff.tolist(),
               "sigma_e": self.sigma_e, "area_deg2": self.area_deg2, "z_max": float(self.z[-1])}
        if self.edges is not None:
            out["edges"] = np.asarray(self.edges).tolist()
        return out


# -- the SRD analytic sample ----------------------------------------------------
def srd_parent_nz(z, z0: float = 0.13, alpha: float = 0.78) -> np.ndarray:
    """Unnormalised SRD parent distribution z^2 exp[-(z/z0)^alpha] (z >= 0)."""
    z = np.asarray(z, dtype=float)
    return z**2 * np.exp(-((z / z0) ** alpha))


def equal_number_edges(z: np.ndarray, n: np.ndarray, nbins: int) -> np.ndarray:
    """Redshift edges splitting the distribution n(z) into ``nbins`` bins of equal
    number (quantiles of its trapezoid cumulative); edges[0] = z[0], edges[-1] = z[-1]."""
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (n[1:] + n[:-1]) * np.diff(z))])
    cum /= cum[-1]
    inner = np.interp(np.arange(1, nbins) / nbins, cum, z)
    return np.concatenate([[z[0]], inner, [z[-1]]])


def photoz_bins(z: np.ndarray, parent: np.ndarray, edges: np.ndarray, sigma_z: float) -> np.ndarray:
    """True-z distributions (nbins, nz) of galaxies whose Gaussian photo-z, of width
    sigma_z (1 + z), falls between consecutive ``edges`` (not normalised)."""
    s = np.sqrt(2.0) * sigma_z * (1.0 + z)
    cdf = 0.5 * (1.0 + erf((np.asarray(edges)[:, None] - z[None, :]) / s[None, :]))
    return parent[None, :] * np.diff(cdf, axis=0)


def lsst_y1_survey(nbins: int = 5, z0: float = 0.13, alpha: float = 0.78, sigma_z: float = 0.05,
                   n_eff_total: float = 10.0, sigma_e: float = 0.26, area_deg2: float = 12300.0,
                   z_max: float = 4.0, nz_points: int = 2001) -> Survey:
    """The SRD Y1 source sample (module doc); densities in arcmin^-2, area in deg^2.

    The n(z) table spans [0, z_max] on ``nz_points`` points; the parent tail beyond
    z_max = 4 holds 1e-4 of the galaxies and is dropped."""
    checks = {"nbins": (nbins, 1, 20), "z0": (z0, 1e-3, 2.0), "alpha": (alpha, 0.1, 5.0),
              "sigma_z": (sigma_z, 0.0, 0.5), "z_max": (z_max, 0.5, 10.0), "nz_points": (nz_points, 100, 100000)}
    for name, (value, lo, hi) in checks.items():
        if not (np.isfinite(value) and lo <= value <= hi):
            raise LikelihoodError(f"LSST-Y1 survey: {name}={value!r} is outside the allowed range [{lo:g}, {hi:g}]")
    z = np.linspace(0.0, z_max, int(nz_points))
    parent = srd_parent_nz(z, z0, alpha)
    edges = equal_number_edges(z, parent, int(nbins))
    bins = photoz_bins(z, parent, edges, sigma_z) if sigma_z > 0 else _top_hats(z, parent, edges)
    return Survey(z=z, nz=bins, n_eff=np.full(int(nbins), n_eff_total / nbins), sigma_e=sigma_e,
                  area_deg2=area_deg2,
                  origin=f"LSST DESC SRD Y1: z0={z0:g}, alpha={alpha:g}, sigma_z={sigma_z:g}(1+z)", edges=edges)


def _top_hats(z, parent, edges):
    idx = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, len(edges) - 2)
    return np.stack([np.where(idx == i, parent, 0.0) for i in range(len(edges) - 1)])


# -- user n(z) files ------------------------------------------------------------
def _check_nz(z: np.ndarray, nz: np.ndarray, where: str) -> None:
    """Clear errors for unusable n(z) tables; ``where`` names the file or object."""
    if z.ndim != 1 or z.size < 3:
        raise LikelihoodError(f"{where}: need at least 3 redshift rows, got {z.size}")
    if nz.ndim != 2 or nz.shape[1] != z.size:
        raise LikelihoodError(f"{where}: n(z) must have shape (nbins, {z.size}), got {nz.shape}")
    if not np.all(np.isfinite(z)):
        raise LikelihoodError(f"{where}: redshift column has a non-finite value at row {int(np.argmin(np.isfinite(z))) + 1}")
    if z[0] < 0:
        raise LikelihoodError(f"{where}: redshifts must be >= 0, row 1 has z={z[0]:g}")
    step = np.diff(z)
    if np.any(step <= 0):
        row = int(np.argmax(step <= 0)) + 2
        raise LikelihoodError(f"{where}: redshift column must increase strictly; row {row} has z={z[row - 1]:g} "
                              f"after z={z[row - 2]:g}")
    for b in range(nz.shape[0]):
        col = nz[b]
        if not np.all(np.isfinite(col)):
            row = int(np.argmin(np.isfinite(col))) + 1
            raise LikelihoodError(f"{where}: bin {b + 1} has a non-finite n(z) at row {row} (z={z[row - 1]:g})")
        if np.any(col < 0):
            row = int(np.argmax(col < 0)) + 1
            raise LikelihoodError(f"{where}: bin {b + 1} has a negative n(z)={col[row - 1]:g} at row {row} "
                                  f"(z={z[row - 1]:g}); n(z) must be >= 0")
        if not np.trapezoid(col, z) > 0:
            raise LikelihoodError(f"{where}: bin {b + 1} has no galaxies (n(z) integrates to zero)")


NZ_ROWS = ("centres", "lower_edges")


def read_nz_file(path: str | Path, nbins: int | None = None, rows: str = "centres") -> tuple[np.ndarray, np.ndarray]:
    """Read a text n(z) file: whitespace-separated columns ``z n_1 ... n_nbins``,
    ``#`` comments allowed.  Returns z (nz,) and n (nbins, nz), unnormalised.

    ``rows``: 'centres' takes the z column as the redshift of each value;
    'lower_edges' reads each row as a histogram bin starting at z (CosmoLike's
    reading), so the values sit at the bin centres z + dz/2, dz the row spacing.

    Errors (LikelihoodError) name the file and the offending row, column or value:
    missing file, non-numeric entries, ragged rows, a wrong number of bins
    (when ``nbins`` is given), negative or non-finite n(z), non-increasing z."""
    path = Path(path)
    if rows not in NZ_ROWS:
        raise LikelihoodError(f"n(z) rows: must be one of {', '.join(NZ_ROWS)}, got {rows!r}")
    if not path.is_file():
        raise LikelihoodError(f"n(z) file {path}: not found")
    try:
        table = np.loadtxt(path, dtype=float, comments="#", ndmin=2)
    except ValueError as exc:
        raise LikelihoodError(f"n(z) file {path}: unreadable as a numeric table ({exc})") from None
    if table.shape[1] < 2:
        raise LikelihoodError(f"n(z) file {path}: need a redshift column and at least one bin column, "
                              f"got {table.shape[1]} column(s)")
    found = table.shape[1] - 1
    if nbins is not None and found != nbins:
        raise LikelihoodError(f"n(z) file {path}: expected {nbins} bin columns after the redshift column, found {found}")
    z, n = table[:, 0], np.ascontiguousarray(table[:, 1:].T)
    _check_nz(z, n, where=f"n(z) file {path}")
    if rows == "lower_edges":
        width = np.diff(z)
        z = z + 0.5 * np.append(width, width[-1])
    return z, n


def survey_from_nz_file(path: str | Path, n_eff_total: float = 10.0, sigma_e: float = 0.26,
                        area_deg2: float = 12300.0, nbins: int | None = None, rows: str = "centres") -> Survey:
    """A :class:`Survey` whose bins are the columns of an n(z) file (rows read as
    ``rows``, see :func:`read_nz_file`); the total density [arcmin^-2] is split
    equally between the bins."""
    z, n = read_nz_file(path, nbins, rows)
    origin = f"file {Path(path).name}" + (" (rows = lower bin edges)" if rows == "lower_edges" else "")
    return Survey(z=z, nz=n, n_eff=np.full(n.shape[0], n_eff_total / n.shape[0]), sigma_e=sigma_e,
                  area_deg2=area_deg2, origin=origin)
