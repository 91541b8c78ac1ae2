"""HMcode-2020's response above the COLA k_max (emulators.hmcode_tail): its physics
against EuclidEmulator2's own w0waCDM response, and the emulator's path through
training, the hybrid file and the shear power source."""
import warnings

import numpy as np
import pytest

from cosmopipe import emulators
from cosmopipe.emulators import hmcode_tail
from cosmopipe.emulators.boost import train_boost
from cosmopipe.emulators.ee2 import EE2_BOX, ee2_boost
from cosmopipe.emulators.hybrid import make_hybrid
from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.synthetic import ee2_dataset
from cosmopipe.emulators.training import FitSettings
from cosmopipe.likelihoods.theory.matter_power import EmulatorPower
from cosmopipe.sims import Cosmology

K_C = 1.0  # h/Mpc: the synthetic COLA emulator's k_max


def _ee2_tail(params, z, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ln_r = np.log(ee2_boost(k, z, params)) - np.log(ee2_boost(k, z, {**params, "w0": -1.0, "wa": 0.0}))
    return ln_r - ln_r[:, :1]


@pytest.mark.parametrize("w0", [-0.8, -1.2])
def test_hmcode_tail_follows_ee2s_response(w0):
    """Above k_c = 1.235 h/Mpc EE2's ln R changes by 8-12 % at w0 = -0.8 / -1.2 (z <= 2): holding R
    at its k_c value misses all of it; HMcode's shape (two CAMB runs) gets it to 1.2 %."""
    k = np.geomspace(1.235, 9.0, 12)
    z = np.array([0.0, 0.5, 1.0, 2.0])
    params = {**Cosmology().to_dict(), "w0": w0}
    tail = hmcode_tail._tail_chunk([params], z, k)[0]
    ref = _ee2_tail(params, z, k)
    assert np.all(tail[:, 0] == 0.0)
    assert np.abs(ref).max() > 0.05
    assert np.abs(tail - ref).max() < 0.15 * np.abs(ref).max()
    # exactly zero on the LCDM slice: both CAMB runs are the same cosmology
    lcdm = hmcode_tail._tail_chunk([{**params, "w0": -1.0}], z, k)[0]
    assert np.abs(lcdm).max() == 0.0


def _analytic_tail(dicts, z, k):
    """A smooth stand-in for CAMB: T = (0.1 (w0 + 1) / (1 + z) + 0.02 wa) ln(k / k_c)."""
    a = np.array([[0.1 * (d["w0"] + 1.0) / (1.0 + zi) + 0.02 * d["wa"] for zi in z] for d in dicts])
    return a[:, :, None] * np.log(k / k[0])[None, None, :]


class _WithLinear:
    """The hybrid with a flat linear power (the synthetic COLA emulator has none)."""
    kind = "hybrid"

    class linear:
        k_range, z_range = (1e-4, 10.0), (0.0, 3.0)

        @staticmethod
        def log_pk(k, z, params):
            return np.zeros((np.size(z), np.size(k)))

    def __init__(self, emu):
        self._emu = emu

    def __getattr__(self, name):
        return getattr(self._emu, name)


@pytest.fixture(scope="module")
def hybrid_with_tail():
    box = {name: EE2_BOX[name] for name in ("Omega_m", "w0", "wa")}
    ds = ee2_dataset(24, [0.0, 1.0, 2.0], np.geomspace(0.02, K_C, 20), box, seed=3)
    cola = train_boost(ds, FitSettings(network=TrainConfig(hidden=(16, 16), epochs=300)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hmcode_tail, "_tail_chunk", _analytic_tail)
        tail = hmcode_tail.train_hmcode_tail(cola.space, K_C, n=60, z=np.linspace(0.0, 2.0, 5), seed=2, n_test=10,
                                             nk=8, settings=FitSettings(network=TrainConfig(hidden=(16, 16),
                                                                                            epochs=2000)))
    return make_hybrid(cola, None, tail)


def test_tail_travels_in_the_hybrid_file_and_continues_R(hybrid_with_tail, tmp_path):
    v = hybrid_with_tail.hmcode_tail.info["validation"]
    assert v["n_test"] == 10 and v["max_abs_dR_over_R"]["p95"] < 0.01
    path = hybrid_with_tail.save(tmp_path / "hybrid.h5")
    emu = emulators.load(path)
    assert emu.hmcode_tail is not None and emu.hmcode_tail.info["k_c"] == K_C
    assert "HMcode-2020's shape to 10 h/Mpc" in repr(emu)    # the short print says R goes on above k_max
    params = {"Omega_m": 0.31, "w0": -0.8, "wa": 0.3}
    k = np.array([0.5, K_C, 2.0, 5.0, 10.0, 30.0])
    z = np.array([0.0, 1.0])
    got = emu.log_tail(k, z, params)
    want = _analytic_tail([params], z, np.concatenate([[K_C], np.clip(k, K_C, 10.0)]))[0][:, 1:]
    assert np.all(got[:, :2] == 0.0)             # at and below k_c: the COLA response itself
    np.testing.assert_allclose(got, want, atol=2e-3)
    np.testing.assert_array_equal(got[:, -1], got[:, -2])  # held at its 10 h/Mpc value above

    # the power source continues with it by default ('auto'), on top of R at k_c
    assert EmulatorPower(path=str(path)).cola_response == "hmcode"
    src, const = (EmulatorPower(path=str(path), emulator=_WithLinear(emu), cola_response=c) for c in ("auto", "constant"))
    assert src.cola_response == "hmcode"
    cosmo = Cosmology(**{**Cosmology().to_dict(), **params})
    kk = np.geomspace(0.1, 8.0, 30)
    diff = src._hybrid_log_pk(cosmo, kk, z) - const._hybrid_log_pk(cosmo, kk, z)
    np.testing.assert_allclose(diff, emu.log_tail(kk, z, params), rtol=0, atol=1e-12)


def test_the_shipped_hybrid_carries_the_tail():
    """The shipped w0wa_cola128 continues R above its k_max, and says so in its listing."""
    from cosmopipe.emulators.registry import model_info
    info = {m["name"]: m for m in model_info()}
    assert info["w0wa_cola128"]["tail_k_max"] == 10.0
    emu = emulators.load("w0wa_cola128")
    assert emu.hmcode_tail is not None and emu.hmcode_tail.info["k_c"] == emu.k_range[1]
