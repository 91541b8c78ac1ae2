"""Fast background of the shear theory against CAMB (distances, H(z)) and CCL (growth)."""
import numpy as np
import pytest

from cosmopipe.likelihoods.theory.background import background, comoving_distance_grid
from cosmopipe.sims.cosmology import Cosmology

COSMOLOGIES = [
    Cosmology(),                                                            # EE2 reference, m_nu = 0.058 eV
    Cosmology(m_nu=0.0),
    Cosmology(Omega_m=0.28, h=0.72, w0=-0.8, wa=-0.5, m_nu=0.15),
]


@pytest.fixture(scope="module", params=range(len(COSMOLOGIES)))
def cosmo(request):
    return COSMOLOGIES[request.param]


def test_distance_and_hubble_match_camb(cosmo):
    import camb

    from cosmopipe.sims.linear import camb_params

    res = camb.get_background(camb_params(cosmo))
    z = np.linspace(0.0, 4.0, 801)
    bg = background(cosmo)
    E = bg.E(z)
    chi = comoving_distance_grid(z, E)
    np.testing.assert_allclose(E, res.hubble_parameter(z) / (100 * cosmo.h), rtol=2e-6)
    # CAMB works in Mpc; ours is Mpc/h
    np.testing.assert_allclose(chi[1:], res.comoving_radial_distance(z[1:]) * cosmo.h, rtol=2e-5)
    assert bg.Omega_m == pytest.approx(cosmo.Omega_m, rel=1e-12)


def test_growth_matches_ccl(cosmo):
    ccl = pytest.importorskip("pyccl")
    cc = ccl.Cosmology(Omega_c=cosmo.Omega_c, Omega_b=cosmo.Omega_b, h=cosmo.h, n_s=cosmo.n_s, A_s=cosmo.A_s,
                       w0=cosmo.w0, wa=cosmo.wa, m_nu=cosmo.m_nu, mass_split="equal", Neff=3.044, T_CMB=2.7255,
                       transfer_function="eisenstein_hu", matter_power_spectrum="linear")
    z = np.linspace(0.0, 4.0, 41)
    D = background(cosmo).growth(z)
    np.testing.assert_allclose(D, ccl.growth_factor(cc, 1 / (1 + z)), rtol=2e-6)
    chi = background(cosmo).comoving_distance(z[1:])
    np.testing.assert_allclose(chi, ccl.comoving_radial_distance(cc, 1 / (1 + z[1:])) * cosmo.h, rtol=2e-5)


def test_growth_matches_heath_integral_for_lcdm():
    # Flat LCDM without radiation or neutrinos: D(a) proportional to
    # E(a) int_0^a da' / (a' E(a'))^3 (Heath 1977), exact.
    from scipy import integrate

    from cosmopipe.likelihoods.theory.background import Background

    Om = 0.3
    bg = Background(Omega_cb=Om, Omega_nu=0.0, Omega_r=0.0, Omega_de=1 - Om, w0=-1.0, wa=0.0, m_nu=0.0, h=0.7)
    E = lambda a: np.sqrt(Om / a**3 + 1 - Om)
    heath = lambda a: E(a) * integrate.quad(lambda x: 1.0 / (x * E(x)) ** 3, 0.0, a, epsrel=1e-12)[0]
    z = np.array([0.0, 0.3, 1.0, 2.0, 4.0])
    expected = np.array([heath(1 / (1 + zi)) for zi in z]) / heath(1.0)
    np.testing.assert_allclose(bg.growth(z), expected, rtol=1e-6)
