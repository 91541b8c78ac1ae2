"""Supernova likelihoods: published Pantheon fits, the analytic magnitude marginalisation,
an independent recomputation, and the Pantheon+ covariance paths."""
import gzip
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.likelihoods import data_registry as reg
from cosmopipe.likelihoods import sn
from cosmopipe.likelihoods.base import LikelihoodError, TheoryResult


def _shared_data() -> Path | None:
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


DATA = _shared_data()
pytestmark = pytest.mark.skipif(
    DATA is None or not all(reg.available(n, DATA) for n in ("sn_pantheon_binned", "sn_pantheon", "sn_pantheon_plus")),
    reason="SN data not found: set COSMOPIPE_DATA or provide ../shared/data")

C = 299792.458


def flat_lcdm(omega_m: float, h: float = 0.7) -> TheoryResult:
    """Comoving distance of flat LCDM (no radiation: below z = 2.3 it changes mu by < 1e-3 mag)."""
    from scipy.integrate import cumulative_trapezoid

    z = np.linspace(0.0, 2.5, 25001)
    chi = np.concatenate([[0.0], cumulative_trapezoid(C / (100 * h * np.sqrt(omega_m * (1 + z) ** 3 + 1 - omega_m)), z)])
    return TheoryResult(comoving_distance=lambda x: np.interp(x, z, chi))


def fit_omega_m(like) -> tuple[float, float]:
    """Best-fit Omega_m and its 1-sigma error from the curvature of chi^2."""
    from scipy.optimize import minimize_scalar

    fit = minimize_scalar(lambda om: like.chi2(flat_lcdm(om)), bounds=(0.1, 0.6), method="bounded",
                          options=dict(xatol=1e-6))
    om, d = fit.x, 2e-3
    curvature = (like.chi2(flat_lcdm(om + d)) - 2 * fit.fun + like.chi2(flat_lcdm(om - d))) / d**2
    return om, np.sqrt(2.0 / curvature)


@pytest.fixture(scope="module")
def planck_2018():
    """CAMB background at the Planck 2018 TT,TE,EE+lowE+lensing best fit (Planck 2018 VI, Table 1)."""
    import camb

    res = camb.get_background(camb.set_params(H0=67.32, ombh2=0.022383, omch2=0.12011, mnu=0.06, nnu=3.044,
                                              num_massive_neutrinos=1))
    return TheoryResult(H0=67.32, comoving_distance=res.comoving_radial_distance,
                        angular_diameter_distance=res.angular_diameter_distance)


@pytest.fixture(scope="module")
def binned():
    return sn.pantheon(DATA)


def test_binned_pantheon_reproduces_published_constraint(binned):
    # Scolnic et al. 2018 (arXiv:1710.00845), Pantheon SN-only flat LCDM with systematics:
    # Omega_m = 0.298 +- 0.022.  Measured: 0.2963 +- 0.0217.
    om, sigma = fit_omega_m(binned)
    assert abs(om - 0.298) < 0.25 * 0.022
    assert sigma == pytest.approx(0.022, rel=0.1)


def test_statistical_only_fits_agree_binned_and_unbinned():
    # The 40-bin compression preserves the information of the 1048 SNe: stat-only fits
    # agree (measured 0.2841 +- 0.0126 binned, 0.2850 +- 0.0125 unbinned), and both match
    # Scolnic et al. 2018's statistical-only Omega_m = 0.284 +- 0.012.
    with pytest.warns(UserWarning, match="statistical errors only"):
        full = sn.pantheon(DATA, sample="full", systematics=False)
    assert full.z.size == 1048
    om_full, s_full = fit_omega_m(full)
    om_bin, s_bin = fit_omega_m(sn.pantheon(DATA, systematics=False))
    assert abs(om_full - om_bin) < 0.15 * s_full
    assert s_bin == pytest.approx(s_full, rel=0.05)
    assert abs(om_full - 0.284) < 0.25 * 0.012 and s_full == pytest.approx(0.012, rel=0.1)


