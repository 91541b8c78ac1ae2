"""Curved-sky bin-averaged xi+- (likelihoods.shear.curved) against independent sums.

The reference Wigner functions come from the Jacobi-polynomial form
d^l_{2,2} = ((1+x)/2)^2 P^(0,4)_{l-2}(x), d^l_{2,-2} = ((1-x)/2)^2 P^(4,0)_{l-2}(x)
(checked against scipy's eval_jacobi), averaged over each bin by Gauss-Legendre
quadrature in x = cos(theta): nothing is shared with the closed-form
Legendre expressions under test."""
import numba
import numpy as np
import pytest
from scipy.special import eval_jacobi, roots_legendre

from cosmopipe.likelihoods.shear.conventions import Conventions
from cosmopipe.likelihoods.shear.covariance import gaussian_covariance
from cosmopipe.likelihoods.shear.curved import bin_averaged_weights, curved_transform_matrices
from cosmopipe.likelihoods.shear.hankel import ARCMIN, spin2_limber_factor, theta_edges
from cosmopipe.likelihoods.shear.limber import shear_model
from cosmopipe.likelihoods.theory.matter_power import TablePower
from cosmopipe.likelihoods.shear.survey import lsst_y1_survey


@numba.njit(cache=True)
def _jacobi_04_averages(x, w, lmax):
    """sum_q w_q d^l_{2,2}(x_q) and sum_q w_q d^l_{2,-2}(x_q) for l = 0 ... lmax - 1 (zero for
    l < 2), by the three-term Jacobi recurrence (DLMF 18.9.2) for P^(0,4)_n at x and at
    -x (P^(4,0)_n(x) = (-1)^n P^(0,4)_n(-x)), with l = n + 2."""
    a, b = 0.0, 4.0
    avg = np.zeros((2, lmax))
    for q in range(x.size):
        for s in range(2):
            xs = x[q] if s == 0 else -x[q]
            pref = w[q] * (((1.0 + x[q]) / 2.0) ** 2 if s == 0 else ((1.0 - x[q]) / 2.0) ** 2)
            p_prev, p = 1.0, (a + 1.0) + (a + b + 2.0) * (xs - 1.0) / 2.0   # P_0, P_1
            avg[s, 2] += pref
            avg[s, 3] += pref * (p if s == 0 else -p)
            sign = -1.0
            for n in range(2, lmax - 2):
                c = 2.0 * n + a + b
                p_prev, p = p, ((c - 1.0) * (c * (c - 2.0) * xs + a * a - b * b) * p
                                - 2.0 * (n + a - 1.0) * (n + b - 1.0) * c * p_prev) / (2.0 * n * (n + a + b) * (c - 2.0))
                sign = -sign
                avg[s, n + 2] += pref * (p if s == 0 else sign * p)
    return avg


def _reference_weights(edges_arcmin, lmax):
    """(2 l + 1)/(4 pi) <d^l_{2,+-2}>_bin, arrays (nbins, lmax), by Gauss-Legendre in x per bin."""
    out = np.zeros((2, edges_arcmin.size - 1, lmax))
    for b, (lo, hi) in enumerate(zip(edges_arcmin[:-1] * ARCMIN, edges_arcmin[1:] * ARCMIN)):
        # >= 8 nodes per oscillation period 2 pi / l_max of the integrand in theta
        n = int(max(64, 8 * lmax * (hi - lo) / (2 * np.pi)))
        t, w = roots_legendre(n)
        x_lo, x_hi = np.cos(lo), np.cos(hi)
        x = 0.5 * (x_lo + x_hi) + 0.5 * (x_lo - x_hi) * t
        out[:, b] = _jacobi_04_averages(x, 0.5 * w, lmax)
    return out * (2 * np.arange(lmax) + 1) / (4 * np.pi)


def test_jacobi_recurrence_matches_scipy():
    x = np.array([0.3, 0.99, 0.999999])
    avg = _jacobi_04_averages(x, np.array([1.0, 0.0, 0.0]), 60)
    np.testing.assert_allclose(avg[0, 57], ((1 + x[0]) / 2) ** 2 * eval_jacobi(55, 0, 4, x[0]), rtol=1e-10)
    np.testing.assert_allclose(avg[1, 57], ((1 - x[0]) / 2) ** 2 * eval_jacobi(55, 4, 0, x[0]), rtol=1e-10)
    avg = _jacobi_04_averages(x, np.array([0.0, 0.0, 1.0]), 60)
    np.testing.assert_allclose(avg[:, 4], [((1 + x[2]) / 2) ** 2 * eval_jacobi(2, 0, 4, x[2]),
                                           ((1 - x[2]) / 2) ** 2 * eval_jacobi(2, 4, 0, x[2])], rtol=1e-10)


# l = 99999 in the widest bin would need 6000 quadrature nodes x 1e5 recurrences: left out
@pytest.mark.parametrize("b, ell", [(b, ell) for b in (0, 13, 25) for ell in (2, 3, 40, 1000, 20000)]
                         + [(0, 99999), (13, 99999)])
def test_weights_match_quadrature_of_wigner_functions(b, ell):
    edges = theta_edges()
    gp, gm = bin_averaged_weights(edges, ell + 1)
    ref_p, ref_m = _reference_weights(edges[b:b + 2], ell + 1)[:, :, ell]
    # xi- weights at l theta << 1 are ~ (l theta)^4 small; hold them to an absolute
    # 1e-9 of the xi+ weight there (C_l times either is what enters xi)
    # Round-off of the upward recursions grows with l: 2e-6 at l = 1e5 in the
    # smallest bin, where l^2 C_l is 1e-3 of its peak and xi barely feels it.
    rtol = 1e-7 if ell <= 20000 else 1e-5
    np.testing.assert_allclose(gp[b, ell], ref_p[0], rtol=rtol)
    np.testing.assert_allclose(gm[b, ell], ref_m[0], rtol=rtol, atol=1e-9 * abs(ref_p[0]))


