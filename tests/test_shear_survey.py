"""LSST-Y1 source sample: SRD tomography against independent quadrature, photo-z
bins, n(z) file reading and its errors, and the shipped CoCoA LSST-Y1 n(z)."""
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.shear.survey import (Survey, bin_pairs, lsst_y1_survey, read_nz_file, srd_parent_nz,
                                      survey_from_nz_file)

SHARED_LSST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lsst_y1"


def test_srd_edges_are_equal_number_quantiles():
    s = lsst_y1_survey()
    # Independent: adaptive quadrature of the parent and root finding for each quantile.
    parent = lambda z: z**2 * np.exp(-((z / 0.13) ** 0.78))
    total = integrate.quad(parent, 0.0, 4.0, epsabs=0, epsrel=1e-12, limit=200)[0]
    for i, edge in enumerate(s.edges[1:-1], start=1):
        q = optimize.brentq(lambda x: integrate.quad(parent, 0.0, x, epsrel=1e-12, limit=200)[0] / total - i / 5, 0.01, 3.9)
        assert edge == pytest.approx(q, abs=2e-4)
    assert s.edges[0] == 0.0 and s.edges[-1] == 4.0
    assert s.nbins == 5 and len(s.pairs) == 15 and s.pairs[:3] == [(0, 0), (0, 1), (0, 2)]
    assert bin_pairs(5)[-1] == (4, 4)


def test_photoz_bins_redistribute_the_parent():
    s = lsst_y1_survey()
    z = s.z
    # Un-normalise each bin (equal numbers: 1/5 each of the in-range galaxies) and compare
    # the sum with the parent times the probability that the photo-z lands in [0, 4].
    parent = srd_parent_nz(z)
    parent /= np.trapezoid(parent, z)
    frac = np.array([np.trapezoid(parent * (stats.norm.cdf(hi, z, 0.05 * (1 + z)) - stats.norm.cdf(lo, z, 0.05 * (1 + z))), z)
                     for lo, hi in zip(s.edges[:-1], s.edges[1:])])
    total = (s.nz * frac[:, None]).sum(axis=0)
    inside = stats.norm.cdf(4.0, z, 0.05 * (1 + z)) - stats.norm.cdf(0.0, z, 0.05 * (1 + z))
    np.testing.assert_allclose(total, parent * inside, atol=1e-10)
    # Equal numbers up to the photo-z spill beyond the outer edges (a few per cent in bin 1).
    np.testing.assert_allclose(frac / frac.mean(), 1.0, atol=0.05)
    np.testing.assert_allclose(np.trapezoid(s.nz, z, axis=1), 1.0, rtol=1e-12)
    assert np.all(np.diff(s.mean_z()) > 0.15)
    # Scatter widens the bins: the bin width exceeds sigma_z (1 + z_mean) / sqrt(2)
    sd = np.sqrt(np.trapezoid(s.nz * (z - s.mean_z()[:, None]) ** 2, z, axis=1))
    assert np.all(sd > 0.05 * (1 + s.mean_z()) / np.sqrt(2))


def test_survey_defaults_and_validation():
    s = lsst_y1_survey()
    assert s.n_eff.sum() == pytest.approx(10.0) and s.sigma_e == 0.26 and s.area_deg2 == 12300.0
    assert s.f_sky == pytest.approx(12300 / 41252.96, rel=1e-6)
    assert s.noise_power()[0] == pytest.approx(0.26**2 / (2.0 * (180 * 60 / np.pi) ** 2))
    with pytest.raises(LikelihoodError, match="z0"):
        lsst_y1_survey(z0=-1.0)
    with pytest.raises(LikelihoodError, match="n_eff"):
        Survey(z=s.z, nz=s.nz, n_eff=[1, 1, 1, 1, -1], sigma_e=0.26, area_deg2=100.0)
    with pytest.raises(LikelihoodError, match="area_deg2"):
        Survey(z=s.z, nz=s.nz, n_eff=s.n_eff, sigma_e=0.26, area_deg2=50000.0)


