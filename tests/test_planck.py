"""Planck 2018 likelihoods: plik-lite and low-ell TT on the reference test spectrum, plik-lite
and lensing at the Planck 2018 best fit against Cobaya, SRoll2 lowE against its published
tau, and error paths."""
import math
import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.likelihoods import data_registry as reg
from cosmopipe.likelihoods import planck, planck_lensing
from cosmopipe.likelihoods.base import LikelihoodError, TheoryResult


def _shared_data() -> Path | None:
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


DATA = _shared_data()
NEEDED = ("planck_2018_plik_lite", "planck_lite_py_test_spectrum", "planck_2018_lowl_tt_2bins",
          "planck_sroll2_lowE", "planck_2018_lensing")
pytestmark = pytest.mark.skipif(DATA is None or not all(reg.available(n, DATA) for n in NEEDED),
                                reason="Planck data not found: set COSMOPIPE_DATA or provide ../shared/data")

# Planck 2018 VI (arXiv:1807.06209) Table 1, best fit of TT,TE,EE+lowE+lensing; A_planck from
# the same fit.  These are also the inputs of Cobaya's plik-lite and lensing reference tests
# (cobaya tests/test_cosmo_planck_2018.py, params_lowTE_highTTTEEE_lite_lensingcmblikes).
PLANCK_2018 = dict(ombh2=0.022383, omch2=0.12011, H0=67.32, logA=3.0448, ns=0.96605, tau=0.0543)
A_PLANCK = 1.00044
# Cobaya's -2 ln L at that point with CAMB (same file): plik-lite TTTEEE 584.24, lensing
# (native, with linear correction) 8.86; CMB-marginalised lensing 7.51 at its own point.
COBAYA_PLIK_LITE, COBAYA_LENSING, COBAYA_LENSING_CMBMARGED = 584.24, 8.86, 7.51
LENSING_CMBMARGED_POINT = dict(ombh2=2.2219050e-02, omch2=1.1726920e-01, theta=1.1180650, tau=0.055,
                               logA=3.2528, ns=9.6135180e-01)


@contextmanager
def one_thread():
    """CAMB on one OpenMP thread (the test machines are shared), restored afterwards."""
    import camb

    saved = camb.config.ThreadNum
    camb.config.ThreadNum = 1
    try:
        yield
    finally:
        camb.config.ThreadNum = saved


def camb_cls(ombh2, omch2, logA, ns, tau, H0=None, theta=None, lmax=2508) -> TheoryResult:
    """Lensed C_ell [muK^2] and C_L^phiphi from CAMB with the settings of Cobaya's Planck
    2018 tests: one massive neutrino of 0.06 eV, N_eff 3.044, PArthENoPE BBN, RECFAST with
    the 'planck' approximation, HMcode-2016 lensing, lens_potential_accuracy 1, and 150
    multipoles of margin above lmax."""
    import camb

    pars = camb.set_params(H0=H0, cosmomc_theta=None if theta is None else theta / 100, ombh2=ombh2, omch2=omch2,
                           mnu=0.06, nnu=3.044, num_massive_neutrinos=1, tau=tau, As=1e-10 * math.exp(logA), ns=ns,
                           halofit_version="mead2016", lmax=lmax + 150, lens_potential_accuracy=1,
                           bbn_predictor="PArthENoPE_880.2_standard.dat")
    pars.Recomb.set_params(recfast_approx_model="planck")
    with one_thread():
        res = camb.get_results(pars)
    cl = res.get_lensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True)
    pp = res.get_lens_potential_cls(lmax=lmax, raw_cl=True)[:, 0]
    return TheoryResult(cls={"tt": cl[:, 0], "ee": cl[:, 1], "bb": cl[:, 2], "te": cl[:, 3], "pp": pp},
                        H0=res.hubble_parameter(0.0))


@pytest.fixture(scope="module")
def best_fit():
    return camb_cls(**PLANCK_2018)


@pytest.fixture(scope="module")
def test_spectrum():
    """planck-lite-py's shipped spectrum (D_ell, ell >= 2) as C_ell arrays from ell = 0."""
    d = np.loadtxt(reg.dataset_path("planck_lite_py_test_spectrum", DATA) / "Dl_planck2015fit.dat")
    ell = d[:, 0].astype(int)
    cls = {}
    for i, key in enumerate(("tt", "te", "ee")):
        c = np.zeros(ell.max() + 1)
        c[ell] = 2 * np.pi * d[:, i + 1] / (ell * (ell + 1))
        cls[key] = c
    return TheoryResult(cls=cls)


@pytest.fixture(scope="module")
def plik():
    return planck.plik_lite(DATA)


@pytest.fixture(scope="module")
def lowl():
    return planck.lowl_tt(DATA)


@pytest.fixture(scope="module")
def lowe():
    return planck.lowl_ee(DATA)