def test_marginalised_chi2_equals_minimum_over_absolute_magnitude(binned, planck_2018):
    # Analytic marginalisation = explicit minimisation of the chi^2 over M, recomputed here
    # from the raw files (sys + diag(dmb^2)); measured chi^2 = 40.10 for 40 bins.
    from scipy.optimize import minimize_scalar

    folder = DATA / "sn" / "pantheon" / "binned"
    table = np.loadtxt(folder / "lcparam_DS17f.txt", usecols=(1, 2, 4, 5))
    sys_values = np.loadtxt(folder / "sys_DS17f.txt")
    cov = sys_values[1:].reshape(40, 40) + np.diag(table[:, 3] ** 2)
    z, zhel, mb = table[:, 0], table[:, 1], table[:, 2]
    mu = 5 * np.log10((1 + zhel) * planck_2018.comoving_distance(z)) + 25

    def chi2_at(m_abs):
        r = mb - mu - m_abs
        return r @ np.linalg.solve(cov, r)

    best = minimize_scalar(chi2_at, bounds=(-20, -19), method="bounded", options=dict(xatol=1e-9))
    assert binned.chi2(planck_2018) == pytest.approx(best.fun, rel=1e-8)
    assert binned.best_absolute_magnitude(planck_2018) == pytest.approx(best.x, abs=1e-6)
    # H0 only shifts M: the chi^2 does not depend on it.
    scaled = TheoryResult(comoving_distance=lambda x: 1.1 * planck_2018.comoving_distance(x))
    assert binned.chi2(scaled) == pytest.approx(binned.chi2(planck_2018), rel=1e-10)


def test_distance_modulus_against_pyccl(planck_2018):
    # Same cosmology in pyccl (one 0.06 eV neutrino, N_eff = 3.044): independent distances.
    # Measured max |difference| = 2.7e-6 mag for z = 0.01 ... 2.
    import pyccl

    h = 0.6732
    ccl = pyccl.Cosmology(Omega_c=0.12011 / h**2, Omega_b=0.022383 / h**2, h=h, n_s=0.965, A_s=2.1e-9,
                          m_nu=0.06, mass_split="single", Neff=3.044)
    z = np.array([0.01, 0.1, 0.5, 1.0, 2.0])
    ours = sn.distance_modulus(planck_2018, z, z)
    theirs = pyccl.distance_modulus(ccl, 1 / (1 + z))
    assert np.max(np.abs(ours - theirs)) < 2e-5
    # D_L carries (1 + z_hel), D_M is evaluated at z: mu shifts by 5 log10((1+zhel)/(1+z)).
    shifted = sn.distance_modulus(planck_2018, z, z + 0.001)
    assert np.allclose(shifted - ours, 5 * np.log10((1.001 + z) / (1 + z)), atol=1e-12)


# -- Pantheon+ ------------------------------------------------------------------------------

def test_pantheon_plus_without_covariance_warns_and_cuts_low_z(planck_2018):
    # Brout et al. 2022 use the 1590 light curves with z_HD > 0.01 for cosmology.
    with pytest.warns(UserWarning, match="diagonal errors.*not for cosmology"):
        like = sn.pantheon_plus(DATA)
    assert like.covariance == "diagonal" and like.z.size == 1590 and like.z.min() > 0.01
    assert np.isfinite(like.chi2(planck_2018))
    with pytest.warns(UserWarning):
        assert sn.pantheon_plus(DATA, zmin=0.0).z.size == 1701


def _data_dir_with_cov(tmp_path, cov_text_rows):
    """A data directory with the shared Pantheon+ table and a user-made covariance (gzip)."""
    for f in reg.DATASETS["sn_pantheon_plus"].files:
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).symlink_to(DATA / f.path)
    target = tmp_path / "sn" / "pantheon_plus" / "Pantheon+SH0ES_STAT+SYS.cov.gz"
    with gzip.open(target, "wt") as fh:
        fh.write("".join(cov_text_rows))
    return tmp_path


