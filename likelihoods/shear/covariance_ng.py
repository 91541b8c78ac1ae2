"""Non-Gaussian covariance of the bin-averaged shear correlations: super-sample
covariance (SSC) and the connected trispectrum term (cNG), from CCL's halo model.

Harmonic space (Limber, as computed by ``pyccl.covariances``; g the lensing plus
NLA kernels of the project's model, chi comoving distance, Omega_s = 4 pi f_sky
the survey area [sr], k = (l + 1/2)/chi)::

    Cov_cNG(C_l^ij, C_l'^kl) = 1/Omega_s int dchi/chi^6 g_i g_j g_k g_l  T_cNG(k, k'; z)
    Cov_SSC(C_l^ij, C_l'^kl) =           int dchi/chi^4 g_i g_j g_k g_l  sigma_B^2(z) R(k; z) R(k'; z)

T_cNG is the halo-model trispectrum of matter, 1h + 2h + 3h + 4h
(``halomod_Tk3D_cNG``; CosmoLike's LSST-Y1 covariance uses 1h + 2h + 4h),
R = dP/d delta_b the halo-model response to a background mode (Takada & Hu
2013; ``halomod_Tk3D_SSC``), sigma_B^2 the variance of the linear density
field in a disc of the survey's area (``sigma2_B_disc``).  Halo model: M_200m,
Tinker08 mass function, Tinker10 bias, Duffy08 concentration, NFW profiles.

Angular space: as the cosmic-variance part of the Gaussian term
(:mod:`cosmopipe.likelihoods.shear.covariance`), with the same bin-averaged
flat-sky kernels K_+ = <J_0>, K_- = <J_4>, but the C_l covariance is no longer
diagonal in l, so the transform is a double integral::

    Cov(xi_a(b), xi_c(d)) = int dl l/2pi int dl' l'/2pi  K_a(l; b) K_c(l'; d) Cov(C_l, C_l')

CCL evaluates Cov(C_l, C_l') on ``n_ell`` log-spaced multipoles; F = l^2 l'^2 Cov
is a tensor-product cubic spline in (ln l, ln l') through them, so the double
integral is exactly M_a F M_c^T with the matrices M of
:func:`cosmopipe.likelihoods.shear.hankel.xi_transform_matrices` (without their
spin-2 factor: CCL's lensing kernels already carry it).

Both terms are evaluated at one point (the fiducial), with its photo-z shifts,
shear biases and NLA amplitude; the linear power is CAMB's (through CCL),
with the neutrino convention of the model.  ``pyccl`` is needed only here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from cosmopipe.likelihoods.base import LikelihoodError

from .hankel import xi_transform_matrices

__all__ = ["TERMS", "NON_GAUSSIAN_TERMS", "NGSettings", "ccl_cosmology", "shear_tracers", "halo_model",
           "halo_model_trispectra", "harmonic_ng_covariance", "xi_covariance_from_harmonic", "non_gaussian_covariance"]

log = logging.getLogger("cosmopipe.shear")

TERMS = ("gaussian", "ssc", "cng")
NON_GAUSSIAN_TERMS = ("ssc", "cng")
# CCL's NLA amplitude is A_IA 5e-14 rho_crit Omega_m / D; ours C1 rho_crit (module limber)
_CCL_C1 = 5e-14


@dataclass(frozen=True)
class NGSettings:
    """Numerics of the non-Gaussian terms (all part of the cache key).

    ell_min, ell_max, n_ell  log-spaced multipoles where CCL evaluates Cov(C_l, C_l');
                             beyond ell_max the terms are dropped (those beyond 1.1e4
                             change the xi+ variance at 2.8 arcmin by < 1e-3;
                             docs/lsst_y1_covariance.md for the convergence)
    k_min, k_max, n_k        log-spaced wavenumbers of the trispectrum tables [1/Mpc]
                             (CCL extrapolates linearly in ln T beyond)
    z_max, n_a               the tables' redshifts: n_a scale factors uniform in a from
                             1/(1 + z_max) to 1
    halo_model               names of the halo-model ingredients (fixed; recorded)
    """

    ell_min: float = 2.0
    ell_max: float = 3.0e4
    n_ell: int = 40
    k_min: float = 1.0e-4
    k_max: float = 1.0e2
    n_k: int = 40
    z_max: float = 4.0
    n_a: int = 12
    halo_model: str = "M200m, Tinker08 mass function, Tinker10 bias, Duffy08 concentration, NFW"

    def __post_init__(self):
        if not (1.0 <= self.ell_min < self.ell_max <= 1e6) or self.n_ell < 8:
            raise ValueError(f"non-Gaussian covariance: need 1 <= ell_min < ell_max <= 1e6 and n_ell >= 8, got "
                             f"ell_min={self.ell_min!r}, ell_max={self.ell_max!r}, n_ell={self.n_ell!r}")
        if not (0 < self.k_min < self.k_max) or self.n_k < 8 or self.n_a < 4 or not self.z_max > 0:
            raise ValueError("non-Gaussian covariance: need 0 < k_min < k_max, n_k >= 8, n_a >= 4, z_max > 0")

    @property
    def ell(self) -> np.ndarray:
        return np.geomspace(self.ell_min, self.ell_max, int(self.n_ell))

    def to_dict(self) -> dict:
        return asdict(self)


def _pyccl():
    try:
        import pyccl
    except ImportError:
        raise LikelihoodError("covariance terms ssc and cng need pyccl (pip install pyccl); "
                              "use covariance: {terms: [gaussian]} without it") from None
    return pyccl


@lru_cache(maxsize=2)
def ccl_cosmology(cosmo, neutrinos: str = "three_degenerate"):
    """pyccl.Cosmology of a :class:`cosmopipe.sims.cosmology.Cosmology` with CAMB's linear
    power; ``neutrinos`` the model's convention (one_massive: a single massive eigenstate).
    Memoised: CCL keeps the CAMB run (seconds) inside the object."""
    ccl = _pyccl()
    return ccl.Cosmology(Omega_c=cosmo.Omega_c, Omega_b=cosmo.Omega_b, h=cosmo.h, n_s=cosmo.n_s, A_s=cosmo.A_s,
                         w0=cosmo.w0, wa=cosmo.wa, m_nu=cosmo.m_nu,
                         mass_split="single" if neutrinos == "one_massive" else "equal",
                         Neff=3.044, T_CMB=2.7255, transfer_function="boltzmann_camb",
                         matter_power_spectrum="linear")


def shear_tracers(cc, model, nuis) -> list:
    """CCL weak-lensing tracers of the model's bins: the shifted n(z) and the NLA amplitude
    of ``nuis`` (the same kernels g_i = q_i + I_i as the model's C_l, tests/test_shear_ccl.py)."""
    ccl = _pyccl()
    z = model.z_fine
    nz = model.shifted_nz(nuis.dz)
    ia = None
    if nuis.A_IA != 0.0:
        amp = nuis.A_IA * ((1.0 + z) / 1.62) ** nuis.eta_IA * model.conventions.c1_rho_crit \
            / (_CCL_C1 * ccl.physical_constants.RHO_CRITICAL)
        ia = (z, amp)
    return [ccl.WeakLensingTracer(cc, dndz=(z, nz[i]), ia_bias=ia) for i in range(model.nbins)]


def halo_model():
    """(HMCalculator, matter profile) of the module doc's halo model."""
    ccl = _pyccl()
    mdef = ccl.halos.MassDef200m
    hmc = ccl.halos.HMCalculator(mass_function=ccl.halos.MassFuncTinker08(mass_def=mdef),
                                 halo_bias=ccl.halos.HaloBiasTinker10(mass_def=mdef), mass_def=mdef)
    profile = ccl.halos.HaloProfileNFW(mass_def=mdef, concentration=ccl.halos.ConcentrationDuffy08(mass_def=mdef),
                                       fourier_analytic=True)
    return hmc, profile


def _tables(settings: NGSettings) -> tuple[np.ndarray, np.ndarray]:
    a = np.linspace(1.0 / (1.0 + settings.z_max), 1.0, int(settings.n_a))
    lk = np.linspace(np.log(settings.k_min), np.log(settings.k_max), int(settings.n_k))
    return a, lk


@lru_cache(maxsize=4)
def halo_model_trispectra(cosmo, neutrinos: str, terms: tuple[str, ...], settings: NGSettings) -> dict:
    """{term: pyccl Tk3D} of the matter trispectrum terms (cng: 1h + 2h + 3h + 4h; ssc: the
    response product), tabulated on the settings' (a, k) grid [k in 1/Mpc].  Memoised: the
    2h and 3h terms cost most of the non-Gaussian covariance (seconds to a minute)."""
    ccl = _pyccl()
    cc = ccl_cosmology(cosmo, neutrinos)
    hmc, profile = halo_model()
    a, lk = _tables(settings)
    t0 = time.perf_counter()
    out = {}
    if "cng" in terms:
        out["cng"] = ccl.halos.halomod_Tk3D_cNG(cc, hmc, profile, a_arr=a, lk_arr=lk, use_log=True)
    if "ssc" in terms:
        out["ssc"] = ccl.halos.halomod_Tk3D_SSC(cc, hmc, profile, a_arr=a, lk_arr=lk, use_log=True)
    log.info("halo-model trispectra (%s) in %.1f s", ", ".join(out), time.perf_counter() - t0)
    return out


def _survey_fsky(model, f_sky: float | None) -> float:
    return float(model.survey.f_sky if f_sky is None else f_sky)


def harmonic_ng_covariance(model, params: Mapping[str, float], terms: Sequence[str] = NON_GAUSSIAN_TERMS,
                           settings: NGSettings | None = None, f_sky: float | None = None,
                           sigma2_B=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cov(C_l^{p}, C_l'^{q}) of each term in ``terms`` (ssc, cng) at ``params``.

    Returns (ell, {term: (npairs, npairs, n_ell, n_ell)}), p, q the model's bin pairs,
    shear bias included, dimensionless (C_l are).  ``f_sky`` overrides the survey's
    sky fraction (both terms); ``sigma2_B`` = (a, sigma_B^2(a)) overrides the disc."""
    ccl = _pyccl()
    settings = settings or NGSettings()
    unknown = [t for t in terms if t not in NON_GAUSSIAN_TERMS]
    if unknown:
        raise ValueError(f"non-Gaussian covariance: unknown term {unknown[0]!r}; allowed: {', '.join(NON_GAUSSIAN_TERMS)}")
    if model.z_fine[-1] > settings.z_max + 1e-9:
        raise ValueError(f"non-Gaussian covariance: the n(z) reaches z = {model.z_fine[-1]:g}, beyond the "
                         f"trispectrum tables' z_max = {settings.z_max:g}; raise non_gaussian.z_max")
    cosmo, nuis = model.split(params)
    fsky = _survey_fsky(model, f_sky)
    cc = ccl_cosmology(cosmo, model.conventions.neutrinos)
    tracers = shear_tracers(cc, model, nuis)
    tk = halo_model_trispectra(cosmo, model.conventions.neutrinos, tuple(t for t in TERMS if t in terms), settings)
    if "ssc" in terms:
        a = _tables(settings)[0]
        if sigma2_B is None:
            # sigma_B^2 rises steeply as the disc shrinks toward z = 0 (R = chi theta_disc), and CCL
            # splines it in a: 64 of the 96 points in a > 0.9 bring the low-l SSC within 1e-4 of a
            # 2048-point table (64 uniform points: 3 % off at l = 100)
            a_b = np.concatenate([np.linspace(a[0], 0.9, 32, endpoint=False), np.linspace(0.9, 1.0, 64)])
            sigma2_B = (a_b, ccl.sigma2_B_disc(cc, a_arr=a_b, fsky=fsky))
    ell = settings.ell
    pairs = model.pairs
    bias = model._bias(nuis)
    out = {}
    for term, t_of_kk_a in tk.items():
        t0 = time.perf_counter()
        cov = np.empty((len(pairs), len(pairs), ell.size, ell.size))
        for p, (i, j) in enumerate(pairs):
            for q in range(p, len(pairs)):
                k, l = pairs[q]
                args = dict(ell=ell, t_of_kk_a=t_of_kk_a, tracer3=tracers[k], tracer4=tracers[l],
                            integration_method="qag_quad")
                if term == "cng":
                    c = ccl.angular_cl_cov_cNG(cc, tracers[i], tracers[j], fsky=fsky, **args)
                else:
                    c = ccl.angular_cl_cov_SSC(cc, tracers[i], tracers[j], sigma2_B=sigma2_B, **args)
                # CCL returns [l2, l1]; ours is [l (pair p), l' (pair q)]
                cov[p, q] = c.T * bias[p] * bias[q]
                cov[q, p] = c * bias[p] * bias[q]
        out[term] = cov
        log.info("harmonic %s covariance (%d pair combinations x %d^2 multipoles) in %.1f s", term,
                 len(pairs) * (len(pairs) + 1) // 2, ell.size, time.perf_counter() - t0)
    return ell, out


def xi_covariance_from_harmonic(model, ell: np.ndarray, cov_ll: np.ndarray) -> np.ndarray:
    """Covariance (size x size) of the model's xi+- data vector from Cov(C_l^p, C_l'^q),
    (npairs, npairs, nl, nl) on the log-spaced multipoles ``ell`` (module doc)."""
    ell = np.asarray(ell, dtype=float)
    m_plus, m_minus = xi_transform_matrices(model.theta_edges, ell, spin2=False)
    M = np.stack([m_plus, m_minus])                                   # (2, ntheta, nl)
    F = cov_ll * (ell**2)[:, None] * (ell**2)[None, :]                # l^2 l'^2 Cov
    # cov[a, p, b, c, q, d] = M[a, b, m] F[p, q, m, n] M[c, d, n]
    half = np.einsum("abm,pqmn->apbqn", M, F, optimize=True)
    cov = np.einsum("apbqn,cdn->apbcqd", half, M, optimize=True)
    size = model.size
    out = cov.reshape(size, size)
    return 0.5 * (out + out.T)


def non_gaussian_covariance(model, params: Mapping[str, float], terms: Sequence[str] = NON_GAUSSIAN_TERMS,
                            settings: NGSettings | None = None, f_sky: float | None = None,
                            sigma2_B=None) -> dict[str, np.ndarray]:
    """xi+- covariance (size x size) of each non-Gaussian term in ``terms`` at ``params``
    (the arguments of :func:`harmonic_ng_covariance`)."""
    ell, harmonic = harmonic_ng_covariance(model, params, terms, settings, f_sky, sigma2_B)
    return {term: xi_covariance_from_harmonic(model, ell, cov) for term, cov in harmonic.items()}
