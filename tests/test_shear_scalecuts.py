"""Scale-cut masks from l_max: the angles, the named cuts, and CoCoA's LSST-Y1 masks."""
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.likelihoods.shear.hankel import theta_centres, theta_edges
from cosmopipe.likelihoods.shear.scalecuts import NAMED_LMAX, parse_scale_cut, scale_cut_mask, theta_min

SHARED_LSST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lsst_y1"
KEPT = {3000.0: (26, 21), 1500.0: (23, 17), 750.0: (19, 14), 375.0: (16, 11), 187.5: (13, 8)}


def test_theta_min():
    tp, tm = theta_min(3000.0)
    arcmin = np.pi / 180 / 60
    assert tp == pytest.approx(2.405 / 3000 / arcmin) and tp == pytest.approx(2.7560, abs=1e-4)
    assert tm == pytest.approx(7.588 / 3000 / arcmin) and tm == pytest.approx(8.6953, abs=1e-4)
    with pytest.raises(ValueError, match="positive"):
        theta_min(0.0)


@pytest.mark.parametrize("lmax", NAMED_LMAX)
def test_named_cuts(lmax):
    edges = theta_edges()
    mask = scale_cut_mask(edges, 15, lmax)
    assert mask.shape == (780,) and mask.dtype == bool
    plus, minus = mask[:390].reshape(15, 26), mask[390:].reshape(15, 26)
    assert np.all(plus == plus[0]) and np.all(minus == minus[0])  # same angles for every pair
    assert (plus[0].sum(), minus[0].sum()) == KEPT[lmax]
    centres = theta_centres(edges)
    tp, tm = theta_min(lmax)
    assert np.all(centres[plus[0]] >= tp) and np.all(centres[~plus[0]] < tp)
    assert np.all(centres[minus[0]] >= tm) and np.all(centres[~minus[0]] < tm)
    # only small angles are removed
    assert np.all(np.diff(plus[0].astype(int)) >= 0) and np.all(np.diff(minus[0].astype(int)) >= 0)


def test_no_cut():
    assert scale_cut_mask(theta_edges(), 15, None).all()


@pytest.mark.parametrize("index, lmax", list(zip(range(1, 6), NAMED_LMAX)))
def test_matches_cocoa_masks(index, lmax):
    path = SHARED_LSST / f"LSST_Y1_M{index}_GGLOLAP0.05.mask"
    if not path.is_file():
        pytest.skip(f"shared LSST-Y1 data not present at {SHARED_LSST}")
    cocoa = np.loadtxt(path)[:780, 1].astype(bool)  # xi+ then xi- come first in the 3x2pt vector
    np.testing.assert_array_equal(scale_cut_mask(theta_edges(), 15, lmax), cocoa)


def test_parse_scale_cut():
    assert parse_scale_cut(None) is None and parse_scale_cut("none") is None
    assert parse_scale_cut(1500) == 1500.0 and parse_scale_cut(187.5) == 187.5 and parse_scale_cut("lmax750") == 750.0
    for bad in ("abc", -3, True, float("nan")):
        with pytest.raises(ValueError, match="3000, 1500, 750, 375, 187.5"):
            parse_scale_cut(bad)