def test_pantheon_plus_full_covariance_path(tmp_path, planck_2018):
    # A covariance file equal to diag(err^2), in the release's format (N, then N*N values),
    # must reproduce the diagonal likelihood.  Its content is not the release's, so the
    # registry's git-blob check rejects it unless verification is switched off.
    err = np.loadtxt(DATA / "sn" / "pantheon_plus" / "Pantheon+SH0ES.dat", skiprows=1, usecols=9)
    n = err.size
    rows = ["%d\n" % n] + ["0\n" * i + "%.17g\n" % (e * e) + "0\n" * (n - i - 1) for i, e in enumerate(err)]
    data_dir = _data_dir_with_cov(tmp_path, rows)
    with pytest.raises(reg.ChecksumError, match="git blob"):
        sn.pantheon_plus(data_dir, covariance="full")
    full = sn.pantheon_plus(data_dir, covariance="full", verify=False)
    with pytest.warns(UserWarning):
        diag = sn.pantheon_plus(data_dir, covariance="diagonal", verify=False)
    assert full.covariance == "full" and full.inv_cov.shape == (1590, 1590)
    assert full.chi2(planck_2018) == pytest.approx(diag.chi2(planck_2018), rel=1e-10)


def test_pantheon_plus_full_covariance_required_but_missing():
    with pytest.raises(reg.MissingDataError, match=r"Pantheon\+SH0ES_STAT\+SYS\.cov.*raw\.githubusercontent"):
        sn.pantheon_plus(DATA, covariance="full")


# -- errors and configuration ------------------------------------------------------------------

def test_full_pantheon_with_systematics_needs_the_missing_covariance():
    if reg.available("sn_pantheon_sys", DATA):
        pytest.skip("sys_full_long.txt is present in this data directory")
    with pytest.raises(reg.MissingDataError, match=r"sn_pantheon_sys.*sys_full_long\.txt.*dscolnic/Pantheon"):
        sn.pantheon(DATA, sample="full")


def test_bad_arguments_and_theory():
    with pytest.raises(LikelihoodError, match="sample must be 'binned' or 'full'"):
        sn.pantheon(DATA, sample="all")
    with pytest.raises(LikelihoodError, match=r"zmin must lie in \[0, 1\)"):
        sn.pantheon_plus(DATA, zmin=-0.1)
    like = sn.pantheon(DATA)
    with pytest.raises(LikelihoodError, match="no comoving_distance"):
        like.chi2(TheoryResult())
    with pytest.raises(LikelihoodError, match="not finite and positive"):
        like.chi2(TheoryResult(comoving_distance=lambda z: np.full_like(z, np.nan)))


def test_factories_from_yaml_sections():
    from cosmopipe.likelihoods.base import likelihood_factory
    from cosmopipe.schema import ConfigError, Section

    info = {"data_dir": str(DATA)}
    like = likelihood_factory("pantheon")(Section({}, "likelihoods.pantheon", "w.yaml"), info)
    assert like.z.size == 40 and like.covariance == "stat+sys"
    assert like.requirements() == {"distances": True} and like.parameters() == {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plus = likelihood_factory("pantheon_plus")(Section({"zmin": 0.02}, "likelihoods.pp", "w.yaml"), info)
    assert plus.z.min() > 0.02
    with pytest.raises(ConfigError, match=r"likelihoods\.pantheon\.sample: must be one of binned, full"):
        likelihood_factory("pantheon")(Section({"sample": "unbinned"}, "likelihoods.pantheon", "w.yaml"), info)
    with pytest.raises(ConfigError, match=r"likelihoods\.pp\.zmin: pantheon_plus: zmin must lie"):
        likelihood_factory("pantheon_plus")(Section({"zmin": 2.0}, "likelihoods.pp", "w.yaml"), info)
