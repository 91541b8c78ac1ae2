"""Planck 2018 CMB likelihoods: plik-lite TT/TE/EE, the two-bin low-ell TT compression,
the SRoll2 low-ell EE table and (in :mod:`cosmopipe.likelihoods.planck_lensing`) the lensing bandpowers.

All of them read the public files of the data registry (:mod:`cosmopipe.likelihoods.data_registry`)
and take the lensed theory spectra of a :class:`~likelihoods.base.TheoryResult`:
``cls['tt'|'te'|'ee']`` = C_ell in muK^2 for ell = 0..lmax (not D_ell).

Calibration: every Planck likelihood here compares ``C_ell / A_planck^2`` with the data
(Planck 2018 V, arXiv:1907.12875: the map-level calibration A_planck scales all spectra;
its prior is Gaussian 1 +- 0.0025).  Each likelihood declares A_planck; a sampler
combining several must apply that prior once.

plik-lite (Planck 2018 V; Prince & Dunkley 2019, arXiv:1909.05869): the
foreground-marginalised CMB band powers C_b = sum_{ell in b} w_ell C_ell (215 TT bins,
ell 30-2508; 199 TE and 199 EE bins, ell 30-1996) with a 613x613 Gaussian covariance,
ln L = -chi^2/2.

Low-ell TT: Prince & Dunkley's compression of the Commander likelihood into two
independent Gaussian bins of C_ell, ell = 2-15 and 16-29, with weights proportional to
ell(ell+1).

SRoll2 low-ell EE (Pagano et al. 2020, arXiv:1908.09856): a table of ln L per multipole
ell = 2..29 on a grid of D_ell^EE = i * 1e-4 muK^2 (i = 0..2999); ln L = sum over ell of the
entry at row floor(D_ell / (A_planck^2 1e-4)).  Spectra beyond the table (D_ell >= 0.3
muK^2, 7.5 times the largest D_ell^EE, 0.040 muK^2 at ell = 3, of the Planck 2018 best fit)
give ln L = -inf.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cosmopipe.schema import boolean, choice

from . import data_registry
from .base import LikelihoodError, TheoryResult

__all__ = [
    "A_PLANCK_PRIOR", "PlikLite", "LowlTT", "LowlEE", "plik_lite", "lowl_tt", "lowl_ee",
    "plik_lite_from_config", "lowl_tt_from_config", "lowl_ee_from_config",
    "theory_cls", "calibration", "read_fortran_matrix",
]

A_PLANCK_PRIOR = {"A_planck": {"prior": "gaussian", "mean": 1.0, "sigma": 0.0025}}

PLIK_LMIN, PLIK_LMAX = 30, 2508
PLIK_NBINS = {"tt": 215, "te": 199, "ee": 199}
PLIK_SPECTRA = {"TTTEEE": ("tt", "te", "ee"), "TT": ("tt",), "TE": ("te",), "EE": ("ee",)}


# -- shared checks ----------------------------------------------------------------------

def theory_cls(theory: TheoryResult, keys, lmax: int, who: str) -> dict[str, np.ndarray]:
    """theory.cls[key][:lmax + 1] for each key, or a LikelihoodError that says what is missing."""
    cls = getattr(theory, "cls", None)
    if cls is None:
        raise LikelihoodError(f"{who}: the theory has no CMB spectra (TheoryResult.cls is None); "
                              f"request {{'cls': {{'lmax': {lmax}}}}}")
    out = {}
    for key in keys:
        if key not in cls or cls[key] is None:
            raise LikelihoodError(f"{who}: TheoryResult.cls has no {key!r} spectrum (has: {', '.join(sorted(cls))})")
        c = np.asarray(cls[key], dtype=float)
        if c.ndim != 1 or c.size < lmax + 1:
            raise LikelihoodError(f"{who}: TheoryResult.cls[{key!r}] must hold ell = 0..{lmax} at least "
                                  f"(a 1-d array of length >= {lmax + 1}), got shape {c.shape}")
        c = c[: lmax + 1]
        if not np.all(np.isfinite(c[2:])):
            raise LikelihoodError(f"{who}: TheoryResult.cls[{key!r}] is not finite "
                                  f"(first bad ell = {int(np.argmin(np.isfinite(c[2:]))) + 2})")
        out[key] = c
    return out


def calibration(params: Mapping[str, float], who: str) -> float:
    """A_planck from ``params``: required, finite, within [0.9, 1.1] (40 sigma of its prior)."""
    if "A_planck" not in params:
        raise LikelihoodError(f"{who}: parameter 'A_planck' is missing (Planck calibration, prior 1 +- 0.0025)")
    a = params["A_planck"]
    try:
        a = float(a)
    except (TypeError, ValueError):
        raise LikelihoodError(f"{who}: A_planck must be a number, got {a!r}") from None
    if not np.isfinite(a) or not 0.9 <= a <= 1.1:
        raise LikelihoodError(f"{who}: A_planck must lie in [0.9, 1.1], got {a!r}")
    return a


def _read(path, ndmin: int = 1) -> np.ndarray:
    """A whitespace-separated numeric table; unreadable content names the file."""
    try:
        return np.loadtxt(path, ndmin=ndmin)
    except ValueError as exc:
        raise LikelihoodError(f"cannot read {str(path)!r}: {exc}") from None


def read_fortran_matrix(path, n: int) -> np.ndarray:
    """An n x n float64 matrix from a Fortran unformatted sequential file holding one record
    (4-byte length markers); only the lower triangle is stored, so it is symmetrised."""
    raw = np.fromfile(path, dtype=np.uint8)
    nbytes = 8 * n * n
    if raw.size != nbytes + 8:
        raise LikelihoodError(f"{str(path)!r}: expected one Fortran record of {n}x{n} float64 "
                              f"({nbytes + 8} bytes), found {raw.size} bytes")
    head, tail = raw[:4].view("<i4")[0], raw[-4:].view("<i4")[0]
    if head != nbytes or tail != nbytes:
        raise LikelihoodError(f"{str(path)!r}: Fortran record markers {head}, {tail} != {nbytes}")
    m = raw[4:-4].view("<f8").reshape(n, n)
    # Read in C order, the stored triangle of the plik file is the lower one (the upper is
    # zero); accept the transposed layout too.
    if not np.any(np.tril(m, -1)):
        m = m.T
    return np.tril(m) + np.tril(m, -1).T


def _gaussian_chi2(residual: np.ndarray, cho) -> float:
    from scipy.linalg import solve_triangular

    x = solve_triangular(cho, residual, lower=True, check_finite=False)
    return float(x @ x)


def _binning_matrix(lo: np.ndarray, hi: np.ndarray, weights_from: np.ndarray, w_lmin: int, lmax: int):
    """Sparse (nbins, lmax + 1) matrix with row b = weights over ell in [lo_b, hi_b];
    ``weights_from[ell - w_lmin]`` is the weight of multipole ell.  Sparse because a
    dense product costs 20x more (and threads badly on a busy machine)."""
    from scipy.sparse import csr_matrix

    rows, cols = [], []
    for b, (a, z) in enumerate(zip(lo, hi)):
        ell = np.arange(a, z + 1)
        rows.append(np.full(ell.size, b))
        cols.append(ell)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return csr_matrix((weights_from[cols - w_lmin], (rows, cols)), shape=(lo.size, lmax + 1))


# -- plik-lite ------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PlikLite:
    """Planck 2018 plik-lite v22 (binned, foreground-marginalised high-ell TT/TE/EE).

    spectra   'TTTEEE', 'TT', 'TE' or 'EE'
    data      binned C_b [muK^2] of the selected spectra, TT then TE then EE
    binning   {key: sparse (nbins, 2509) matrix}: C_b = binning @ C_ell [muK^2]
    cov_cho   lower Cholesky factor of the band-power covariance [muK^2]
    ell_eff   effective multipole of each band
    """

    spectra: str
    data: np.ndarray
    binning: dict
    cov_cho: np.ndarray
    ell_eff: np.ndarray
    name: str = "planck_2018_plik_lite"
    lmax: int = PLIK_LMAX

    def requirements(self) -> dict:
        return {"cls": {"lmax": self.lmax, "lensing": True, "spectra": list(self.binning)}}

    def parameters(self) -> dict:
        return {k: dict(v) for k, v in A_PLANCK_PRIOR.items()}

    def binned_model(self, theory: TheoryResult, a_planck: float = 1.0) -> np.ndarray:
        """Model band powers C_b / A_planck^2 [muK^2], in the order of ``data``."""
        cls = theory_cls(theory, tuple(self.binning), self.lmax, self.name)
        model = np.concatenate([self.binning[k] @ cls[k] for k in self.binning])
        return model / a_planck**2

    def chi2(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        a = calibration(params, self.name)
        return _gaussian_chi2(self.binned_model(theory, a) - self.data, self.cov_cho)

    def loglike(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        return -0.5 * self.chi2(theory, params)


def plik_lite(data_dir=None, spectra: str = "TTTEEE", verify: bool = True) -> PlikLite:
    """Load plik-lite for ``spectra`` ('TTTEEE', 'TT', 'TE', 'EE') from the data directory."""
    from scipy.linalg import cholesky

    if spectra not in PLIK_SPECTRA:
        raise LikelihoodError(f"plik-lite: spectra must be one of {', '.join(PLIK_SPECTRA)}, got {spectra!r}")
    folder = data_registry.dataset_path("planck_2018_plik_lite", data_dir, verify)
    table = _read(folder / "cl_cmb_plik_v22.dat", ndmin=2)
    blmin = np.rint(_read(folder / "blmin.dat")).astype(int)
    blmax = np.rint(_read(folder / "blmax.dat")).astype(int)
    weights = _read(folder / "bweight.dat")
    ntot = sum(PLIK_NBINS.values())
    if table.shape != (ntot, 3):
        raise LikelihoodError(f"plik-lite: cl_cmb_plik_v22.dat must have {ntot} rows of 3 columns, got {table.shape}")
    nw = PLIK_LMAX - PLIK_LMIN + 1
    if weights.size < nw or blmin.size < PLIK_NBINS["tt"] or blmax.size != blmin.size:
        raise LikelihoodError("plik-lite: bweight.dat / blmin.dat / blmax.dat are shorter than the 2479 weights "
                              "and 215 bins the format requires")
    cov = read_fortran_matrix(folder / "c_matrix_plik_v22.dat", ntot)
    start = {"tt": 0, "te": PLIK_NBINS["tt"], "ee": PLIK_NBINS["tt"] + PLIK_NBINS["te"]}
    keys = PLIK_SPECTRA[spectra]
    index = np.concatenate([np.arange(start[k], start[k] + PLIK_NBINS[k]) for k in keys])
    binning = {}
    for k in keys:
        nb = PLIK_NBINS[k]
        # TE and EE use the first 199 of the TT bins (same edges, same weights).
        binning[k] = _binning_matrix(PLIK_LMIN + blmin[:nb], PLIK_LMIN + blmax[:nb], weights[:nw], PLIK_LMIN, PLIK_LMAX)
    cho = cholesky(cov[np.ix_(index, index)], lower=True)
    return PlikLite(spectra=spectra, data=table[index, 1].copy(), binning=binning, cov_cho=cho,
                    ell_eff=table[index, 0].copy())


# -- low-ell TT, two bins ------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LowlTT:
    """Two Gaussian bins of C_ell^TT (ell 2-15, 16-29) standing in for Commander.

    binning  sparse (2, 30) matrix: C_b = binning @ C_ell [muK^2]
    data, sigma  the binned C_b and its error [muK^2]
    """

    binning: np.ndarray
    data: np.ndarray
    sigma: np.ndarray
    ell_eff: np.ndarray
    name: str = "planck_2018_lowl_tt"
    lmax: int = 29

    def requirements(self) -> dict:
        return {"cls": {"lmax": self.lmax, "lensing": True, "spectra": ["tt"]}}

    def parameters(self) -> dict:
        return {k: dict(v) for k, v in A_PLANCK_PRIOR.items()}

    def chi2(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        a = calibration(params, self.name)
        tt = theory_cls(theory, ("tt",), self.lmax, self.name)["tt"]
        model = self.binning @ tt / a**2
        return float(np.sum(((model - self.data) / self.sigma) ** 2))

    def loglike(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        return -0.5 * self.chi2(theory, params)


def lowl_tt(data_dir=None, verify: bool = True) -> LowlTT:
    folder = data_registry.dataset_path("planck_2018_lowl_tt_2bins", data_dir, verify)
    table = _read(folder / "CTT_bin_low_ell_2018.dat", ndmin=2)
    lmin = int(_read(folder / "plmin_low_ell.dat").ravel()[0])
    lo = np.rint(_read(folder / "blmin_low_ell.dat")).astype(int).ravel() + lmin
    hi = np.rint(_read(folder / "blmax_low_ell.dat")).astype(int).ravel() + lmin
    weights = _read(folder / "bweight_low_ell.dat").ravel()
    if table.shape != (lo.size, 3) or hi.size != lo.size or weights.size != hi[-1] - lmin + 1:
        raise LikelihoodError(f"low-ell TT: inconsistent files in {str(folder)!r}: {table.shape[0]} bins in "
                              f"CTT_bin_low_ell_2018.dat, {lo.size} bin edges, {weights.size} weights")
    binning = _binning_matrix(lo, hi, weights, lmin, int(hi[-1]))
    return LowlTT(binning=binning, data=table[:, 1].copy(), sigma=table[:, 2].copy(), ell_eff=table[:, 0].copy(),
                  lmax=int(hi[-1]))


# -- SRoll2 low-ell EE ------------------------------------------------------------------

SROLL2_STEP = 1e-4   # muK^2, spacing of the D_ell^EE grid of the table


@dataclass(frozen=True, eq=False)
class LowlEE:
    """SRoll2 low-ell EE: ``table[i, ell - lmin]`` = ln L_ell at D_ell^EE = i * step [muK^2]."""

    table: np.ndarray
    lmin: int = 2
    step: float = SROLL2_STEP
    name: str = "planck_2018_lowl_ee_sroll2"

    @property
    def lmax(self) -> int:
        return self.lmin + self.table.shape[1] - 1

    def requirements(self) -> dict:
        return {"cls": {"lmax": self.lmax, "lensing": True, "spectra": ["ee"]}}

    def parameters(self) -> dict:
        return {k: dict(v) for k, v in A_PLANCK_PRIOR.items()}

    def loglike(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        a = calibration(params, self.name)
        ee = theory_cls(theory, ("ee",), self.lmax, self.name)["ee"]
        ell = np.arange(self.lmin, self.lmax + 1)
        d_ell = ell * (ell + 1) * ee[ell] / (2 * np.pi) / a**2
        if np.any(d_ell < 0):
            bad = int(ell[np.argmax(d_ell < 0)])
            raise LikelihoodError(f"{self.name}: C_ell^EE is negative at ell = {bad}")
        row = np.floor(d_ell / self.step).astype(np.int64)
        if np.any(row >= self.table.shape[0]):
            # Beyond the tabulated range (> 7x the measured power) the likelihood is negligible.
            return -np.inf
        return float(self.table[row, ell - self.lmin].sum())

    def chi2(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        """-2 ln L (the table is not normalised to zero at its maximum)."""
        return -2.0 * self.loglike(theory, params)


def lowl_ee(data_dir=None, verify: bool = True) -> LowlEE:
    folder = data_registry.dataset_path("planck_sroll2_lowE", data_dir, verify)
    path = folder / "sroll2_prob_table.txt"
    table = _read(path, ndmin=2)
    if table.ndim != 2 or table.shape[1] != 28 or not np.all(np.isfinite(table)):
        raise LikelihoodError(f"{str(path)!r}: expected a finite table with 28 columns (ell = 2..29), "
                              f"got shape {table.shape}")
    return LowlEE(table=table)


# -- workflow factories ------------------------------------------------------------------

def _verify_option(section) -> bool:
    return section.take("verify_checksums", boolean, default=True)


def plik_lite_from_config(section, info) -> PlikLite:
    """YAML keys: ``spectra`` (TTTEEE | TT | TE | EE, default TTTEEE), ``verify_checksums``."""
    spectra = section.take("spectra", choice(*PLIK_SPECTRA), default="TTTEEE")
    verify = _verify_option(section)
    section.finish()
    return plik_lite(info.get("data_dir"), spectra=spectra, verify=verify)


def lowl_tt_from_config(section, info) -> LowlTT:
    """YAML keys: ``verify_checksums``."""
    verify = _verify_option(section)
    section.finish()
    return lowl_tt(info.get("data_dir"), verify=verify)


def lowl_ee_from_config(section, info) -> LowlEE:
    """YAML keys: ``verify_checksums``."""
    verify = _verify_option(section)
    section.finish()
    return lowl_ee(info.get("data_dir"), verify=verify)
