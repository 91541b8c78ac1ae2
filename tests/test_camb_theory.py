"""camb_theory: LCDM against Planck 2018 published numbers, pyccl and CAMB called directly;
requirements, pickling and error paths.  EDE / w(z) bins are in test_ede.py."""
import math
import pickle

import numpy as np
import pytest

from cosmopipe.likelihoods.base import TheoryResult
from cosmopipe.likelihoods.theory.camb_theory import (
    PARAMS, CambSettings, TheoryError, TheorySetupError, camb_theory, merge_requirements, settings_from_section,
    theory_params,
)

# Planck 2018 VI (arXiv:1807.06209) Table 2, TT,TE,EE+lowE+lensing: means of the base
# parameters and of the derived ones (mean +- sigma).
PLANCK18_BASE = dict(ombh2=0.02237, omch2=0.1200, theta_MC_100=1.04092, tau=0.0544, logA=3.044, ns=0.9649)
PLANCK18_DERIVED = {
    "H0": (67.36, 0.54), "Omega_m": (0.3153, 0.0073), "age": (13.797, 0.023), "zstar": (1089.92, 0.25),
    "rstar": (144.43, 0.26), "theta_star": (1.04110, 0.00031), "zdrag": (1059.94, 0.30),
    "rdrag": (147.09, 0.26), "sigma8": (0.8111, 0.0060), "S8": (0.832, 0.013),
}
LCDM_H0 = dict(ombh2=0.02237, omch2=0.1200, H0=67.36, tau=0.0544, logA=3.044, ns=0.9649)


@pytest.fixture(scope="module")
def planck_point():
    return camb_theory(PLANCK18_BASE, {"distances": True, "rdrag": True, "sigma8": True})


def test_lcdm_derived_match_planck_2018(planck_point):
    # Derived at the mean parameters vs the means of the derived parameters: they differ
    # by the chains' non-linearity, measured here below 0.2 sigma; allow 0.3 sigma.
    for name, (mean, sigma) in PLANCK18_DERIVED.items():
        value = planck_point.derived[name]
        assert abs(value - mean) < 0.3 * sigma, f"{name}: {value} vs Planck {mean} +- {sigma}"
    assert planck_point.H0 == planck_point.derived["H0"]
    assert planck_point.rdrag == planck_point.derived["rdrag"]
    assert planck_point.S8 == pytest.approx(planck_point.sigma8 * math.sqrt(planck_point.derived["Omega_m"] / 0.3))
    # CAMB solved H0 from theta_MC: the input must come back.
    assert planck_point.derived["theta_MC_100"] == pytest.approx(1.04092, abs=2e-6)


def test_lcdm_distances_match_pyccl():
    """Independent code: CCL's background with the same neutrinos (one massive, 0.06 eV)."""
    pyccl = pytest.importorskip("pyccl")
    res = camb_theory(LCDM_H0, {"distances": {"zmax": 10}})
    h = LCDM_H0["H0"] / 100
    ccl = pyccl.Cosmology(Omega_c=LCDM_H0["omch2"] / h**2, Omega_b=LCDM_H0["ombh2"] / h**2, h=h,
                          n_s=0.9649, A_s=math.exp(3.044) * 1e-10, m_nu=0.06, mass_split="single",
                          Neff=3.044, T_CMB=2.7255)
    z = np.array([0.01, 0.1, 0.38, 0.51, 0.7, 1.0, 1.5, 2.33, 3.0, 5.0, 8.0])
    a = 1 / (1 + z)
    chi = pyccl.comoving_radial_distance(ccl, a)
    # Measured agreement 2e-6 (chi) and 7e-6 (H); CCL and CAMB differ in neutrino integrals.
    np.testing.assert_allclose(res.comoving_distance(z), chi, rtol=1e-5)
    np.testing.assert_allclose(res.hubble(z), pyccl.h_over_h0(ccl, a) * LCDM_H0["H0"], rtol=2e-5)
    np.testing.assert_allclose(res.angular_diameter_distance(z), chi / (1 + z), rtol=1e-5)
    np.testing.assert_allclose(res.luminosity_distance(z), chi * (1 + z), rtol=1e-5)