def _write(path, table, header=""):
    np.savetxt(path, table, header=header)
    return path


def test_nz_file_roundtrip(tmp_path):
    s = lsst_y1_survey(nz_points=401)
    path = _write(tmp_path / "srd.nz", np.column_stack([s.z, 3.0 * s.nz.T]), header="z n1 n2 n3 n4 n5")
    f = survey_from_nz_file(path, n_eff_total=10.0, nbins=5)
    np.testing.assert_allclose(f.nz, s.nz, rtol=1e-12, atol=1e-12)
    assert f.origin == "file srd.nz" and f.nbins == 5


@pytest.mark.parametrize("corrupt, message", [
    (lambda t: t.__setitem__((40, 3), -0.1), r"bin 3 has a negative n\(z\)=-0\.1 at row 41"),
    (lambda t: t.__setitem__((50, 0), t[48, 0]), r"must increase strictly; row 51"),
    (lambda t: t.__setitem__((7, 2), np.nan), r"bin 2 has a non-finite n\(z\) at row 8"),
    (lambda t: t.__setitem__((0, 0), -0.5), r"redshifts must be >= 0"),
])
def test_nz_file_bad_values(tmp_path, corrupt, message):
    s = lsst_y1_survey(nz_points=201)
    table = np.column_stack([s.z, s.nz.T])
    corrupt(table)
    path = _write(tmp_path / "bad.nz", table)
    with pytest.raises(LikelihoodError, match=message) as err:
        read_nz_file(path)
    assert str(path) in str(err.value)


def test_nz_file_bad_layout(tmp_path):
    s = lsst_y1_survey(nz_points=201)
    four = _write(tmp_path / "four.nz", np.column_stack([s.z, s.nz[:4].T]))
    with pytest.raises(LikelihoodError, match="expected 5 bin columns after the redshift column, found 4"):
        read_nz_file(four, nbins=5)
    one = _write(tmp_path / "one.nz", s.z[:, None])
    with pytest.raises(LikelihoodError, match="at least one bin column"):
        read_nz_file(one)
    text = tmp_path / "text.nz"
    text.write_text("0.0 1.0\n0.1 abc\n0.2 1.0\n")
    with pytest.raises(LikelihoodError, match="unreadable as a numeric table"):
        read_nz_file(text)
    ragged = tmp_path / "ragged.nz"
    ragged.write_text("0.0 1.0 2.0\n0.1 1.0\n0.2 1.0 2.0\n")
    with pytest.raises(LikelihoodError, match="unreadable"):
        read_nz_file(ragged)
    empty_bin = _write(tmp_path / "empty.nz", np.column_stack([s.z, s.nz[0], 0 * s.z]))
    with pytest.raises(LikelihoodError, match="bin 2 has no galaxies"):
        read_nz_file(empty_bin)
    with pytest.raises(LikelihoodError, match="not found"):
        read_nz_file(tmp_path / "missing.nz")


def test_shared_lsst_y1_source_nz_loads():
    path = SHARED_LSST / "source_LSSTY1.nz"
    if not path.is_file():
        pytest.skip(f"shared LSST-Y1 data not present at {SHARED_LSST} (see ../shared/data/README.md)")
    s = survey_from_nz_file(path, nbins=5)
    assert s.nbins == 5 and s.z.size == 300
    mean = s.mean_z()
    assert np.all(np.diff(mean) > 0.1)
    # The CoCoA file is a different realisation of LSST-Y1 than the SRD formula: its
    # bins are shifted to higher z (mean 0.33 vs 0.25 in bin 1), so only broad checks here.
    np.testing.assert_allclose(mean, [0.325, 0.530, 0.737, 1.005, 1.616], atol=2e-3)
    lens = SHARED_LSST / "lens_LSSTY1.nz"
    zl, nl = read_nz_file(lens, nbins=5)
    assert nl.shape == (5, 300)