@pytest.fixture(scope="module")
def lensing():
    return planck_lensing.planck_lensing(DATA)


# -- reference values of the data README (planck-lite-py, A_planck = 1) -----------------------

def test_plik_lite_reference_loglike(plik, test_spectrum):
    # README: TTTEEE ln L = -291.33481235418026 (matched there to 1e-12). Measured: identical.
    assert plik.loglike(test_spectrum, {"A_planck": 1.0}) == pytest.approx(-291.33481235418026, abs=1e-9)


def test_plik_lite_tt_reference_loglike(test_spectrum):
    # README: TT only ln L = -101.58123068722583. Measured: -101.58123068722581.
    tt = planck.plik_lite(DATA, spectra="TT")
    assert tt.data.size == 215
    assert tt.loglike(test_spectrum, {"A_planck": 1.0}) == pytest.approx(-101.58123068722583, abs=1e-9)


def test_lowl_tt_reference_loglike(plik, lowl, test_spectrum):
    # README: plik-lite + two low-ell TT bins = -293.95586501795134 (TTTEEE), -104.20228335099686 (TT).
    par = {"A_planck": 1.0}
    tt = planck.plik_lite(DATA, spectra="TT")
    assert plik.loglike(test_spectrum, par) + lowl.loglike(test_spectrum, par) == pytest.approx(
        -293.95586501795134, abs=1e-9)
    assert tt.loglike(test_spectrum, par) + lowl.loglike(test_spectrum, par) == pytest.approx(
        -104.20228335099686, abs=1e-9)


def test_calibration_divides_the_model_by_a_planck_squared(plik, lowl, test_spectrum):
    a = 1.003
    scaled = TheoryResult(cls={k: v / a**2 for k, v in test_spectrum.cls.items()})
    for like in (plik, lowl):
        assert like.loglike(test_spectrum, {"A_planck": a}) == pytest.approx(
            like.loglike(scaled, {"A_planck": 1.0}), rel=1e-12)


def test_plik_lite_sub_blocks_are_consistent(test_spectrum):
    # TE and EE alone use the TE and EE blocks of the same covariance.
    te, ee = planck.plik_lite(DATA, spectra="TE"), planck.plik_lite(DATA, spectra="EE")
    assert te.data.size == ee.data.size == 199
    assert te.ell_eff[-1] == ee.ell_eff[-1] < 2000
    for like in (te, ee):
        assert -0.5 * like.data.size * 3 < like.loglike(test_spectrum, {"A_planck": 1.0}) < 0


# -- CAMB at the Planck 2018 best fit against Cobaya --------------------------------------------

def test_plik_lite_at_planck_best_fit_matches_cobaya(plik, best_fit):
    # Measured 584.239 (Cobaya 584.24).  The tolerance 0.05 covers CAMB-version drift:
    # switching RECFAST's 'planck' approximation off moves chi^2 by 0.17.
    assert plik.chi2(best_fit, {"A_planck": A_PLANCK}) == pytest.approx(COBAYA_PLIK_LITE, abs=0.05)


def test_lensing_at_planck_best_fit_matches_cobaya(lensing, best_fit):
    # Measured 8.866 (Cobaya 8.86, tolerance 0.11 in Cobaya's own test).
    assert lensing.chi2(best_fit, {"A_planck": A_PLANCK}) == pytest.approx(COBAYA_LENSING, abs=0.05)


def test_lensing_cmb_marginalised_matches_cobaya():
    # Cobaya's point for this variant fixes 100 theta_MC = 1.118 (lensing alone does not
    # constrain it).  Measured 7.509 (Cobaya 7.51).
    theory = camb_cls(**LENSING_CMBMARGED_POINT, lmax=2500)
    like = planck_lensing.planck_lensing(DATA, variant="cmb_marged")
    assert like.parameters() == {} and like.lmax == 2500
    assert like.chi2(theory, {}) == pytest.approx(COBAYA_LENSING_CMBMARGED, abs=0.05)


def test_lensing_linear_correction_is_small_near_the_fiducial(lensing, best_fit):
    # The correction S(model) - S(fiducial) vanishes at the fiducial model; at the Planck
    # best fit it is a small fraction of the band-power errors (measured < 0.2 sigma).
    plain = planck_lensing.planck_lensing(DATA, linear_correction=False)
    assert plain.parameters() == {} and plain.lmax == 400
    sigma = np.sqrt(np.diag(lensing.cov_cho @ lensing.cov_cho.T))
    shift = lensing.binned_model(best_fit, {"A_planck": A_PLANCK}) - plain.binned_model(best_fit, {})
    assert np.max(np.abs(shift) / sigma) < 0.3
    # The correction is linear in the spectra: doubling C^phiphi doubles its PP part.
    doubled = replace(best_fit, cls={**best_fit.cls, "pp": 2 * best_fit.cls["pp"]})
    ell = np.arange(2501.0)
    pp_part = lensing.correction["pp"] @ ((ell * (ell + 1)) ** 2 * best_fit.cls["pp"][:2501] / (2 * np.pi))
    expected = shift + plain.binned_model(best_fit, {}) + pp_part
    assert np.allclose(lensing.binned_model(doubled, {"A_planck": A_PLANCK})
                       - plain.binned_model(best_fit, {}), expected, rtol=1e-10)