def test_lcdm_matches_camb_called_directly():
    import camb

    res = camb_theory(LCDM_H0, {"distances": True, "rdrag": True})
    pars = camb.set_params(H0=67.36, ombh2=0.02237, omch2=0.12, mnu=0.06, num_massive_neutrinos=1, tau=0.0544,
                           As=math.exp(3.044) * 1e-10, ns=0.9649)
    direct = camb.get_background(pars)
    z = np.linspace(0.0, 10.0, 137)  # off the spline nodes
    np.testing.assert_allclose(res.comoving_distance(z), direct.comoving_radial_distance(z), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(res.hubble(z), direct.hubble_parameter(z), rtol=1e-8)
    derived = direct.get_derived_params()
    # CAMB's thermal history depends on which outputs are switched on (5e-8) and on what the
    # process computed before (after any C_ell run: 1.1e-6, a CAMB global state).
    assert res.rdrag == pytest.approx(derived["rdrag"], rel=1e-5)
    assert res.theta_star == pytest.approx(derived["thetastar"], rel=1e-5)


def test_cls_units_and_layout_match_camb():
    import camb

    lmax = 600
    res = camb_theory(LCDM_H0, {"cls": {"lmax": lmax, "lens_potential_accuracy": 0}})
    pars = camb.set_params(H0=67.36, ombh2=0.02237, omch2=0.12, mnu=0.06, num_massive_neutrinos=1, tau=0.0544,
                           As=math.exp(3.044) * 1e-10, ns=0.9649)
    pars.set_for_lmax(lmax, lens_potential_accuracy=0, lens_output_margin=200)  # the same CAMB settings
    direct = camb.get_results(pars)
    cl = direct.get_lensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True)
    for key, col in (("tt", 0), ("ee", 1), ("bb", 2), ("te", 3)):
        assert res.cls[key].shape == (lmax + 1,)
        np.testing.assert_allclose(res.cls[key][2:], cl[2:, col], rtol=1e-6)
    assert np.all(res.cls["tt"][:2] == 0)
    pp = direct.get_lens_potential_cls(lmax=lmax, raw_cl=True)[:, 0]
    np.testing.assert_allclose(res.cls["pp"][2:], pp[2:], rtol=1e-6)
    # First acoustic peak of D_ell^TT near ell = 220 at about 5750 muK^2 (Planck 2018).
    ell = np.arange(lmax + 1)
    dl = ell * (ell + 1) * res.cls["tt"] / (2 * np.pi)
    assert 215 <= np.argmax(dl[100:400]) + 100 <= 225
    assert 5600 < dl.max() < 5900
    unlensed = camb_theory(LCDM_H0, {"cls": {"lmax": lmax, "lensing": False, "lens_potential_accuracy": 0}})
    pars.DoLensing = False
    pars.set_for_lmax(lmax + 200, lens_potential_accuracy=0)  # unlensed: the same 200 margin
    direct = camb.get_results(pars)
    np.testing.assert_allclose(unlensed.cls["tt"][2:],
                               direct.get_unlensed_scalar_cls(lmax=lmax, CMB_unit="muK", raw_cl=True)[2:, 0],
                               rtol=1e-6)
    assert np.all(unlensed.cls["bb"] == 0)


