"""Hooks of the shear likelihood for the sample stage (derived sigma8/S8, the
fiducial point), sigma8 from a tabulated P(k) against CAMB, and the hybrid
emulator evaluated beyond its COLA k range."""
import math
import warnings

import numpy as np
import pytest

from cosmopipe.emulators.ee2 import ee2_boost
from cosmopipe.likelihoods.base import likelihood_factory
from cosmopipe.likelihoods.shear.limber import nuisance_names
from cosmopipe.likelihoods.theory.matter_power import EmulatorPower, camb_sigma8, sigma8_from_pk
from cosmopipe.schema import Section
from cosmopipe.sims.cosmology import Cosmology


@pytest.fixture(scope="module")
def camb_z0():
    """CAMB linear P_tot at z = 0 to 10 h/Mpc and CAMB's own sigma8 (one run, ~1 s)."""
    import camb

    from cosmopipe.sims.linear import camb_params

    cosmo = Cosmology(Omega_m=0.3, h=0.7, A_s=2.0e-9)
    res = camb.get_results(camb_params(cosmo, [0.0], kmax=10.0))
    return cosmo, res, float(res.get_sigma8_0())


def test_sigma8_from_pk_matches_camb(camb_z0):
    cosmo, res, sigma8 = camb_z0
    interp = res.get_matter_power_interpolator(nonlinear=False, var1="delta_tot", var2="delta_tot",
                                               hubble_units=True, k_hunit=True)
    k = np.geomspace(1e-4, 10.0, 400)
    # CAMB's sigma8 integrates its own transfer functions: 0.1 % between the two.
    assert sigma8_from_pk(k, interp.P(0.0, k)) == pytest.approx(sigma8, rel=1e-3)
    assert camb_sigma8(cosmo) == pytest.approx(sigma8, rel=1e-3)
    with pytest.raises(ValueError, match="too short"):
        sigma8_from_pk(k[k > 0.1], interp.P(0.0, k[k > 0.1]))


@pytest.fixture(scope="module")
def table_likelihood(tmp_path_factory):
    """Likelihood on a fixed BBKS table (no CAMB for the data), mock at a non-default fiducial."""
    k = np.geomspace(1e-5, 1e4, 361)
    z = np.linspace(0.0, 4.0, 41)
    q = k / 0.21
    t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3 + (6.71 * q) ** 4) ** -0.25
    pk = 1.9e7 * k * t**2 / (1 + z[:, None]) ** 1.6
    path = tmp_path_factory.mktemp("power") / "table.npz"
    np.savez(path, k=k, z=z, pk=pk)
    cfg = {"power": {"source": "table", "path": str(path)},
           "data": {"power": {"source": "table", "path": str(path)},
                    "fiducial": {"Omega_m": 0.3, "h": 0.7, "A_s": 2.0e-9, "A_IA": 0.3, "m_2": 0.01}}}
    run = tmp_path_factory.mktemp("run")
    return likelihood_factory("lsst_y1_shear")(Section(cfg, "sample.likelihoods.lsst_y1_shear", "w.yaml"),
                                               {"run_dir": str(run), "data_dir": None})


def test_derived_sigma8_and_s8(table_likelihood, camb_z0):
    cosmo, _, sigma8 = camb_z0
    # the table ignores the cosmology; sigma8 comes from CAMB at the point asked
    out = table_likelihood.derived(None, {"Omega_m": 0.3, "h": 0.7, "A_s": 2.0e-9, "dz_1": 0.01})
    assert out["sigma8"] == pytest.approx(sigma8, rel=1e-3)
    assert out["S8"] == pytest.approx(out["sigma8"], rel=1e-12)   # Omega_m = 0.3
    other = table_likelihood.derived(None, {"Omega_m": 0.36, "h": 0.7, "A_s": 2.0e-9})
    assert other["S8"] == pytest.approx(other["sigma8"] * math.sqrt(1.2), rel=1e-12)


def test_fiducial_is_the_truth_of_the_mock(table_likelihood, camb_z0):
    _, _, sigma8 = camb_z0
    fid = table_likelihood.fiducial
    expected = {**Cosmology(Omega_m=0.3, h=0.7, A_s=2.0e-9).to_dict(), **{n: 0.0 for n in nuisance_names(5)},
                "A_IA": 0.3, "m_2": 0.01}
    for name, value in expected.items():
        assert fid[name] == pytest.approx(value, rel=1e-12, abs=0.0), name
    assert fid["sigma8"] == pytest.approx(sigma8, rel=1e-3)
    assert fid["S8"] == pytest.approx(fid["sigma8"], rel=1e-12)

    from cosmopipe.pipeline.stages.posterior import _fiducial

    class Settings:
        likelihoods = ()

    assert _fiducial(Settings(), [table_likelihood]) == fid   # what the plots mark