def test_sroll2_reproduces_published_tau():
    # Pagano et al. 2020 (arXiv:1908.09856): tau = 0.0566 +0.0053 -0.0062 from SRoll2 low-ell
    # EE alone.  Scan tau at fixed A_s exp(-2 tau) (Planck 2018 best fit); C_ell^EE is splined
    # in tau through 5 CAMB runs (massless neutrinos for speed: irrelevant at ell < 30).
    # Measured: mean 0.0565, standard deviation 0.0059 (a direct 31-point scan gives the same).
    import camb
    from scipy.interpolate import CubicSpline

    lowe = planck.lowl_ee(DATA)
    amplitude = 1e-10 * math.exp(PLANCK_2018["logA"] - 2 * PLANCK_2018["tau"])
    nodes = np.array([0.02, 0.04, 0.06, 0.08, 0.10])
    spectra = []
    for tau in nodes:
        pars = camb.set_params(H0=67.32, ombh2=0.022383, omch2=0.12011, mnu=0.0, num_massive_neutrinos=0, tau=tau,
                               As=amplitude * math.exp(2 * tau), ns=0.96605, lmax=40)
        pars.DoLensing = False
        with one_thread():
            res = camb.get_results(pars)
        spectra.append(res.get_unlensed_scalar_cls(lmax=29, CMB_unit="muK", raw_cl=True)[:, 1])
    spline = CubicSpline(nodes, np.array(spectra), axis=0)
    taus = np.linspace(0.025, 0.095, 701)
    lnl = np.array([lowe.loglike(TheoryResult(cls={"ee": spline(t)}), {"A_planck": 1.0}) for t in taus])
    weight = np.exp(lnl - lnl.max())
    mean = np.sum(taus * weight) / weight.sum()
    sd = np.sqrt(np.sum((taus - mean) ** 2 * weight) / weight.sum())
    assert abs(mean - 0.0566) < 0.15 * 0.0058
    assert sd == pytest.approx(0.00575, rel=0.15)


def test_sroll2_reads_the_table_at_floor_of_d_ell(lowe):
    table = np.loadtxt(reg.dataset_path("planck_sroll2_lowE", DATA) / "sroll2_prob_table.txt")
    ell = np.arange(30)
    rng = np.random.default_rng(3)
    d_ell = rng.uniform(0.0, 0.29, 30)
    ee = np.zeros(30)
    ee[2:] = 2 * np.pi * d_ell[2:] / (ell[2:] * (ell[2:] + 1))
    expected = sum(table[int(d_ell[l] / 1e-4), l - 2] for l in range(2, 30))
    assert lowe.loglike(TheoryResult(cls={"ee": ee}), {"A_planck": 1.0}) == pytest.approx(expected, rel=1e-12)
    assert lowe.chi2(TheoryResult(cls={"ee": ee}), {"A_planck": 1.0}) == pytest.approx(-2 * expected, rel=1e-12)
    # Beyond the table (D_ell >= 0.3 muK^2): excluded; negative power: an error.
    assert lowe.loglike(TheoryResult(cls={"ee": 10 * ee}), {"A_planck": 1.0}) == -np.inf
    with pytest.raises(LikelihoodError, match="negative at ell = 2"):
        lowe.loglike(TheoryResult(cls={"ee": -ee}), {"A_planck": 1.0})


# -- interfaces and errors ---------------------------------------------------------------------

def test_requirements_are_served_by_the_project_theory(plik, lowl, lowe, lensing):
    # The merged requirements of the four likelihoods go to likelihoods.camb_theory unchanged.
    # Its defaults differ from Cobaya's test settings (CAMB's default RECFAST model instead of
    # the 'planck' one: that switch alone moves plik-lite by 0.17 in camb_cls above), so the
    # plik-lite tolerance is 0.25; measured 584.35 and lensing 8.870.
    camb_theory = pytest.importorskip("cosmopipe.likelihoods.theory.camb_theory")
    likes = (plik, lowl, lowe, lensing)
    requirements = camb_theory.merge_requirements(*(like.requirements() for like in likes))
    theory = camb_theory.camb_theory({**PLANCK_2018, "mnu": 0.06}, requirements,
                                     camb_theory.CambSettings(halofit_version="mead2016", threads=1))
    par = {"A_planck": A_PLANCK}
    assert plik.chi2(theory, par) == pytest.approx(COBAYA_PLIK_LITE, abs=0.25)
    assert lensing.chi2(theory, par) == pytest.approx(COBAYA_LENSING, abs=0.05)
    assert np.isfinite(lowl.chi2(theory, par)) and np.isfinite(lowe.chi2(theory, par))


