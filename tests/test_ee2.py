"""The EuclidEmulator2 wrapper: box and z checks, shapes, extrapolation, and
agreement with the raw package at its own k grid."""
import contextlib
import io
import warnings

import numpy as np
import pytest

from cosmopipe.emulators import ee2 as ee2_module
from cosmopipe.emulators import EE2_BOX, EE2_K_RANGE, ee2_boost
from cosmopipe.sims import EE2_REFERENCE


def _raw_package_boost(cosmology, z):
    """k and B straight from euclidemu2 (its own instance, no wrapper code)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import euclidemu2

        emu = euclidemu2.PyEuclidEmulator()
        params = {
            "Omega_m": cosmology.Omega_m, "Omega_b": cosmology.Omega_b, "m_ncdm": cosmology.m_nu,
            "n_s": cosmology.n_s, "h": cosmology.h, "w0_fld": cosmology.w0, "wa_fld": cosmology.wa,
            "A_s": cosmology.A_s,
        }
        k, boost = emu.get_boost(params, np.asarray(z, dtype=float))
    return np.asarray(k), np.array([boost[i] for i in range(len(z))])


def test_reference_cosmology_limits():
    b = ee2_boost([0.01, 1.0], 0.0, EE2_REFERENCE)
    # EE2 itself gives B(0.01 h/Mpc, z=0) = 0.9944 for the reference cosmology
    # (its large-scale end is not pinned to 1), so 1e-2 rather than 1e-3.
    assert abs(b[0, 0] - 1.0) < 1e-2
    assert b[0, 1] > 1.5


def test_below_k_min_is_linear():
    assert np.all(ee2_boost([1e-4, 1e-3, 0.5 * EE2_K_RANGE[0]], [0.0, 2.0], EE2_REFERENCE) == 1.0)


def test_shape_and_scalars():
    k = np.geomspace(0.02, 5.0, 17)
    z = [2.0, 1.0, 0.5, 0.0]
    b = ee2_boost(k, z, EE2_REFERENCE)
    assert b.shape == (4, 17)
    assert ee2_boost(0.1, 0.0, EE2_REFERENCE).shape == (1, 1)
    # Nonlinear growth: the boost at fixed small scale grows towards z = 0.
    assert np.all(np.diff(b[:, -1]) > 0)


def test_accepts_dict_of_our_names():
    d = EE2_REFERENCE.to_dict()
    np.testing.assert_array_equal(ee2_boost([0.1, 1.0], 0.5, d), ee2_boost([0.1, 1.0], 0.5, EE2_REFERENCE))
    del d["wa"]
    with pytest.raises(ValueError, match="missing wa"):
        ee2_boost(0.1, 0.0, d)


def test_out_of_box_names_parameter_and_range():
    d = EE2_REFERENCE.to_dict() | {"w0": -1.5}
    with pytest.raises(ValueError) as err:
        ee2_boost(0.1, 0.0, d)
    assert str(err.value) == "EuclidEmulator2: parameter w0=-1.5 is outside the emulator box [-1.3, -0.7]"
    with pytest.raises(ValueError, match=r"Omega_m=0\.45 is outside the emulator box \[0\.24, 0\.4\]"):
        ee2_boost(0.1, 0.0, EE2_REFERENCE.replace(Omega_m=0.45))


def test_first_outside_box_agrees_with_check_box_row_by_row():
    # The vectorised check must refuse exactly the rows check_box refuses, with its message.
    names = ("Omega_m", "h", "w0", "wa")
    fixed = {k: v for k, v in EE2_REFERENCE.to_dict().items() if k not in names}
    rng = np.random.default_rng(5)
    rows = np.array([[EE2_BOX[n][0], EE2_BOX[n][1]] for n in names])
    theta = rows[:, 0] + rng.random((400, 4)) * 1.1 * (rows[:, 1] - rows[:, 0])  # some rows just outside
    theta[3] = [lo for lo, _ in rows]  # edges are inside, as in the package
    theta[7, 2] = np.nan
    scalar = [ee2_module.in_box({**fixed, **dict(zip(names, map(float, r)))}) for r in theta]
    first = scalar.index(False)
    i, message = ee2_module.first_outside_box(names, theta, fixed)
    assert i == first and message.startswith("EuclidEmulator2: parameter ")
    ok = theta[np.array(scalar)]
    assert ee2_module.first_outside_box(names, ok, fixed) is None
    assert ee2_module.first_outside_box(names, theta[7:8], fixed)[0] == 0  # NaN counts as outside
    # A fixed value outside the box is found whatever the rows.
    bad_fixed = {**fixed, "n_s": 1.1}
    assert ee2_module.first_outside_box(names, ok, bad_fixed) == (
        0, "EuclidEmulator2: parameter n_s=1.1 is outside the emulator box [0.92, 1]")


def test_bad_redshift():
    with pytest.raises(ValueError, match=r"z=11 is outside the emulated range \[0, 10\]"):
        ee2_boost(0.1, [0.0, 11.0], EE2_REFERENCE)
    with pytest.raises(ValueError, match=r"z=-0\.5"):
        ee2_boost(0.1, -0.5, EE2_REFERENCE)


def test_warns_once_above_k_max(monkeypatch):
    monkeypatch.setattr(ee2_module, "_warned_high_k", False)
    with pytest.warns(UserWarning, match="only up to k"):
        b = ee2_boost([1.0, 20.0, 50.0], 0.0, EE2_REFERENCE)
    # Constant extrapolation: both out-of-range k get B(k_max).
    b_max = ee2_boost(EE2_K_RANGE[1], 0.0, EE2_REFERENCE)[0, 0]
    assert b[0, 1] == b[0, 2] == b_max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ee2_boost(30.0, 0.0, EE2_REFERENCE)  # second time: silent


def test_no_stdout_chatter(capfd):
    ee2_boost(np.geomspace(1e-3, 1.0, 5), [0.0, 1.0], EE2_REFERENCE)
    out, _ = capfd.readouterr()
    assert out == ""


def test_native_k_matches_raw_package():
    cosmo = EE2_REFERENCE.replace(w0=-0.9, wa=0.1, Omega_m=0.3, m_nu=0.1)
    z = [0.0, 0.7, 3.0]
    k_raw, b_raw = _raw_package_boost(cosmo, z)
    assert k_raw.size == 613
    assert k_raw[0] == pytest.approx(EE2_K_RANGE[0], rel=1e-12)
    assert k_raw[-1] == pytest.approx(EE2_K_RANGE[1], rel=1e-12)
    b = ee2_boost(k_raw, z, cosmo)
    np.testing.assert_allclose(b, b_raw, rtol=1e-6, atol=0)
    # Between the native points the spline stays within the neighbours' range.
    mid = np.sqrt(k_raw[200:210] * k_raw[201:211])
    b_mid = ee2_boost(mid, 0.0, cosmo)[0]
    lo = np.minimum(b_raw[0, 200:210], b_raw[0, 201:211])
    hi = np.maximum(b_raw[0, 200:210], b_raw[0, 201:211])
    assert np.all((b_mid > lo - 1e-3) & (b_mid < hi + 1e-3))


def test_many_redshifts_are_chunked():
    # The C++ core holds 101 redshifts per call; more must still work.
    z = np.linspace(0.0, 3.0, 150)
    b = ee2_boost([0.5, 2.0], z, EE2_REFERENCE)
    assert b.shape == (150, 2)
    np.testing.assert_allclose(b[[0, 120]], ee2_boost([0.5, 2.0], z[[0, 120]], EE2_REFERENCE), rtol=1e-12)


def test_box_matches_package_bounds():
    with contextlib.redirect_stdout(io.StringIO()):
        import euclidemu2
    bounds = euclidemu2.PyEuclidEmulator.bounds
    ours = {"m_ncdm": "m_nu", "w0_fld": "w0", "wa_fld": "wa"}
    for key, (lo, hi) in bounds.items():
        assert EE2_BOX[ours.get(key, key)] == (lo, hi)
