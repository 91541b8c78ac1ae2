"""The EuclidEmulator2 surrogate on the LCDM slice (emulators.ee2_lcdm) and its use
in the hybrid emulator and the shear power source.

Reference: EuclidEmulator2 itself, at cosmologies and redshifts the surrogate was
not trained on.  The surrogate here is small (2 parameters, 150 cosmologies, a few
seconds of training); its accuracy bar is the one its own held-out validation
reports, and the production-size accuracy (5 parameters, 3000 cosmologies) is the
slow test at the end.
"""
import warnings

import h5py
import numpy as np
import pytest

from cosmopipe import emulators
from cosmopipe.emulators.boost import train_boost
from cosmopipe.emulators.ee2 import EE2_BOX, EE2_K_RANGE, ee2_boost
from cosmopipe.emulators.ee2_lcdm import ee2_lcdm_log_boost, ee2_native_k, lcdm_space, train_ee2_lcdm
from cosmopipe.emulators.hybrid import HybridEmulator, make_hybrid
from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.params import ParameterSpace
from cosmopipe.emulators.synthetic import ee2_dataset
from cosmopipe.emulators.training import FitSettings
from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.theory.matter_power import EmulatorPower
from cosmopipe.sims import Cosmology

VARIED = ("Omega_m", "A_s", "w0")
BOX = {name: EE2_BOX[name] for name in VARIED}
K = np.geomspace(0.02, 1.0, 30)
Z_SUR = np.linspace(0.0, 2.0, 6)
SMALL = FitSettings(network=TrainConfig(hidden=(32, 32), epochs=3000))


@pytest.fixture(scope="module")
def cola():
    ds = ee2_dataset(30, [0.0, 1.0, 2.0], K, BOX, seed=1)
    return train_boost(ds, FitSettings(network=TrainConfig(hidden=(16, 16), epochs=500)))


@pytest.fixture(scope="module")
def surrogate(cola):
    return train_ee2_lcdm(cola.space, n=150, z=Z_SUR, seed=4, settings=SMALL, n_test=40)


@pytest.fixture(scope="module")
def hybrid(cola, surrogate):
    return make_hybrid(cola, surrogate)