def test_requirements_and_parameters(plik, lowl, lowe, lensing):
    prior = {"A_planck": {"prior": "gaussian", "mean": 1.0, "sigma": 0.0025}}
    assert plik.requirements() == {"cls": {"lmax": 2508, "lensing": True, "spectra": ["tt", "te", "ee"]}}
    assert lowl.requirements()["cls"]["lmax"] == 29 and lowe.requirements()["cls"]["lmax"] == 29
    assert lensing.requirements() == {"cls": {"lmax": 2500, "lensing": True, "spectra": ["pp", "tt", "te", "ee"]}}
    for like in (plik, lowl, lowe, lensing):
        assert like.parameters() == prior


def test_bad_theory_and_parameters_are_clear_errors(plik, lensing, test_spectrum):
    with pytest.raises(LikelihoodError, match="no CMB spectra"):
        plik.loglike(TheoryResult(), {"A_planck": 1.0})
    short = TheoryResult(cls={k: v[:2001] for k, v in test_spectrum.cls.items()})
    with pytest.raises(LikelihoodError, match=r"cls\['tt'\] must hold ell = 0..2508"):
        plik.loglike(short, {"A_planck": 1.0})
    bad = TheoryResult(cls={**test_spectrum.cls, "te": np.where(np.arange(2509) == 700, np.nan, 1.0)})
    with pytest.raises(LikelihoodError, match="not finite.*ell = 700"):
        plik.loglike(bad, {"A_planck": 1.0})
    with pytest.raises(LikelihoodError, match="'A_planck' is missing"):
        plik.loglike(test_spectrum, {})
    with pytest.raises(LikelihoodError, match=r"A_planck must lie in \[0.9, 1.1\]"):
        plik.loglike(test_spectrum, {"A_planck": 1.5})
    with pytest.raises(LikelihoodError, match="no 'pp' spectrum"):
        lensing.loglike(test_spectrum, {"A_planck": 1.0})
    with pytest.raises(LikelihoodError, match="spectra must be one of TTTEEE"):
        planck.plik_lite(DATA, spectra="TTEE")
    with pytest.raises(LikelihoodError, match="variant must be 'native' or 'cmb_marged'"):
        planck_lensing.planck_lensing(DATA, variant="marged")


def test_corrupt_covariance_is_caught(tmp_path):
    for f in reg.DATASETS["planck_2018_plik_lite"].files:
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).symlink_to(DATA / f.path)
    matrix = tmp_path / "cmb" / "planck2018_plik_lite" / "c_matrix_plik_v22.dat"
    matrix.unlink()
    matrix.write_bytes((DATA / "cmb" / "planck2018_plik_lite" / "c_matrix_plik_v22.dat").read_bytes()[:-8])
    with pytest.raises(reg.ChecksumError, match="c_matrix_plik_v22.dat"):
        planck.plik_lite(tmp_path)
    with pytest.raises(LikelihoodError, match="one Fortran record of 613x613"):
        planck.plik_lite(tmp_path, verify=False)


def test_factories_from_yaml_sections():
    from cosmopipe.likelihoods.base import likelihood_factory
    from cosmopipe.schema import ConfigError, Section

    info = {"data_dir": str(DATA)}
    made = {name: likelihood_factory(name)(Section({}, f"likelihoods.{name}", "w.yaml"), info)
            for name in ("planck_2018_plik_lite", "planck_2018_lowl_tt", "planck_2018_lowl_ee_sroll2",
                         "planck_2018_lensing")}
    assert {name: like.name for name, like in made.items()} == {n: n for n in made}
    tt = likelihood_factory("planck_2018_plik_lite")(Section({"spectra": "TT"}, "l.plik", "w.yaml"), info)
    assert tt.spectra == "TT"
    marged = likelihood_factory("planck_2018_lensing")(Section({"variant": "cmb_marged"}, "l.lens", "w.yaml"), info)
    assert marged.variant == "cmb_marged"
    with pytest.raises(ConfigError, match=r"w\.yaml: l\.plik\.spectra: must be one of TTTEEE, TT, TE, EE"):
        likelihood_factory("planck_2018_plik_lite")(Section({"spectra": "TE EE"}, "l.plik", "w.yaml"), info)
    with pytest.raises(ConfigError, match=r"l\.lens\.lmax: unknown key"):
        likelihood_factory("planck_2018_lensing")(Section({"lmax": 400}, "l.lens", "w.yaml"), info)
