"""Planck 2018 CMB lensing likelihood (Planck 2018 VIII, arXiv:1807.06210), conservative
multipole range 8 <= L <= 400 in 9 band powers of the lensing potential.

Band powers are of P_L = [L(L+1)]^2 C_L^{phi phi} / 2pi (dimensionless); the binned theory
is P_b = sum_L w_b(L) P_L with the released windows w_b, and ln L = -chi^2/2 with the
released 9x9 covariance (Gaussian).

Linear correction (described in the paper).  The reconstruction is normalised with a
fiducial CMB model, and its N1 bias depends on the lensing power itself.  To first order
the measured band powers respond to a change of model as
    Delta P_b = sum_l M_b^X(l) [S_l^X(model) - S_l^X(fiducial)],   X = TT, EE, TE, PP,
where S^X = l(l+1)C_l^X/2pi [muK^2] for the CMB and S^PP = P_L.  The files give M_b^X
(``*_lens_delta_window``) and sum_l M_b^X S^X(fiducial) (``*_lensing_fiducial_correction``),
so the model is ``P_b + sum_X M_b^X S^X(model) - fiducial_correction_b``.

Variants:
* ``native`` (default): the likelihood to combine with Planck CMB spectra.  The linear
  correction uses the model's TT, EE, TE (divided by A_planck^2: the reconstruction
  responds to the CMB power in the calibrated maps) and PP up to l = 2500.  With
  ``linear_correction: false`` the model is just P_b (the correction vanishes at the
  fiducial model; dropping it is only sensible close to it).
* ``cmb_marged``: for lensing without CMB spectra.  The CMB-spectrum dependence has been
  marginalised into the covariance; only the N1 (PP) term remains; no A_planck.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from cosmopipe.schema import boolean, choice

from . import data_registry
from .base import LikelihoodError, TheoryResult
from .planck import A_PLANCK_PRIOR, calibration, theory_cls

__all__ = ["PlanckLensing", "planck_lensing", "from_config", "PREFIX"]

PREFIX = "smicadx12_Dec5_ftl_mv2_ndclpp_p_teb_consext8"
NBINS = 9
LMAX = 2500
_CORRECTION_ORDER = {"native": ("tt", "ee", "te", "pp"), "cmb_marged": ("pp",)}


@dataclass(frozen=True, eq=False)
class PlanckLensing:
    """Planck 2018 lensing band powers.

    data          measured P_b (9,)
    windows       (9, lmax_pp + 1) binning of P_L
    cov_cho       lower Cholesky factor of the band-power covariance
    correction    {key: (9, LMAX + 1)} linear-correction responses M_b^X (empty: none)
    fiducial_correction  (9,) sum_l M_b^X S^X(fiducial), subtracted with the correction
    calibrated    whether A_planck rescales the CMB spectra of the correction
    """

    variant: str
    data: np.ndarray
    windows: np.ndarray
    cov_cho: np.ndarray
    correction: dict
    fiducial_correction: np.ndarray
    ell_range: tuple
    calibrated: bool
    name: str = "planck_2018_lensing"

    @property
    def lmax(self) -> int:
        return LMAX if self.correction else self.windows.shape[1] - 1

    def requirements(self) -> dict:
        spectra = ["pp"] + [k for k in ("tt", "te", "ee") if k in self.correction]
        return {"cls": {"lmax": self.lmax, "lensing": True, "spectra": spectra}}

    def parameters(self) -> dict:
        return {k: dict(v) for k, v in A_PLANCK_PRIOR.items()} if self.calibrated else {}

    def binned_model(self, theory: TheoryResult, params: Mapping[str, float]) -> np.ndarray:
        """Model band powers of [L(L+1)]^2 C_L^{phi phi}/2pi, linear correction included."""
        keys = set(self.correction) | {"pp"}
        cls = theory_cls(theory, sorted(keys), self.lmax, self.name)
        ell = np.arange(self.lmax + 1, dtype=float)
        scaled = {"pp": (ell * (ell + 1)) ** 2 * cls["pp"] / (2 * np.pi)}
        model = self.windows @ scaled["pp"][: self.windows.shape[1]]
        if not self.correction:
            return model
        cal = calibration(params, self.name) ** 2 if self.calibrated else 1.0
        for key in ("tt", "ee", "te"):
            if key in self.correction:
                scaled[key] = ell * (ell + 1) * cls[key] / (2 * np.pi) / cal
        for key, response in self.correction.items():
            model = model + response @ scaled[key]
        return model - self.fiducial_correction

    def chi2(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        from scipy.linalg import solve_triangular

        r = self.binned_model(theory, params) - self.data
        x = solve_triangular(self.cov_cho, r, lower=True, check_finite=False)
        return float(x @ x)

    def loglike(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        return -0.5 * self.chi2(theory, params)


def _rows(path, ncols: int) -> np.ndarray:
    try:
        table = np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise LikelihoodError(f"cannot read {str(path)!r}: {exc}") from None
    if table.shape[1] != ncols:
        raise LikelihoodError(f"{str(path)!r}: expected {ncols} columns, got {table.shape[1]}")
    return table


def _response(path, keys, lmax: int) -> dict:
    """Rows ``ell M^X1 M^X2 ...`` (any subset of ell) -> {X: (lmax + 1,) array}."""
    table = _rows(path, 1 + len(keys))
    ell = table[:, 0].astype(int)
    if ell.min() < 0 or ell.max() > lmax:
        raise LikelihoodError(f"{str(path)!r}: multipoles must lie in 0..{lmax}, got {ell.min()}..{ell.max()}")
    out = {}
    for i, key in enumerate(keys):
        row = np.zeros(lmax + 1)
        np.add.at(row, ell, table[:, i + 1])
        out[key] = row
    return out


def planck_lensing(data_dir=None, variant: str = "native", linear_correction: bool = True,
                   verify: bool = True) -> PlanckLensing:
    """Load the lensing likelihood (``variant`` 'native' or 'cmb_marged')."""
    from scipy.linalg import cholesky

    if variant not in _CORRECTION_ORDER:
        raise LikelihoodError(f"planck lensing: variant must be 'native' or 'cmb_marged', got {variant!r}")
    if variant == "cmb_marged" and not linear_correction:
        raise LikelihoodError("planck lensing: the cmb_marged variant always includes its (N1) linear correction; "
                              "linear_correction: false applies to the native variant only")
    folder = data_registry.dataset_path("planck_2018_lensing", data_dir, verify)
    tag = PREFIX + ("_CMBmarged" if variant == "cmb_marged" else "")
    bands = _rows(folder / f"{PREFIX}_bandpowers.dat", 7)
    if bands.shape[0] != NBINS:
        raise LikelihoodError(f"planck lensing: expected {NBINS} band powers, got {bands.shape[0]}")
    cov = np.loadtxt(folder / f"{tag}_cov.dat")
    if cov.shape != (NBINS, NBINS):
        raise LikelihoodError(f"planck lensing: covariance must be {NBINS}x{NBINS}, got {cov.shape}")
    tables = [_rows(folder / f"{PREFIX}_window" / f"window{b + 1}.dat", 2) for b in range(NBINS)]
    lmax_pp = max(int(t[:, 0].max()) for t in tables)
    windows = np.zeros((NBINS, lmax_pp + 1))
    for b, t in enumerate(tables):
        windows[b, t[:, 0].astype(int)] = t[:, 1]
    correction, fiducial = {}, np.zeros(NBINS)
    if linear_correction:
        keys = _CORRECTION_ORDER[variant]
        per_bin = [_response(folder / f"{tag}_lens_delta_window" / f"window{b + 1}.dat", keys, LMAX)
                   for b in range(NBINS)]
        correction = {k: np.array([p[k] for p in per_bin]) for k in keys}
        fiducial = _rows(folder / f"{tag}_lensing_fiducial_correction.dat", 2)[:, 1]
    return PlanckLensing(variant=variant, data=bands[:, 4].copy(), windows=windows,
                         cov_cho=cholesky(cov, lower=True), correction=correction, fiducial_correction=fiducial,
                         ell_range=(int(bands[0, 1]), int(bands[-1, 2])),
                         calibrated=variant == "native" and linear_correction)


def from_config(section, info) -> PlanckLensing:
    """YAML keys: ``variant`` (native | cmb_marged, default native), ``linear_correction``
    (default true; native only), ``verify_checksums``."""
    variant = section.take("variant", choice("native", "cmb_marged"), default="native")
    correction = section.take("linear_correction", boolean, default=True)
    verify = section.take("verify_checksums", boolean, default=True)
    section.finish()
    return planck_lensing(info.get("data_dir"), variant=variant, linear_correction=correction, verify=verify)