def test_cosmolike_weights_carry_the_extra_spin2_ratio():
    edges = theta_edges()
    gp, gm = bin_averaged_weights(edges, 500)
    cp, cm = bin_averaged_weights(edges, 500, weights="cosmolike")
    l = np.arange(2, 500)
    ratio = (l - 1) * (l + 2) / (l * (l + 1))
    np.testing.assert_allclose(cp[:, 2:], gp[:, 2:] * ratio, rtol=1e-12)
    np.testing.assert_allclose(cm[:, 2:], gm[:, 2:] * ratio, rtol=1e-12)
    assert not cp[:, :2].any() and not gp[:, :2].any()
    with pytest.raises(ValueError, match="one of exact, cosmolike"):
        bin_averaged_weights(edges, 100, weights="stebbins")


def _toy_model(xi_method="curved", lmax=100_000):
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    d = 1 / (1 + z[:, None]) ** 0.8
    return shear_model(lsst_y1_survey(), TablePower(k=k, z=z, pk=1.9e7 * k * t**2 * d**2),
                       conventions=Conventions(xi_method=xi_method), curved_lmax=lmax)


def test_model_xi_against_direct_legendre_sum_delta_chi2():
    """The model's xi+- (15 pairs x 26 bins) from its node values of l^2 C~ equal the direct
    sum over every integer l < 30000 of the same spline C_l: Delta chi^2 < 0.01 on
    the LSST-Y1 Gaussian covariance."""
    from scipy.interpolate import CubicSpline

    lmax = 30_000
    model = _toy_model(lmax=lmax)
    params = {"A_IA": 0.5}
    xp, xm = model.xi(params)
    cosmo, nuis = model.split(params)
    f_nodes = model._cl_tilde(cosmo, nuis, model.ell_nodes) * model.ell_nodes**2
    l = np.arange(lmax, dtype=float)
    l[:2] = 2.0  # placeholders; l < 2 carries no weight
    cl = CubicSpline(np.log(model.ell_nodes), f_nodes, axis=1)(np.log(l)) * spin2_limber_factor(l) / l**2
    cl[:, :2] = 0.0
    wp, wm = _reference_weights(model.theta_edges, lmax)
    ref_p, ref_m = cl @ wp.T, cl @ wm.T
    cov = gaussian_covariance(model, params)
    diff = np.concatenate([(xp - ref_p).ravel(), (xm - ref_m).ravel()])
    chi2 = diff @ np.linalg.solve(cov, diff)
    print(f"curved-sky xi vs direct Legendre sum: Delta chi^2 = {chi2:.2e}")
    assert chi2 < 0.01, f"Delta chi^2 = {chi2:.2e}"
    np.testing.assert_allclose(xp[:, 5], ref_p[:, 5], rtol=1e-6)


def test_curved_and_flat_agree_at_small_angles_and_part_at_large():
    curved, flat = _toy_model("curved"), _toy_model("flat")
    cp, _ = curved.xi({})
    fp, _ = flat.xi({})
    # J(l theta) with the Limber C(l) instead of d^l ~ J((l + 1/2) theta): flat sky low
    ratio = fp / cp
    assert np.all((ratio[:, 0] > 0.99) & (ratio[:, 0] < 0.999))     # 2.5-3.1 arcmin
    assert np.all((ratio[:, 9] > 0.98) & (ratio[:, 9] < 0.996))     # 19-24 arcmin


def test_matrices_reject_bad_input():
    with pytest.raises(ValueError, match="lmax"):
        curved_transform_matrices(theta_edges(), np.geomspace(1, 1e5, 81), lmax=2)
    with pytest.raises(ValueError, match="ell nodes"):
        curved_transform_matrices(theta_edges(), np.geomspace(10, 1e5, 81))
    with pytest.raises(ValueError, match="prefactor: must be one of spin2, none"):
        curved_transform_matrices(theta_edges(), np.geomspace(1, 1e5, 81), prefactor="kappa")


def test_prefactor_none_drops_the_spin2_factor_of_every_l():
    """Without the spin-2 Limber factor (CosmoLike's TATT path) the transform of a spectrum
    whose node values are l^2 C~ equals the spin2 transform of C~ / T(l): checked on a pure
    power law, where both sums run over every integer 2 <= l < lmax."""
    edges, nodes, lmax = theta_edges(), np.geomspace(1, 1e5, 81), 4000
    gp, gm = bin_averaged_weights(edges, lmax, weights="cosmolike")
    l = np.arange(lmax, dtype=float)
    c_tilde = np.zeros(lmax)
    c_tilde[2:] = l[2:] ** -2.2
    mp, mm = curved_transform_matrices(edges, nodes, lmax, "cosmolike", prefactor="none")
    f = nodes**2 * nodes**-2.2
    np.testing.assert_allclose(mp @ f, gp @ c_tilde, rtol=1e-6)
    np.testing.assert_allclose(mm @ f, gm @ c_tilde, rtol=1e-6, atol=1e-9 * np.abs(gp @ c_tilde).max())
    sp, _ = curved_transform_matrices(edges, nodes, lmax, "cosmolike")
    c_spin2 = c_tilde * np.where(l >= 2, spin2_limber_factor(np.maximum(l, 2)), 0.0)
    np.testing.assert_allclose(sp @ f, gp @ c_spin2, rtol=1e-6)
    # the factor (l-1)l(l+1)(l+2)/(l+1/2)^4 < 1 weighs most at large angles (low l)
    ratio = (mp @ f) / (sp @ f)
    assert np.all(ratio > 1) and ratio[-1] > ratio[0]