def test_matter_power_tables():
    import camb

    req = {"pk_lin": {"kmax": 5.0, "zmax": 2.0}, "pk_nl": {"kmax": 5.0, "z": [0.0, 0.5]}}
    res = camb_theory(LCDM_H0, req)
    pars = camb.set_params(H0=67.36, ombh2=0.02237, omch2=0.12, mnu=0.06, num_massive_neutrinos=1, tau=0.0544,
                           As=math.exp(3.044) * 1e-10, ns=0.9649)
    # camb_theory asks CAMB for 1.2 kmax (k sampling depends on kmax, so match it).
    pars.set_matter_power(redshifts=[0.0, 0.35, 1.3], kmax=1.2 * 5.0 * 0.6736)
    pars.WantCls = False  # CAMB's transfer k sampling also depends on this
    direct = camb.get_results(pars)
    kh, z, pk = direct.get_linear_matter_power_spectrum(hubble_units=True, k_hunit=True)
    sel = (kh > 1e-3) & (kh < 5.0)
    # 0.35 and 1.3 are between the 0.1-spaced table redshifts: bicubic interpolation error.
    np.testing.assert_allclose(res.pk_lin(kh[sel], z), pk[:, sel], rtol=2e-4)
    assert res.pk_nl(np.array([0.1, 1.0]), [0.0, 0.5]).shape == (2, 2)
    assert res.pk_nl(1.0, 0.0)[0, 0] > 1.2 * res.pk_lin(1.0, 0.0)[0, 0]  # non-linear boost at k = 1 h/Mpc
    np.testing.assert_allclose(res.pk_nl(0.005, 0.0), res.pk_lin(0.005, 0.0), rtol=2e-3)
    assert res.sigma8 == pytest.approx(direct.get_sigma8_0(), rel=2e-4)
    with pytest.raises(ValueError, match="k outside the tabulated range"):
        res.pk_lin(20.0, 0.0)
    with pytest.raises(ValueError, match="z outside the tabulated range"):
        res.pk_nl(0.1, 2.5)  # the tables hold the union of the requested redshifts, 0..2


def test_only_what_is_required():
    res = camb_theory(LCDM_H0, {"rdrag": True})
    assert res.cls is None and res.pk_lin is None and res.sigma8 is None and res.comoving_distance is None
    assert res.rdrag > 0 and res.theta_star > 0 and "age" in res.derived
    res = camb_theory(LCDM_H0, {})
    assert isinstance(res, TheoryResult) and res.H0 == pytest.approx(67.36)


def test_result_pickles():
    res = camb_theory(LCDM_H0, {"distances": True, "pk_lin": {"kmax": 1.0, "zmax": 1.0}})
    back = pickle.loads(pickle.dumps(res))
    np.testing.assert_array_equal(back.comoving_distance([0.5, 1.0]), res.comoving_distance([0.5, 1.0]))
    np.testing.assert_array_equal(back.pk_lin([0.1], [0.5]), res.pk_lin([0.1], [0.5]))


def test_as_and_logA_are_equivalent_and_defaults():
    a = camb_theory({**LCDM_H0}, {"sigma8": True})
    params = {k: v for k, v in LCDM_H0.items() if k not in ("logA", "tau")}
    b = camb_theory({**params, "As": math.exp(3.044) * 1e-10}, {"sigma8": True})
    assert a.sigma8 == pytest.approx(b.sigma8, rel=1e-9)
    assert b.derived["tau"] == 0.0544 and b.derived["mnu"] == 0.06


