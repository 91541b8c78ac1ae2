"""Gaussian xi+- covariance: symmetric positive definite, the shape-noise limit
against pair counts, one element against direct quadrature; external files."""
import numpy as np
import pytest
from scipy import integrate
from scipy.interpolate import CubicSpline

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.shear.covariance import gaussian_covariance, load_covariance
from cosmopipe.likelihoods.shear.hankel import ARCMIN, bin_averaged_j0, bin_averaged_j4
from cosmopipe.likelihoods.shear.limber import shear_model
from cosmopipe.likelihoods.theory.matter_power import TablePower
from cosmopipe.likelihoods.shear.survey import lsst_y1_survey


def toy_power(scale=1.0):
    """BBKS linear spectrum, sigma8 ~ 0.8, with a crude nonlinear boost; (Mpc/h)^3."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    d = 1 / (1 + z[:, None]) ** 0.8
    lin = 1.9e7 * k * t**2 * d**2
    boost = 1 + (k / (0.3 / d**1.5)) ** 1.5
    return TablePower(k=k, z=z, pk=scale * lin * boost)


@pytest.fixture(scope="module")
def model():
    return shear_model(lsst_y1_survey(), toy_power())


@pytest.fixture(scope="module")
def cov(model):
    return gaussian_covariance(model, {})


def test_symmetric_positive_definite(cov, model):
    assert cov.shape == (780, 780)
    np.testing.assert_array_equal(cov, cov.T)
    eig = np.linalg.eigvalsh(cov)
    assert eig[0] > 0 and eig[-1] / eig[0] < 1e8
    np.linalg.cholesky(cov)
    # neighbouring angular bins of one pair are positively correlated by cosmic variance
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert corr[20, 21] > 0.3


def test_shape_noise_limit_is_pair_counting():
    survey = lsst_y1_survey()
    quiet = shear_model(survey, toy_power(scale=1e-12))
    cov = gaussian_covariance(quiet, {})
    edges = quiet.theta_edges * ARCMIN
    area_bin = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    n = survey.n_eff_sr
    expected = []
    for i, j in quiet.pairs:
        pairs = n[i] * n[j] * survey.area_sr * area_bin / (2.0 if i == j else 1.0)  # distinct galaxy pairs
        expected.append(2 * survey.sigma_e**4 / pairs)  # (e_t e_t + e_x e_x) per pair: variance 2 sigma_e^4
    expected = np.concatenate([np.ravel(expected)] * 2)
    np.testing.assert_allclose(np.diag(cov), expected, rtol=1e-6)
    off = cov - np.diag(np.diag(cov))
    assert np.abs(off).max() < 1e-6 * expected.min()


def test_one_element_against_quadrature(cov, model):
    # xi+ and xi- variances of pair (4,4), and the xi+ x xi- covariance of pair (0,0), at
    # large angles where cosmic variance matters, by adaptive quadrature over l.
    survey = model.survey
    pairs = model.pairs
    # Limber spectra on a dense grid of their own (not the covariance's spline nodes)
    dense = np.geomspace(2.0, 1e5, 3000)
    spline = CubicSpline(np.log(dense), np.log(model.cl({}, dense)), axis=1)
    cl = lambda l, p: np.exp(spline(np.log(np.maximum(l, 2.0)))[p]) * (l >= 2)
    noise = survey.noise_power()
    edges = model.theta_edges * ARCMIN
    b = 20
    lo, hi = edges[b], edges[b + 1]
    for p, (ka, kc) in ((pairs.index((4, 4)), (0, 0)), (pairs.index((4, 4)), (1, 1)), (0, (0, 1))):
        i = pairs[p][0]
        kern = (bin_averaged_j0, bin_averaged_j4)

        def integrand(l):
            c = cl(l, p) + noise[i]
            return l * kern[ka](np.array([l]), lo, hi)[0] * kern[kc](np.array([l]), lo, hi)[0] * 2 * (c**2 - noise[i] ** 2)

        pieces = np.concatenate([np.arange(1.0, 3000.0, 20.0), np.geomspace(3000.0, 1e5, 30)])
        value = sum(integrate.quad(integrand, a, c, epsrel=1e-8, limit=200)[0] for a, c in zip(pieces[:-1], pieces[1:]))
        value /= 2 * np.pi * survey.area_sr
        if ka == kc:
            value += 2 * 2 * survey.sigma_e**4 / (survey.n_eff_sr[i] ** 2 * survey.area_sr * np.pi * (hi**2 - lo**2))
        row = ka * 390 + p * 26 + b
        col = kc * 390 + p * 26 + b
        assert cov[row, col] == pytest.approx(value, rel=2e-3)


def test_external_files(tmp_path, cov):
    np.save(tmp_path / "c.npy", cov)
    np.savez(tmp_path / "c.npz", cov=cov, other=np.zeros(3))
    np.savetxt(tmp_path / "c.txt", cov)
    iu = np.triu_indices(780)
    np.savetxt(tmp_path / "c3.txt", np.column_stack([iu[0], iu[1], cov[iu]]))
    for name in ("c.npy", "c.npz", "c.txt", "c3.txt"):
        np.testing.assert_allclose(load_covariance(tmp_path / name, 780), cov, rtol=1e-15 if "npy" in name or "npz" in name else 1e-12)


def test_external_file_errors(tmp_path, cov):
    lam, vec = np.linalg.eigh(cov)
    lam[3] = -lam[3]
    np.save(tmp_path / "notpd.npy", (vec * lam) @ vec.T)
    with pytest.raises(LikelihoodError, match=r"notpd.npy: covariance is not positive definite: smallest eigenvalue -"):
        load_covariance(tmp_path / "notpd.npy", 780)
    asym = cov.copy()
    asym[3, 5] *= 1.01
    np.save(tmp_path / "asym.npy", asym)
    with pytest.raises(LikelihoodError, match=r"not symmetric: C\[3,5\]"):
        load_covariance(tmp_path / "asym.npy", 780)
    np.save(tmp_path / "small.npy", cov[:700, :700])
    with pytest.raises(LikelihoodError, match=r"must be 780 x 780 .* got shape \(700, 700\)"):
        load_covariance(tmp_path / "small.npy", 780)
    bad = cov.copy()
    bad[2, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(LikelihoodError, match=r"non-finite entry at \(2, 2\)"):
        load_covariance(tmp_path / "nan.npy", 780)
    np.savez(tmp_path / "two.npz", a=cov, b=cov)
    with pytest.raises(LikelihoodError, match="name the covariance 'cov'"):
        load_covariance(tmp_path / "two.npz", 780)
    with pytest.raises(LikelihoodError, match="not found"):
        load_covariance(tmp_path / "missing.npy", 780)
    np.savetxt(tmp_path / "holes.txt", np.array([[0, 0, 1.0], [1, 1, 1.0], [5, 5, 1.0], [2, 2, 1.0]]))
    with pytest.raises(LikelihoodError, match=r"entry \(0, 1\) is missing"):
        load_covariance(tmp_path / "holes.txt", 780)
