"""BAO likelihoods against reference-code chi^2 values, published fits and an independent
recomputation from the data files."""
import os
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.likelihoods import bao
from cosmopipe.likelihoods import data_registry as reg
from cosmopipe.likelihoods.base import LikelihoodError, TheoryResult


def _shared_data() -> Path | None:
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


DATA = _shared_data()
pytestmark = pytest.mark.skipif(
    DATA is None or not all(reg.available(n, DATA) for n in
                            ("bao_sixdf_2011", "bao_sdss_mgs", "bao_boss_dr12", "bao_desi_dr1", "bao_desi_dr2")),
    reason="BAO data not found: set COSMOPIPE_DATA or provide ../shared/data")

C = 299792.458

# Cobaya's reference point for its BAO tests: the Planck 2015 TT,TE,EE+lowTEB best fit
# (cobaya tests/test_cosmo_quantities.py, params_lowTEB_highTTTEEE; H0 is used, not theta),
# with one massive neutrino of 0.06 eV and N_eff = 3.044 (cobaya's "one_heavy_planck").
COBAYA_POINT = dict(H0=67.25, ombh2=0.02225203, omch2=0.1198657, mnu=0.06, nnu=3.044, num_massive_neutrinos=1)

# chi^2 of Cobaya's bao likelihoods at that point with CAMB, and the tolerances Cobaya's
# own tests allow (cobaya tests/test_cosmo_bao.py, commit b76b6fed).
COBAYA_CHI2 = {
    "sixdf_2011": (0.088, 0.02),
    "sdss_dr7_mgs": (0.92689, 0.02),
    "boss_dr12": (5.687, 0.04),
    "desi_dr1": (21.37, 0.02),
    "desi_dr2": (30.48, 0.02),
}


def camb_background(**params) -> TheoryResult:
    import camb

    pars = camb.set_params(**params)
    res = camb.get_background(pars)
    return TheoryResult(H0=params["H0"], rdrag=res.get_derived_params()["rdrag"],
                        comoving_distance=res.comoving_radial_distance,
                        angular_diameter_distance=res.angular_diameter_distance, hubble=res.hubble_parameter)


def flat_lcdm(omega_m: float, h_rd: float, h: float = 0.7) -> TheoryResult:
    """Flat LCDM distances by direct integration (photons + 3.044 massless neutrinos as
    radiation); D/r_d depends on h only through the radiation term."""
    from scipy.integrate import cumulative_trapezoid

    z = np.linspace(0.0, 3.0, 30001)
    omega_r = 2.47e-5 * (1 + 0.2271 * 3.044) / h**2
    hubble = 100 * h * np.sqrt(omega_m * (1 + z) ** 3 + omega_r * (1 + z) ** 4 + 1 - omega_m - omega_r)
    chi = np.concatenate([[0.0], cumulative_trapezoid(C / hubble, z)])
    return TheoryResult(rdrag=h_rd / h, comoving_distance=lambda x: np.interp(x, z, chi),
                        hubble=lambda x: np.interp(x, z, hubble))


@pytest.fixture(scope="module")
def cobaya_point():
    return camb_background(**COBAYA_POINT)


@pytest.mark.parametrize("name", list(COBAYA_CHI2))
def test_chi2_matches_cobaya_reference(cobaya_point, name):
    # Measured (CAMB 2.0.5): 6dF 0.0881, MGS 0.9248, DR12 5.6776, DESI DR1 21.357, DR2 30.481.
    reference, tolerance = COBAYA_CHI2[name]
    chi2 = bao.bao_likelihood([name], DATA).chi2(cobaya_point)
    assert chi2 == pytest.approx(reference, abs=tolerance)


def test_default_combination_is_the_sum_of_its_sets(cobaya_point):
    like = bao.bao_likelihood(data_dir=DATA)
    parts = like.chi2_by_set(cobaya_point)
    assert set(parts) == {"sixdf_2011", "sdss_dr7_mgs", "boss_dr12"}
    assert like.loglike(cobaya_point, {}) == pytest.approx(-0.5 * sum(parts.values()), rel=1e-12)