# -- hybrid emulator beyond its COLA range ------------------------------------------------
class _Linear:
    """Stand-in linear emulator: BBKS x growth, over 1e-4..10 h/Mpc and z 0..3."""
    species = "tot"
    k_range = (1e-4, 10.0)
    z_range = (0.0, 3.0)

    def log_pk(self, k, z, params):
        k = np.asarray(k, float)
        q = k / (params["Omega_m"] * params["h"])
        t = np.log(1 + 2.34 * q) / (2.34 * q) * (1 + 3.89 * q + (16.1 * q) ** 2 + (5.46 * q) ** 3
                                                 + (6.71 * q) ** 4) ** -0.25
        return np.log(params["A_s"] / 2e-9 * 2e7 * k * t**2)[None, :] - 1.6 * np.log1p(np.asarray(z))[:, None]


class _Cola:
    """Stand-in COLA boost over 0.05..1 h/Mpc: ln B grows with k, more so for w0 > -1."""
    k_range = (0.05, 1.0)
    z_range = (0.0, 3.0)

    def log_boost(self, k, z, params):
        return (0.3 + params["w0"]) * np.log(np.asarray(k) / 0.01)[None, :] / (1 + np.asarray(z))[:, None]


class _Hybrid:
    kind = "hybrid"
    params = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0", "wa", "m_nu")
    ee2_lcdm = None

    def ln_ee2_lcdm(self, theta_lcdm, z, k, ee2="exact"):
        assert ee2 == "exact"
        return np.log(ee2_boost(k, z, dict(zip(self.params, theta_lcdm[0]))))[None]

    def __init__(self):
        self.cola, self.linear = _Cola(), _Linear()
        self.k_range, self.z_range = self.cola.k_range, self.cola.z_range

    def log_cola_ratio(self, k, z, params):
        """What COLA adds to EE2 (emulators.hybrid.HybridEmulator.log_cola_ratio)."""
        return self.cola.log_boost(k, z, params) - self.cola.log_boost(k, z, {**params, "w0": -1.0})

    def pnl(self, k, z, params):
        lcdm = {**params, "w0": -1.0}
        ratio = self.log_cola_ratio(k, z, params)
        return np.exp(self.linear.log_pk(k, z, params) + np.log(ee2_boost(k, z, lcdm)) + ratio)


def test_hybrid_is_extended_with_ee2_and_a_constant_cola_ratio():
    power = EmulatorPower(path="stand-in", emulator=_Hybrid())
    cosmo = Cosmology(w0=-0.85, wa=0.0)
    lcdm = cosmo.replace(w0=-1.0).to_dict()
    k = np.geomspace(1e-3, 9.0, 200)
    z = np.array([0.0, 0.7, 2.5])
    got = power.log_pk(cosmo, k, z)
    inside = (k >= 0.05) & (k <= 1.0)
    # inside the COLA range: exactly the hybrid's own pnl
    np.testing.assert_allclose(got[:, inside], np.log(_Hybrid().pnl(k[inside], z, cosmo.to_dict())), rtol=0, atol=1e-10)
    # above: P_lin x B_EE2(LCDM) x the ratio at k = 1 h/Mpc (not a power law in P)
    above = k > 1.0
    ratio_edge = 0.15 * np.log(1.0 / 0.01) / (1 + z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = (_Linear().log_pk(k[above], z, cosmo.to_dict()) + np.log(ee2_boost(k[above], z, lcdm))
                    + ratio_edge[:, None])
    np.testing.assert_allclose(got[:, above], expected, rtol=0, atol=1e-10)
    # at w0 = -1 the ratio vanishes and the hybrid is P_lin x B_EE2 at every k
    base = power.log_pk(Cosmology(wa=0.0), k, z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lin_ee2 = _Linear().log_pk(k, z, lcdm) + np.log(ee2_boost(k, z, lcdm))
    np.testing.assert_allclose(base, lin_ee2, rtol=0, atol=1e-10)


def test_emulator_sigma8_uses_the_linear_emulator(camb_z0):
    cosmo = Cosmology(Omega_m=0.3, h=0.7, A_s=2.0e-9, wa=0.0)
    power = EmulatorPower(path="stand-in", emulator=_Hybrid())
    k = np.geomspace(1e-4, 10.0, 512)
    # the top-hat integral of the stand-in's z = 0 spectrum, not a CAMB run
    assert power.sigma8(cosmo) == pytest.approx(sigma8_from_pk(k, np.exp(_Linear().log_pk(k, [0.0],
                                                                                        cosmo.to_dict())[0])),
                                                rel=1e-9)


@pytest.mark.slow
def test_ee2_source_reuses_its_camb_run_for_sigma8(monkeypatch):
    from cosmopipe.likelihoods.shear import power as power_module

    cosmo = Cosmology(Omega_m=0.3, wa=0.0)
    source = power_module.EE2Power()
    source.log_pk(cosmo, np.geomspace(1e-3, 5.0, 50), np.array([0.0, 1.0]))
    expected = camb_sigma8(cosmo)
    # a second CAMB run would go through camb_sigma8: forbid it
    monkeypatch.setattr(power_module, "camb_sigma8", lambda c: pytest.fail("CAMB ran again for sigma8"))
    assert source.sigma8(cosmo) == pytest.approx(expected, rel=1e-4)
