"""Bin-averaged Hankel transform: closed-form kernels against quadrature, and the
whole transform against analytic Hankel pairs."""
import numpy as np
import pytest
from scipy import integrate
from scipy.special import jv

from cosmopipe.likelihoods.shear.hankel import (ARCMIN, bin_averaged_j0, bin_averaged_j4, spin2_limber_factor, theta_centres,
                                      theta_edges, xi_transform_matrices)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # quad at its precision limit
@pytest.mark.parametrize("lo, hi", [(7.3e-4, 9.1e-4), (0.02, 0.025), (0.21, 0.26)])
def test_bin_averaged_kernels_match_quadrature(lo, hi):
    area = 0.5 * (hi**2 - lo**2)
    for ell in [3.0, 40.0, 700.0, 1.2e4, 9.0e4]:
        for order, fn in ((0, bin_averaged_j0), (4, bin_averaged_j4)):
            # split at the Bessel zeros' spacing so quad sees one oscillation per piece
            cuts = np.linspace(lo, hi, 2 + int(ell * (hi - lo) / np.pi))
            ref = sum(integrate.quad(lambda t: t * jv(order, ell * t), a, b, epsabs=0, epsrel=1e-13)[0]
                      for a, b in zip(cuts[:-1], cuts[1:])) / area
            got = fn(np.array([ell]), lo, hi)[0]
            assert got == pytest.approx(ref, rel=1e-8, abs=1e-13 * max(1.0, abs(ref)))


def test_spin2_factor():
    ell = np.array([1.0, 2.0, 10.0, 1000.0])
    expected = np.array([0.0, 24 / 2.5**4, 12 * 11 * 10 * 9 / 10.5**4, 1002 * 1001 * 1000 * 999 / 1000.5**4])
    np.testing.assert_allclose(spin2_limber_factor(ell), expected, rtol=1e-14)


def test_theta_bins():
    e = theta_edges()
    assert e.size == 27 and e[0] == pytest.approx(2.5) and e[-1] == pytest.approx(900.0)
    c = theta_centres(e)
    assert np.all((c > e[:-1]) & (c < e[1:]))
    with pytest.raises(ValueError, match="theta_min"):
        theta_edges(10.0, 5.0)


def _exact_j4_pair(theta, s):
    """xi- of C(l) = exp(-s l): theta^-4 (r - s)^4 (4 r + s) / r^3 / (2 pi), r = sqrt(s^2 + theta^2)
    (the Laplace transform of t J_4(b t))."""
    r = np.sqrt(s**2 + theta**2)
    return (r - s) ** 4 * (4 * r + s) / r**3 / theta**4 / (2 * np.pi)


def _exact_j0_pair(theta, a):
    """xi+ of C(l) = (l^2 + a^2)^-3/2: exp(-a theta) / (2 pi a) (Gradshteyn & Ryzhik 6.554.1)."""
    return np.exp(-a * theta) / (2 * np.pi * a)


def _bin_average(fn, lo, hi):
    return integrate.quad(lambda t: t * fn(t), lo, hi, epsrel=1e-12)[0] / (0.5 * (hi**2 - lo**2))


def _below_one(cl, kernel, lo, hi):
    """The l < 1 part of the transform, which the matrices leave out (shear spectra vanish there)."""
    return integrate.quad(lambda l: l * cl(l) * kernel(np.array([l]), lo, hi)[0], 1e-12, 1.0,
                          epsrel=1e-12)[0] / (2 * np.pi)


@pytest.mark.parametrize("a", [10.0, 30.0])
def test_transform_reproduces_analytic_xi_plus(a):
    # l^2 C falls as 1/l like a shear spectrum; xi+ spans 4 decades over the bins for a = 30.
    edges = theta_edges()
    nodes = np.geomspace(1.0, 1e5, 81)
    mp, _ = xi_transform_matrices(edges, nodes, spin2=False)
    cl = lambda l: (l**2 + a**2) ** -1.5
    xp = mp @ (nodes**2 * cl(nodes))
    e = edges * ARCMIN
    ref = [_bin_average(lambda t: _exact_j0_pair(t, a), lo, hi) - _below_one(cl, bin_averaged_j0, lo, hi)
           for lo, hi in zip(e[:-1], e[1:])]
    # Errors (the cubic spline of l^2 C with 16 nodes per decade, the l > 1e5 tail) are
    # absolute: 1e-4 relative, or 1e-6 of the peak where xi+ has fallen by e^-a theta.
    np.testing.assert_allclose(xp, ref, rtol=1e-4, atol=1e-6 * max(ref))


@pytest.mark.parametrize("s", [3e-4, 3e-3])
def test_transform_reproduces_analytic_xi_minus(s):
    edges = theta_edges()
    nodes = np.geomspace(1.0, 1e5, 81)
    _, mm = xi_transform_matrices(edges, nodes, spin2=False)
    cl = lambda l: np.exp(-s * l)
    xm = mm @ (nodes**2 * cl(nodes))
    e = edges * ARCMIN
    ref = [_bin_average(lambda t: _exact_j4_pair(t, s), lo, hi) - _below_one(cl, bin_averaged_j4, lo, hi)
           for lo, hi in zip(e[:-1], e[1:])]
    np.testing.assert_allclose(xm, ref, rtol=1e-4)


def test_model_xi_against_brute_force_integration():
    # The whole chain (Limber nodes, spline of l^2 C, precomputed matrices) against a
    # direct Simpson integration, over every l/2 from 1 to 1e5 (the model's range), of
    # Limber spectra evaluated at each of those l; bins above 10 arcmin.
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.theory.matter_power import TablePower
    from cosmopipe.likelihoods.shear.survey import lsst_y1_survey

    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    d = 1 / (1 + z[:, None]) ** 0.8
    from cosmopipe.likelihoods.shear.conventions import Conventions

    model = shear_model(lsst_y1_survey(), TablePower(k=k, z=z, pk=1.9e7 * k * t**2 * d**2),
                        conventions=Conventions(xi_method="flat"))
    params = {"A_IA": 0.5, "dz_2": 0.01}
    xp, xm = model.xi(params)
    cosmo, nuis = model.split(params)
    ell = np.linspace(1.0, 1.0e5, 199999)
    cl = np.concatenate([model._cl_tilde(cosmo, nuis, ell[i:i + 20000]) for i in range(0, ell.size, 20000)], axis=1)
    w = np.full(ell.size, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    w *= (ell[1] - ell[0]) / 3 * ell / (2 * np.pi) * spin2_limber_factor(ell)
    e = model.theta_edges * ARCMIN
    for b in range(6, 26):
        ref_p = cl @ (w * bin_averaged_j0(ell, e[b], e[b + 1]))
        ref_m = cl @ (w * bin_averaged_j4(ell, e[b], e[b + 1]))
        # 1e-4 relative; where xi+ passes through zero the error is absolute, 5e-11 here,
        # i.e. below 1e-5 of xi+ at 2.5 arcmin
        np.testing.assert_allclose(xp[:, b], ref_p, rtol=1e-4, atol=1e-5 * np.abs(xp[:, 0]).min(), err_msg=f"xi+ bin {b}")
        np.testing.assert_allclose(xm[:, b], ref_m, rtol=1e-4, err_msg=f"xi- bin {b}")