def test_boss_dr12_chi2_recomputed_from_the_files(cobaya_point):
    # Independent of bao.py's readers: parse the two files here, D_M and H from pyccl.
    import pyccl

    ccl = pyccl.Cosmology(Omega_c=0.2647, Omega_b=0.0492, h=0.6725, n_s=0.965, A_s=2.1e-9)
    rd = 147.3
    rows = [line.split() for line in open(DATA / "bao" / "sdss_DR12Consensus_bao.dat") if line.strip()]
    z = np.array([float(r[0]) for r in rows])
    data = np.array([float(r[1]) for r in rows])
    cov = np.loadtxt(DATA / "bao" / "BAO_consensus_covtot_dM_Hz.txt")
    a = 1 / (1 + z)
    d_m = pyccl.comoving_angular_distance(ccl, a)
    hubble = 100 * 0.6725 * pyccl.h_over_h0(ccl, a)
    model = np.where([r[2] == "DM_over_rs" for r in rows], d_m * 147.78 / rd, hubble * rd / 147.78)
    expected = (model - data) @ np.linalg.solve(cov, model - data)
    theory = TheoryResult(rdrag=rd, comoving_distance=lambda x: pyccl.comoving_angular_distance(ccl, 1 / (1 + x)),
                          hubble=lambda x: 100 * 0.6725 * pyccl.h_over_h0(ccl, 1 / (1 + x)))
    assert bao.bao_likelihood(["boss_dr12"], DATA).chi2(theory) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name, omega_m, h_rd", [
    # DESI 2024 VI (arXiv:2404.03002), DESI BAO alone: Omega_m = 0.295 +- 0.015, h r_d = 101.8 +- 1.3 Mpc
    ("desi_dr1", (0.295, 0.015), (101.8, 1.3)),
    # DESI DR2 Results II (arXiv:2503.14738), DESI BAO alone: Omega_m = 0.2975 +- 0.0086, h r_d = 101.54 +- 0.73 Mpc
    ("desi_dr2", (0.2975, 0.0086), (101.54, 0.73)),
])
def test_desi_best_fit_matches_published_lcdm_constraints(name, omega_m, h_rd):
    # Flat LCDM from DESI BAO alone depends on (Omega_m, h r_d); the best fit of our
    # likelihood must sit on the published central values.  Measured: DR1 0.2936 / 101.95
    # (0.10 and 0.11 sigma away), DR2 0.2972 / 101.55 (0.04 and 0.01 sigma).
    from scipy.optimize import minimize

    like = bao.bao_likelihood([name], DATA)
    fit = minimize(lambda p: like.chi2(flat_lcdm(*p)), [0.31, 100.0], method="Nelder-Mead",
                   options=dict(xatol=1e-5, fatol=1e-8))
    assert fit.success
    assert abs(fit.x[0] - omega_m[0]) < 0.2 * omega_m[1]
    assert abs(fit.x[1] - h_rd[0]) < 0.2 * h_rd[1]


def test_sixdf_uses_the_eisenstein_hu_rescaled_sound_horizon(cobaya_point):
    like = bao.bao_likelihood(["sixdf_2011"], DATA)
    z = 0.106
    d_m = cobaya_point.angular_diameter_distance(z) * (1 + z)
    d_v = (z * d_m**2 * C / cobaya_point.hubble(z)) ** (1 / 3)
    model = cobaya_point.rdrag * 1.027369826 / d_v
    assert like.chi2(cobaya_point) == pytest.approx(((model - 0.336) / 0.015) ** 2, rel=1e-6)


def test_mgs_is_tabulated_and_bounded(cobaya_point):
    like = bao.bao_likelihood(["sdss_dr7_mgs"], DATA)
    part = like.parts[0]
    # At the grid nodes the spline returns the tabulated chi^2.
    table = np.loadtxt(DATA / "bao" / "sdss_MGS_prob.txt")
    i = 150
    rd_node = bao.volume_distance(cobaya_point, 0.15) / (part.alpha[i] * 638.9518 / 148.69)
    from dataclasses import replace

    assert part.chi2(replace(cobaya_point, rdrag=float(rd_node))) == pytest.approx(table[i], rel=1e-9)
    # alpha outside [0.8005, 1.1985] is excluded.
    assert like.loglike(replace(cobaya_point, rdrag=cobaya_point.rdrag * 1.3), {}) == -np.inf


# -- errors ---------------------------------------------------------------------------

def test_bad_set_names_and_combinations():
    with pytest.raises(LikelihoodError, match="unknown data set.*'desi_y3'.*sixdf_2011"):
        bao.bao_likelihood(["desi_y3"], DATA)
    with pytest.raises(LikelihoodError, match="desi_dr1 and desi_dr2"):
        bao.bao_likelihood(["desi_dr1", "desi_dr2"], DATA)
    with pytest.warns(UserWarning, match="double-counts"):
        bao.bao_likelihood(["boss_dr12", "desi_dr2"], DATA)


def test_theory_without_rdrag_or_distances_is_a_clear_error(cobaya_point):
    from dataclasses import replace

    like = bao.bao_likelihood(["boss_dr12"], DATA)
    with pytest.raises(LikelihoodError, match=r"rdrag.*request \{'rdrag': True\}"):
        like.chi2(replace(cobaya_point, rdrag=None))
    with pytest.raises(LikelihoodError, match="no hubble"):
        like.chi2(replace(cobaya_point, hubble=None))
    with pytest.raises(LikelihoodError, match="not finite and positive at z = 0.38"):
        like.chi2(replace(cobaya_point, hubble=lambda z: np.where(np.asarray(z) < 0.4, np.nan, 70.0)))


def test_from_config_reads_and_checks_the_yaml_section():
    from cosmopipe.likelihoods.base import likelihood_factory
    from cosmopipe.schema import ConfigError, Section

    factory = likelihood_factory("bao")
    like = factory(Section({"sets": ["desi_dr2"]}, "likelihoods.bao", "w.yaml"), {"data_dir": str(DATA)})
    assert [p.name for p in like.parts] == ["desi_dr2"]
    assert like.requirements() == {"distances": True, "rdrag": True} and like.parameters() == {}
    with pytest.raises(ConfigError, match=r"w\.yaml: likelihoods\.bao\.sets: item 0: must be one of"):
        factory(Section({"sets": ["boss"]}, "likelihoods.bao", "w.yaml"), {"data_dir": str(DATA)})
    with pytest.raises(ConfigError, match=r"likelihoods\.bao\.sets: bao: desi_dr1 and desi_dr2"):
        factory(Section({"sets": ["desi_dr1", "desi_dr2"]}, "likelihoods.bao", "w.yaml"), {"data_dir": str(DATA)})
    with pytest.raises(ConfigError, match=r"likelihoods\.bao\.set: unknown key"):
        factory(Section({"set": ["desi_dr2"]}, "likelihoods.bao", "w.yaml"), {"data_dir": str(DATA)})