def test_error_paths():
    with pytest.raises(TheorySetupError, match="missing cosmological parameter.*omch2"):
        camb_theory({k: v for k, v in LCDM_H0.items() if k != "omch2"}, {})
    with pytest.raises(TheorySetupError, match="exactly one of H0, theta_MC_100, cosmomc_theta"):
        camb_theory({**LCDM_H0, "theta_MC_100": 1.04}, {})
    with pytest.raises(TheorySetupError, match="exactly one of logA, As"):
        camb_theory({**LCDM_H0, "As": 2e-9}, {})
    with pytest.raises(TheoryError, match=r"H0=150 is outside the allowed range \[20, 100\]"):
        camb_theory({**LCDM_H0, "H0": 150.0}, {})
    with pytest.raises(TheoryError, match="ns must be finite"):
        camb_theory({**LCDM_H0, "ns": float("nan")}, {})
    with pytest.raises(TheorySetupError, match="parameter ombh2: expected a number"):
        camb_theory({**LCDM_H0, "ombh2": "abc"}, {})
    with pytest.raises(TheorySetupError, match="unknown requirement.*'cl'"):
        camb_theory(LCDM_H0, {"cl": {"lmax": 100}})
    with pytest.raises(TheorySetupError, match="cls.lmax must be an integer"):
        camb_theory(LCDM_H0, {"cls": {"lmax": 1e9}})
    with pytest.raises(TheorySetupError, match="'pk_lin' must be a mapping with 'kmax'"):
        camb_theory(LCDM_H0, {"pk_lin": True})
    with pytest.raises(TheorySetupError, match="pk_nl: unknown key.*nonlinear"):
        camb_theory(LCDM_H0, {"pk_nl": {"kmax": 1.0, "zmax": 1.0, "nonlinear": "halofit"}})
    with pytest.raises(TheorySetupError, match="ede_model must be one of"):
        CambSettings(ede_model="axion")
    res = camb_theory(LCDM_H0, {"distances": {"zmax": 3.0}})
    with pytest.raises(ValueError, match=r"outside the tabulated range \[0, 3\]"):
        res.comoving_distance(4.0)
    with pytest.raises(ValueError, match="outside the tabulated range"):
        res.hubble(-0.1)
    # Point errors are ValueErrors (a sampler rejects the point), set-up errors are not.
    assert issubclass(TheoryError, ValueError) and not issubclass(TheorySetupError, ValueError)


def test_merge_requirements_and_params():
    merged = merge_requirements({"cls": {"lmax": 2508, "spectra": ["tt", "te"]}, "rdrag": True},
                                {"cls": {"lmax": 30, "lensing": True, "spectra": ["ee"]}, "distances": True},
                                {"pk_nl": {"kmax": 10, "zmax": 3}})
    assert merged == {"cls": {"lmax": 2508, "spectra": ["ee", "te", "tt"], "lensing": True}, "rdrag": True,
                      "distances": True, "pk_nl": {"kmax": 10, "zmax": 3}}
    # A redshift list and a zmax grid from two likelihoods: both kept.
    res = camb_theory(LCDM_H0, merge_requirements({"pk_lin": {"kmax": 1.0, "z": [0.25]}},
                                                  {"pk_lin": {"kmax": 2.0, "zmax": 0.5}}))
    assert res.pk_lin.z.tolist() == [0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5] and res.pk_lin.k[-1] >= 2.0
    assert "w_10" in PARAMS and "f_EDE" in PARAMS and "H0" in PARAMS
    assert theory_params(CambSettings(ede_model="none")) == ("ombh2", "omch2", "H0", "theta_MC_100",
                                                              "cosmomc_theta", "logA", "As", "ns", "tau", "mnu")
    assert theory_params(CambSettings(ede_model="fluid", w_bins=3))[-6:] == ("f_EDE", "log10_z_c", "theta_i",
                                                                            "w_1", "w_2", "w_3")


def test_settings_from_section():
    from cosmopipe.schema import ConfigError, Section

    sec = Section({"ede_model": "fluid", "w_bins": {"n": 5}, "de_perturbations": "ppf"}, "sample.theory", "x.yaml")
    s = settings_from_section(sec)
    assert s.ede_model == "fluid" and s.w_bins.n == 5 and s.w_bins.edges[-1] == 3.0 and s.de_perturbations == "ppf"
    s = settings_from_section(Section({"w_bins": {"edges": [0, 0.5, 1.5, 3]}}, "t", "x.yaml"))
    assert s.w_bins.edges == (0.0, 0.5, 1.5, 3.0)
    with pytest.raises(ConfigError, match="x.yaml: t.w_bins.edges: w bin edges must start at z = 0"):
        settings_from_section(Section({"w_bins": {"edges": [0.1, 1, 3]}}, "t", "x.yaml"))
    with pytest.raises(ConfigError, match="t.ede_modle: unknown key"):
        settings_from_section(Section({"ede_modle": "fluid"}, "t", "x.yaml"))