def _exact(params, z, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ee2_boost(k, z, {**params, "w0": -1.0, "wa": 0.0})


def test_lcdm_space_is_the_ee2_slice(cola):
    space = lcdm_space(cola.space)
    assert space.names == ("Omega_m", "A_s")
    assert space.fixed["w0"] == -1.0 and space.fixed["wa"] == 0.0
    assert space.fixed["m_nu"] == cola.space.fixed["m_nu"]
    wide = ParameterSpace(("Omega_m", "w0"), [0.2, -1.4], [0.45, -0.6], {**cola.space.fixed, "A_s": 2.1e-9})
    assert lcdm_space(wide).box["Omega_m"] == EE2_BOX["Omega_m"]  # clipped to EE2's box


@pytest.mark.parametrize("space, message", [
    (ParameterSpace(("w0",), [-1.3], [-0.7], {"wa": 0.0}), "varies only w0/wa"),
    (ParameterSpace(("Omega_m", "w0"), [0.24, -1.3], [0.4, -0.7], {"m_nu": 0.3}),
     r"fixed m_nu=0.3 is outside EuclidEmulator2's box \[0, 0.15\]"),
    (ParameterSpace(("h", "w0"), [0.74, -1.3], [0.8, -0.7]), "box of h does not overlap"),
    (ParameterSpace(("h", "w0"), [0.64, -1.3], [0.7, -0.7], {"wa": 0.0}), "needs Omega_m, Omega_b, m_nu"),
])
def test_lcdm_space_errors(space, message):
    with pytest.raises(ValueError, match=message):
        lcdm_space(space)


def test_native_grid_is_ee2s():
    k = ee2_native_k()
    assert k.size == 613 and np.all(np.diff(k) > 0)
    assert k[0] == pytest.approx(EE2_K_RANGE[0], rel=1e-6) and k[-1] == pytest.approx(EE2_K_RANGE[1], rel=1e-6)


def test_surrogate_reproduces_ee2_off_the_training_points(surrogate):
    rng = np.random.default_rng(11)
    space = surrogate.space
    theta = space.lower + rng.random((12, 2)) * (space.upper - space.lower)
    z = np.array([0.0, 0.13, 0.9, 1.55, 2.0])          # mostly between the training redshifts
    k = np.geomspace(EE2_K_RANGE[0], EE2_K_RANGE[1], 300)
    got = ee2_lcdm_log_boost(surrogate, theta, space.names, z, k)
    ref = np.log(np.stack([_exact(d, z, k) for d in space.cosmology_dicts(theta)]))
    err = np.abs(np.expm1(got - ref)).max(axis=(1, 2))
    v = surrogate.info["validation"]
    # the held-out scores stored in the file describe these independent points too
    assert err.max() < 1.5 * max(v["k_le_1"]["max"], v["k_1_to_10"]["max"])
    assert np.median(err) < 0.004                        # 0.4 % from 150 points in 2-D


def test_surrogate_follows_ee2_outside_its_k_range(surrogate):
    space = surrogate.space
    theta = np.array([[0.3, 2.1e-9]])
    k = np.array([1e-4, 1e-3, EE2_K_RANGE[1], 15.0, 30.0])
    got = ee2_lcdm_log_boost(surrogate, theta, space.names, np.array([0.0, 1.0]), k)[0]
    np.testing.assert_array_equal(got[:, :2], 0.0)                    # B = 1 below k_min
    np.testing.assert_array_equal(got[:, 3], got[:, 2])               # B(k_max) above
    np.testing.assert_array_equal(got[:, 4], got[:, 2])


def test_provenance(surrogate):
    info = surrogate.info
    assert info["n_cosmologies"] == 150 and info["reference"].startswith("EuclidEmulator2")
    assert set(info["validation"]) >= {"k_le_1", "k_1_to_10", "n_test"}
    assert info["euclidemu2_version"] and info["code_version"]


def test_hybrid_with_surrogate(hybrid, cola):
    z = np.array([0.0, 0.6, 1.7])
    rows = {"Omega_m": np.array([0.27, 0.35]), "A_s": np.array([1.9e-9, 2.3e-9]), "w0": np.array([-1.0, -0.8])}
    exact = hybrid.boost(K, z, rows)
    fast = hybrid.boost(K, z, rows, ee2="surrogate")
    v = hybrid.ee2_lcdm.info["validation"]["k_le_1"]
    assert np.abs(fast / exact - 1).max() < 1.5 * v["max"]
    # the COLA ratio is the same in both: their quotient is the surrogate's error alone
    for i in range(2):
        lcdm = {"Omega_m": rows["Omega_m"][i], "A_s": rows["A_s"][i], **hybrid.fixed}
        sur = np.exp(ee2_lcdm_log_boost(hybrid.ee2_lcdm, np.array([[lcdm["Omega_m"], lcdm["A_s"], -1.0]]),
                                        hybrid.params, z, K))[0]
        np.testing.assert_allclose(fast[i] / exact[i], sur / _exact(lcdm, z, K), rtol=1e-12)
    pnl = hybrid.pnl(K, z, {"Omega_m": 0.3, "A_s": 2e-9, "w0": -0.9}, ee2="surrogate")
    assert pnl.shape == (3, K.size) and np.all(pnl > 0)


def test_hybrid_surrogate_errors(hybrid, cola):
    p = {"Omega_m": 0.3, "A_s": 2e-9, "w0": -0.9}
    with pytest.raises(ValueError, match="ee2 must be one of exact, surrogate"):
        hybrid.boost(K, 0.0, p, ee2="fast")
    with pytest.raises(ValueError, match="does not carry"):
        make_hybrid(cola).boost(K, 0.0, p, ee2="surrogate")
    with pytest.raises(ValueError, match=r"covers z in \[0, 2\]"):
        hybrid.ln_ee2_lcdm(np.array([[0.3, 2e-9, -1.0]]), np.array([2.5]), K, "surrogate")
    other = train_ee2_lcdm(ParameterSpace(("Omega_m", "h", "w0"), [0.25, 0.62, -1.2], [0.38, 0.72, -0.8],
                                          {"wa": 0.0, "Omega_b": 0.049, "A_s": 2.1e-9, "n_s": 0.96,
                                           "m_nu": 0.058}), n=20, z=[0.0, 1.0, 2.0, 3.0],
                           settings=FitSettings(network=TrainConfig(hidden=(4,), epochs=10), validation_fraction=0),
                           n_test=0)
    with pytest.raises(ValueError, match="not the LCDM slice"):
        HybridEmulator(cola=cola, ee2_lcdm=other)


def test_round_trip(hybrid, tmp_path):
    path = hybrid.save(tmp_path / "hybrid.h5")
    back = emulators.load(path)
    assert back.ee2_lcdm is not None and back.ee2_lcdm.info["n_cosmologies"] == 150
    p = {"Omega_m": 0.31, "A_s": 2.2e-9, "w0": -0.85}
    np.testing.assert_array_equal(back.boost(K, [0.0, 1.0], p, ee2="surrogate"),
                                  hybrid.boost(K, [0.0, 1.0], p, ee2="surrogate"))
    with h5py.File(path, "r") as f:
        assert f["ee2_lcdm"].attrs["kind"] == b"boost"


def test_shear_power_uses_the_surrogate(hybrid, tmp_path):
    path = hybrid.save(tmp_path / "hybrid.h5")
    auto = EmulatorPower(path=str(path))
    exact = EmulatorPower(path=str(path), ee2="exact")
    assert auto.describe()["ee2"] == "surrogate" and exact.describe()["ee2"] == "exact"
    cosmo = Cosmology(Omega_m=0.3, A_s=2.0e-9, w0=-0.9, wa=0.0, m_nu=hybrid.fixed["m_nu"])
    # this hybrid has no linear emulator, so the source evaluates it inside its own k
    # range only (power-law beyond, which would amplify edge differences)
    k = np.geomspace(*hybrid.k_range, 60)
    z = np.array([0.1, 0.8, 1.9])
    diff = np.abs(np.expm1(auto.log_pk(cosmo, k, z) - exact.log_pk(cosmo, k, z)))
    v = hybrid.ee2_lcdm.info["validation"]
    assert 0 < diff.max() < 1.5 * max(v["k_le_1"]["max"], v["k_1_to_10"]["max"])
    with pytest.raises(LikelihoodError, match="carries no EE2 surrogate"):
        EmulatorPower(path="x", emulator=make_hybrid(hybrid.cola), ee2="surrogate")
    with pytest.raises(LikelihoodError, match="power.ee2: must be one of"):
        EmulatorPower(path=str(path), ee2="fast")


@pytest.mark.slow
def test_production_surrogate_accuracy():
    """The surrogate the train stage makes by default (3000 cosmologies, 5 parameters,
    31 redshifts): over 300 held-out cosmologies, at the training redshifts and between
    them, the worst |B/B_EE2 - 1| of 95 % of the cosmologies stays within half the
    hybrid's 1 % error budget, for k <= 1 h/Mpc and up to EE2's 9.4 h/Mpc, z <= 3.
    (Measured: p95 0.36 % and 0.25 %; in the LSST-Y1 shear likelihood the surrogate
    moves chi^2 by at most 6e-3 against exact EE2, benchmarks/bench_shear.py.)"""
    names = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0")
    space = ParameterSpace(names, [EE2_BOX[n][0] for n in names], [EE2_BOX[n][1] for n in names],
                           {"wa": 0.0, "m_nu": 0.058})
    from cosmopipe.pipeline.stages.emulators import SurrogateSettings

    default = SurrogateSettings()
    sur = train_ee2_lcdm(space, n=default.n, z=np.linspace(0.0, 3.0, default.nz), settings=default.fit,
                         n_test=default.n_test)
    v = sur.info["validation"]
    assert v["k_le_1"]["p95"] < 5e-3
    assert v["k_1_to_10"]["p95"] < 5e-3
