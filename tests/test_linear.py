"""LinearPower: interpolation in z, extrapolation in k, sigma8, cb vs total matter."""
import numpy as np
import pytest

from cosmopipe.sims import Cosmology
from cosmopipe.sims.cosmology import N_EFF, T_CMB
from cosmopipe.sims.linear import linear_power

REF = Cosmology()
K_TEST = np.geomspace(1e-3, 1.0, 60)


@pytest.fixture(scope="module")
def tabulated():
    """Reference cosmology tabulated at z = 0, 0.5, 1, 2 (kmax 5 h/Mpc)."""
    return linear_power(REF, (0.5, 1.0, 2.0), kmax=5.0)


@pytest.fixture(scope="module")
def massive():
    cosmo = Cosmology(m_nu=0.15)
    return cosmo, linear_power(cosmo, (0.0,), kmax=2.0)


def _independent_camb(cosmo, kmax=20.0, k_per_logint=20):
    """CAMB results for ``cosmo`` set up from scratch (not via sims.linear).

    Omega_c is chosen so that CAMB's own Omega_c + Omega_b + Omega_nu equals
    Omega_m, the definition used by Cosmology."""
    import camb

    h = cosmo.h
    common = dict(H0=100 * h, ombh2=cosmo.Omega_b * h**2, mnu=cosmo.m_nu, nnu=N_EFF, TCMB=T_CMB,
                  num_massive_neutrinos=3 if cosmo.m_nu > 0 else 0, neutrino_hierarchy="degenerate",
                  As=cosmo.A_s, ns=cosmo.n_s, w=cosmo.w0, wa=cosmo.wa, dark_energy_model="ppf",
                  WantCls=False)
    trial = camb.set_params(omch2=0.1, **common)
    pars = camb.set_params(omch2=cosmo.Omega_m * h**2 - trial.ombh2 - trial.omnuh2, **common)
    pars.set_matter_power(redshifts=[0.0], kmax=kmax * h, nonlinear=False, k_per_logint=k_per_logint)
    return camb.get_results(pars)


# -- interpolation in z -------------------------------------------------------------

def _z_interpolation_error(tabulated, z):
    """max |P_interpolated / P_direct - 1| over K_TEST for both species."""
    direct = linear_power(REF, (z,), kmax=5.0)
    return max(np.max(np.abs(tabulated(K_TEST, z, sp) / direct(K_TEST, z, sp) - 1.0)) for sp in ("cb", "tot"))


def test_z_interpolation_matches_direct_run(tabulated):
    # Cubic spline of ln P in ln(1+z) through z = 0, 0.5, 1, 2, compared with a
    # CAMB run that has z = 0.7 in its own table. The issue requires 0.2%;
    # measured 7.7e-5 (1.5e-3 when the spline was in z).
    assert _z_interpolation_error(tabulated, 0.7) < 2e-3


def test_z_interpolation_between_wide_knots(tabulated):
    # Between the widest knots (1 and 2): measured 1.9e-4 (5.7e-3 when splined in z).
    assert _z_interpolation_error(tabulated, 1.4) < 2e-3


def test_tabulated_redshifts_are_exact(tabulated):
    # At a tabulated z the spline returns the table: only round-off (exp/log).
    for iz, z in enumerate(tabulated.z):
        np.testing.assert_allclose(tabulated(tabulated.k, z), tabulated.pk["cb"][iz], rtol=1e-12)


@pytest.mark.parametrize("z", [-0.1, 2.01, 10.0])
def test_z_outside_table_raises(tabulated, z):
    with pytest.raises(ValueError, match="outside the tabulated range"):
        tabulated(K_TEST, z)


def test_unknown_species_raises(tabulated):
    with pytest.raises(ValueError, match="species"):
        tabulated(K_TEST, 0.0, "cdm")


# -- extrapolation in k ---------------------------------------------------------------

def test_extrapolation_beyond_kmax_finite_positive(tabulated):
    k_last = tabulated.k[-1]
    k = k_last * np.array([1.01, 2.0, 10.0, 1e3, 1e5])
    p = tabulated(k, 0.0)
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    # A power law continues to fall: CDM P(k) ~ k^(n_s - 4) ln^2 k at high k.
    assert np.all(np.diff(p) < 0)


