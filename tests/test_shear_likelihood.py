"""The LSST-Y1 shear likelihood: factory, mock data and its file, nuisances,
the Likelihood protocol, and clear errors for bad configuration."""
import math
import pickle

import numpy as np
import pytest

from cosmopipe.likelihoods.base import Likelihood, LikelihoodError, likelihood_factory
from cosmopipe.likelihoods.shear.likelihood import DATA_FILE_NAME, from_config
from cosmopipe.likelihoods.shear.mock import read_data
from cosmopipe.schema import ConfigError, Section


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """BBKS linear spectrum with a crude nonlinear boost, as a table file (no CAMB)."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    d = 1 / (1 + z[:, None]) ** 0.8
    pk = 1.9e7 * k * t**2 * d**2 * (1 + (k / (0.3 / d**1.5)) ** 1.5)
    path = tmp_path_factory.mktemp("power") / "table.npz"
    np.savez(path, k=k, z=z, pk=pk)
    return str(path)


def _config(table, mock=True, **extra):
    cfg = {"power": {"source": "table", "path": table},
           "data": {"power": {"source": "table", "path": table}} if mock else {}}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return Section(cfg, "sample.likelihoods.lsst_y1_shear", source="w.yaml")


@pytest.fixture(scope="module")
def lk(table, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    like = likelihood_factory("lsst_y1_shear")(_config(table), {"run_dir": str(run), "data_dir": None})
    like.run_dir = run
    return like


def test_protocol_and_mock(lk):
    assert isinstance(lk, Likelihood) and lk.name == "lsst_y1_shear"
    assert lk.requirements() == {}
    assert lk.n_points == 15 * (26 + 21)  # default scale cut l_max = 3000
    # noiseless mock from the same theory: chi^2 = 0 at the fiducial
    assert lk.loglike(None, {}) == pytest.approx(0.0, abs=1e-9)
    assert lk.loglike(None, {"Omega_m": 0.33}) < -10
    stored = read_data(lk.run_dir / DATA_FILE_NAME)
    np.testing.assert_array_equal(stored["data"], lk.data)
    np.testing.assert_array_equal(stored["covariance"], lk.cov)
    assert stored["noise_seed"] is None and stored["fiducial"]["A_IA"] == 0.5
    assert stored["power"]["source"] == "table" and stored["survey"]["nbins"] == 5
    assert stored["pairs"].shape == (15, 2) and stored["theta"].shape == (26,)


def test_parameters_and_priors(lk):
    priors = lk.parameters()
    assert list(priors) == [f"dz_{i}" for i in range(1, 6)] + [f"m_{i}" for i in range(1, 6)] + ["A_IA", "eta_IA"]
    assert {k: priors["dz_3"][k] for k in ("prior", "mean", "sigma")} == {"prior": "gaussian", "mean": 0.0, "sigma": 0.002}
    assert priors["m_1"]["sigma"] == 0.005
    assert {k: priors["A_IA"][k] for k in ("prior", "min", "max", "ref")} == {"prior": "flat", "min": -5.0, "max": 5.0,
                                                                              "ref": 0.5}
    assert lk.input_params == ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0", "wa", "m_nu")
    # the sampler's reader accepts every default
    reader = pytest.importorskip("cosmopipe.likelihoods.priors")
    for name, spec in priors.items():
        reader.prior_from_default(spec, name)


def test_loglike_parameter_handling(lk):
    base = lk.loglike(None, {"Omega_m": 0.3})
    # names of other likelihoods are ignored
    assert lk.loglike(None, {"Omega_m": 0.3, "A_planck": 1.0}) == base
    with pytest.raises(LikelihoodError, match="shear parameter Omega_m: expected a finite number, got nan"):
        lk.loglike(None, {"Omega_m": float("nan")})
    # outside the physical domain: -inf, not an exception or a NaN
    assert lk.loglike(None, {"w0": -0.2}) == -math.inf
    assert lk.loglike(None, {"m_1": -1.5}) == -math.inf
    with pytest.raises(LikelihoodError, match="unknown shear parameter"):
        lk.model.xi({"Omega_x": 0.3})


def test_nuisances_act_as_defined(lk):
    m = lk.model
    xp0, xm0 = m.xi({})
    xp, xm = m.xi({"m_1": 0.1, "m_2": -0.05})
    pairs = m.pairs
    np.testing.assert_allclose(xp[pairs.index((0, 0))], 1.21 * xp0[pairs.index((0, 0))], rtol=1e-12)
    np.testing.assert_allclose(xm[pairs.index((0, 1))], 1.1 * 0.95 * xm0[pairs.index((0, 1))], rtol=1e-12)
    np.testing.assert_allclose(xp[pairs.index((2, 3))], xp0[pairs.index((2, 3))], rtol=1e-12)
    # moving the lowest bin to higher z lengthens its lensing lever arm (no IA)
    a, _ = m.xi({"A_IA": 0.0})
    b, _ = m.xi({"A_IA": 0.0, "dz_1": 0.05})
    assert np.all(b[0, :20] > a[0, :20] * 1.2)  # below ~3 deg, where xi+ is far from its zero
    # positive A_IA gives a negative GI term: cross-correlations drop
    c, _ = m.xi({"A_IA": 1.0})
    assert np.all(c[pairs.index((0, 4)), :20] < 0.9 * a[pairs.index((0, 4)), :20])


def test_noise_realisation(table, tmp_path):
    a = from_config(_config(table, data={"noise_seed": 7}), {"run_dir": str(tmp_path / "a")})
    b = from_config(_config(table, data={"noise_seed": 7}), {"run_dir": None})
    c = from_config(_config(table, data={"noise_seed": 8}), {})
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    n = a.n_points
    chi2 = -2 * a.loglike(None, {})
    assert abs(chi2 - n) < 5 * math.sqrt(2 * n)
    assert read_data(tmp_path / "a" / DATA_FILE_NAME)["noise_seed"] == 7


def test_data_file_and_pickle(lk, table):
    again = from_config(_config(table, mock=False, data={"file": str(lk.run_dir / DATA_FILE_NAME)}, scale_cut=750), {})
    assert again.n_points == 15 * (19 + 14)
    assert again.loglike(None, {}) == pytest.approx(0.0, abs=1e-9)
    clone = pickle.loads(pickle.dumps(lk))
    assert clone.loglike(None, {"h": 0.7}) == lk.loglike(None, {"h": 0.7})


def _error(table, tmp_path=None, **extra):
    with pytest.raises(ConfigError) as err:
        from_config(_config(table, **extra), {"run_dir": None, "data_dir": str(tmp_path) if tmp_path else None})
    return str(err.value)


def test_config_errors(table, tmp_path):
    pre = "w.yaml: sample.likelihoods.lsst_y1_shear."
    assert _error(table, powr={}).startswith(pre + "powr: unknown key")
    msg = _error(table, data={"fiducial": {"Omega_x": 0.3}})
    assert msg.startswith(pre + "data.fiducial.Omega_x: unknown parameter; allowed: Omega_m")
    assert "parameter w0=-0.1" in _error(table, data={"fiducial": {"w0": -0.1}})
    assert _error(table, scale_cut="abc").startswith(pre + "scale_cut: must be an l_max")
    assert _error(table, power={"source": "emulator", "path": None}).startswith(pre + "power.path: is required")
    assert "must be one of ee2, hmcode, emulator, table" in _error(table, power={"source": "halofit"})
    assert "not found" in _error(table, survey={"nz_file": "nowhere.nz"})
    assert _error(table, survey={"nz_file": "x", "z0": 0.2}).startswith(pre + "survey.z0: applies to the analytic")
    assert "cannot be combined with data.file" in _error(table, data={"file": "x.h5", "noise_seed": 1})


def test_bad_files_are_config_errors(table, tmp_path):
    pre = "w.yaml: sample.likelihoods.lsst_y1_shear."
    z = np.linspace(0, 3, 100)
    nz = np.exp(-((z[:, None] - np.arange(1, 6) * 0.4) ** 2) / 0.02)
    nz[30, 2] = -1e-3
    np.savetxt(tmp_path / "neg.nz", np.column_stack([z, nz]))
    # relative paths are looked up under data_dir too
    msg = _error(table, tmp_path, survey={"nz_file": "neg.nz"})
    assert msg.startswith(pre + "survey.nz_file: n(z) file") and "bin 3 has a negative n(z)" in msg
    cov = np.eye(780)
    cov[0, 0] = -1.0
    np.save(tmp_path / "cov.npy", cov)
    msg = _error(table, tmp_path, covariance={"file": str(tmp_path / "cov.npy")})
    assert msg.startswith(pre + "covariance.file: covariance file") and "not positive definite" in msg


def test_default_config_is_an_ee2_mock(tmp_path):
    # Everything by default: EE2 theory (CAMB P_lin x EuclidEmulator2 boost) and an EE2 mock.
    lk = from_config(Section({}, "lsst_y1_shear"), {"run_dir": str(tmp_path)})
    assert lk.provenance["power"]["source"] == "ee2" and lk.provenance["data"]["power"]["source"] == "ee2"
    assert lk.loglike(None, {}) == pytest.approx(0.0, abs=1e-9)
    worse = lk.loglike(None, {"Omega_m": 0.30, "A_s": 2.2e-9})
    assert -1e6 < worse < -1.0
    # outside EuclidEmulator2's box: -inf
    assert lk.loglike(None, {"Omega_m": 0.45}) == -math.inf