@pytest.mark.parametrize("z", [0.0, 1.3])
def test_extrapolation_continuous_at_edges(tabulated, z):
    for k_edge in (tabulated.k[0], tabulated.k[-1]):
        inside, outside = tabulated(np.array([k_edge * (1 - 1e-6), k_edge * (1 + 1e-6)]), z)
        # A 2e-6 step in ln k: a smooth continuation changes P by ~1e-5; 1% is the bound.
        assert outside == pytest.approx(inside, rel=1e-2)
    # k = 0 (the DC mode of a mesh) gets zero power, not a NaN.
    assert tabulated(np.array([0.0]), z)[0] == 0.0


def test_extrapolation_accurate_just_beyond_table(tabulated):
    reference = linear_power(REF, (0.0,), kmax=8.0)
    k = tabulated.k[-1] * np.array([1.05, 1.1, 1.2])
    # IC modes between the last CAMB grid point and the requested kmax use the
    # continuation. Local edge slope: measured +0.15%, +0.33%, +0.72% (+4.1% at
    # twice k_last); the former fit over the last decade gave +1.0%, +2.0%, +3.9%.
    np.testing.assert_allclose(tabulated(k, 0.0) / reference(k, 0.0), 1.0, rtol=1e-2)


# -- sigma8 ------------------------------------------------------------------------------

def test_sigma8_matches_independent_camb():
    """sigma8 from get_sigmaR of the tabulated run vs get_sigma8_0 of a separate run.

    The independent run uses k_per_logint=20: at CAMB's default k sampling its
    get_sigma8_0 is itself 1.8e-4 below the converged value (0.815787 vs
    0.815935), while sigma8 via get_sigmaR (kmax 20, as in run.py) is 2.4e-5
    above it (0.815954)."""
    lin = linear_power(REF, (0.0,), kmax=20.0)
    res = _independent_camb(REF, kmax=5.0)
    # 1e-4 as the issue asks; measured 2.4e-5 (the converged reference changes
    # by 3e-6 between kmax 5 and 20).
    assert lin.sigma8 == pytest.approx(res.get_sigma8_0(), rel=1e-4)
    sig_cb = res.get_sigmaR(8.0, hubble_units=True, var1="delta_nonu", var2="delta_nonu")[-1]
    assert lin.sigma8_cb == pytest.approx(sig_cb, rel=1e-4)
    # Massive neutrinos only lower the total-matter sigma8.
    assert lin.sigma8 < lin.sigma8_cb


def test_sigma8_is_the_z0_value_whatever_the_table(tabulated):
    # Regression: sigma8 was read at the wrong redshift index whenever the
    # table held more than z = 0 (CAMB lists sigma_R by decreasing z); it
    # came out as sigma8(z = 2) = 0.340.
    only0 = linear_power(REF, (0.0,), kmax=5.0)
    # Same CAMB k sampling and integral: equal to round-off.
    assert tabulated.sigma8 == pytest.approx(only0.sigma8, rel=1e-6)
    assert tabulated.sigma8_cb == pytest.approx(only0.sigma8_cb, rel=1e-6)


# -- cb vs total matter ---------------------------------------------------------------------

def test_tot_over_cb_small_scales(massive):
    cosmo, lin = massive
    ratio = lin(np.array([1.0]), 0.0, "tot")[0] / lin(np.array([1.0]), 0.0, "cb")[0]
    # delta_tot = (1 - f_nu) delta_cb + f_nu delta_nu, and delta_nu << delta_cb far
    # below the free-streaming length: 1% (measured 0.97764 vs 0.97763).
    assert ratio == pytest.approx((1.0 - cosmo.f_nu) ** 2, rel=1e-2)


def test_tot_over_cb_large_scales(massive):
    cosmo, lin = massive
    ratio = lin(np.array([1e-4]), 0.0, "tot")[0] / lin(np.array([1e-4]), 0.0, "cb")[0]
    # Far above the free-streaming scale (k_nr ~ 2e-3 h/Mpc for 0.05 eV) neutrinos
    # cluster like cb: ratio -> 1. 1e-3 vs the 2.2% small-scale suppression
    # (measured 0.9999984).
    assert ratio == pytest.approx(1.0, abs=1e-3)


def test_tot_equals_cb_without_massive_neutrinos():
    lin = linear_power(Cosmology(m_nu=0.0), (0.0,), kmax=1.0)
    # Identical CAMB variables when there are no massive neutrinos.
    np.testing.assert_allclose(lin(K_TEST, 0.0, "tot"), lin(K_TEST, 0.0, "cb"), rtol=1e-10)
    assert lin.sigma8 == pytest.approx(lin.sigma8_cb, rel=1e-10)
