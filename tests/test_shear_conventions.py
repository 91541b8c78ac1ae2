"""Conventions on which shear codes differ (likelihoods.shear.conventions): presets,
bad input, and that each option does what it says, checked against independent
numbers (file spacing, CAMB's own settings, a straight line in ln k)."""
import logging

import numpy as np
import pytest

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.shear.conventions import OPTIONS, PRESETS, Conventions, conventions_from
from cosmopipe.likelihoods.shear.survey import read_nz_file
from cosmopipe.sims.cosmology import Cosmology


def test_presets_and_overrides():
    assert conventions_from("project") == Conventions()
    cl = conventions_from("cosmolike")
    assert (cl.xi_method, cl.xi_weights, cl.nz_rows, cl.nla_c1rho, cl.neutrinos, cl.limber_prefactor,
            cl.boost_extrapolation) == \
        ("curved", "cosmolike", "lower_edges", "cosmolike", "one_massive", "none", "boost_linear_log_k")
    assert Conventions().limber_prefactor == "spin2"
    assert cl.c1_rho_crit == 0.01389 and Conventions().c1_rho_crit == 0.0134
    assert conventions_from("cosmolike", {"xi_method": "flat"}).xi_method == "flat"
    assert set(PRESETS) == {"project", "cosmolike"}


@pytest.mark.parametrize("call, match", [
    (lambda: conventions_from("ccl"), "preset: must be one of project, cosmolike, got 'ccl'"),
    (lambda: conventions_from("project", {"nz": "centres"}), "unknown key 'nz'; allowed: xi_method"),
    (lambda: conventions_from("project", {"nz_rows": "edges"}), "nz_rows: must be one of centres, lower_edges"),
    (lambda: conventions_from("project", {"neutrinos": "normal"}),
     "neutrinos: must be one of three_degenerate, one_massive"),
])
def test_bad_conventions_name_the_allowed_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_workflow_section_rejects_unknown_preset_and_value():
    from cosmopipe.likelihoods.shear import from_config
    from cosmopipe.schema import ConfigError

    with pytest.raises(ConfigError, match="preset.*one of project, cosmolike"):
        from_config({"preset": "camb"})
    with pytest.raises(ConfigError, match="boost_extrapolation.*one of constant, boost_linear_log_k, linear_log_k"):
        from_config({"conventions": {"boost_extrapolation": "power_law"}})
    with pytest.raises(ConfigError, match="unknown convention; allowed: xi_method"):
        from_config({"conventions": {"neutrino": "one_massive"}})


def test_nz_rows_lower_edges_shift_by_half_the_row_spacing(tmp_path):
    z = np.linspace(0.0, 3.0, 61)
    path = tmp_path / "bins.nz"
    np.savetxt(path, np.column_stack([z, np.exp(-((z - 1) / 0.3) ** 2), np.exp(-((z - 2) / 0.3) ** 2)]))
    zc, nc = read_nz_file(path, rows="centres")
    ze, ne = read_nz_file(path, rows="lower_edges")
    np.testing.assert_allclose(zc, z)
    np.testing.assert_allclose(ze, z + 0.025)
    np.testing.assert_array_equal(nc, ne)
    with pytest.raises(LikelihoodError, match="n\\(z\\) rows: must be one of centres, lower_edges"):
        read_nz_file(path, rows="middle")


def test_nla_constant_scales_only_the_alignment_kernel():
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.theory.matter_power import TablePower
    from cosmopipe.likelihoods.shear.survey import lsst_y1_survey

    k = np.geomspace(1e-4, 1e2, 100)
    z = np.linspace(0, 4, 9)
    power = TablePower(k=k, z=z, pk=np.outer(np.ones(z.size), 1e4 * k / (1 + (k / 0.02) ** 3)))
    ia = {}
    for name in ("0.0134", "cosmolike"):
        model = shear_model(lsst_y1_survey(), power, conventions=Conventions(nla_c1rho=name), curved_lmax=1000)
        cosmo, nuis = model.split({"A_IA": 1.0})
        _, nuis0 = model.split({"A_IA": 0.0})
        ia[name] = model.kernels(cosmo, nuis)["g"] - model.kernels(cosmo, nuis0)["g"]
    # g(A=1) - g(A=0) carries the round-off of the lensing part: atol relative to the IA peak
    np.testing.assert_allclose(ia["cosmolike"], ia["0.0134"] * 0.01389 / 0.0134, rtol=1e-9,
                               atol=1e-9 * np.abs(ia["0.0134"]).max())


@pytest.mark.parametrize("setting, states", [("three_degenerate", 3), ("one_massive", 1)])
def test_neutrino_setting_reaches_camb(setting, states):
    from cosmopipe.sims.linear import camb_params

    cosmo = Cosmology(m_nu=0.06)
    pars = camb_params(cosmo, neutrinos=setting)
    assert pars.num_nu_massive == states
    # Omega_m is kept whatever the split
    assert (pars.ombh2 + pars.omch2 + pars.omnuh2) / cosmo.h**2 == pytest.approx(cosmo.Omega_m, rel=1e-10)
    with pytest.raises(ValueError, match="neutrinos: must be one of three_degenerate, one_massive"):
        camb_params(cosmo, neutrinos="inverted")


def test_power_sources_carry_the_conventions():
    from cosmopipe.likelihoods.theory.matter_power import power_source

    conv = conventions_from("cosmolike")
    ee2 = power_source("ee2", conventions=conv)
    assert (ee2.neutrinos, ee2.boost_extrapolation) == ("one_massive", "boost_linear_log_k")
    assert power_source("hmcode", conventions=conv).describe()["neutrinos"] == "one_massive"


def test_boost_extrapolation_linear_in_ln_k_beyond_ee2():
    from cosmopipe.likelihoods.theory.matter_power import EE2Power

    cosmo = Cosmology()
    k = np.geomspace(0.1, 80.0, 60)
    z = np.array([0.0, 1.0])
    const = EE2Power(boost_extrapolation="constant")._log_boost(k, z, cosmo)
    lin = EE2Power(boost_extrapolation="linear_log_k")._log_boost(k, z, cosmo)
    k_edge = 10**0.973
    inside = k <= k_edge
    np.testing.assert_allclose(lin[:, inside], const[:, inside], rtol=0, atol=1e-14)
    out = ~inside
    slope = np.diff(lin[:, out], axis=1) / np.diff(np.log(k[out]))
    np.testing.assert_allclose(slope, slope[:, :1] * np.ones_like(slope), rtol=1e-9)
    assert np.all(np.abs(lin[:, -1] - const[:, -1]) > 1e-3)  # a real change at 80 h/Mpc
    with pytest.raises(LikelihoodError,
                       match="boost_extrapolation: must be one of constant, boost_linear_log_k, linear_log_k"):
        EE2Power(boost_extrapolation="quadratic")


def test_boost_extrapolation_boost_linear_in_ln_k_beyond_ee2():
    """'boost_linear_log_k' (Cocoa's EE2 vectors since 2023-09-26): B itself, not ln B, is a
    straight line in ln k beyond 10^0.973 h/Mpc, through the last two points of Cocoa's grid."""
    from cosmopipe.likelihoods.theory.matter_power import EE2Power

    cosmo = Cosmology()
    k = np.geomspace(0.1, 80.0, 60)
    z = np.array([0.0, 1.0])
    const = EE2Power(boost_extrapolation="constant")._log_boost(k, z, cosmo)
    ln_b = EE2Power(boost_extrapolation="boost_linear_log_k")._log_boost(k, z, cosmo)
    ln_lin = EE2Power(boost_extrapolation="linear_log_k")._log_boost(k, z, cosmo)
    inside = k <= 10**0.973
    np.testing.assert_allclose(ln_b[:, inside], const[:, inside], rtol=0, atol=1e-14)
    b = np.exp(ln_b[:, ~inside])
    slope = np.diff(b, axis=1) / np.diff(np.log(k[~inside]))
    np.testing.assert_allclose(slope, slope[:, :1] * np.ones_like(slope), rtol=1e-9)
    # same value and slope at the edge as the ln B line, so below it at large k (B grows there)
    assert np.all(ln_b[:, -1] < ln_lin[:, -1] - 1e-3)


def test_limber_prefactor_none_drops_the_spin2_factor():
    """limber_prefactor 'none' (CosmoLike's TATT path, IA models 5/6): C_ell is the bare Limber
    integral, i.e. the spin2 C_ell divided by (l-1)l(l+1)(l+2)/(l+1/2)^4; xi+ rises most at large angles."""
    from cosmopipe.likelihoods.shear.hankel import spin2_limber_factor
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.shear.survey import lsst_y1_survey
    from cosmopipe.likelihoods.theory.matter_power import TablePower

    k = np.geomspace(1e-4, 1e3, 120)
    z = np.linspace(0, 4, 9)
    power = TablePower(k=k, z=z, pk=np.outer(1 / (1 + z) ** 2, 1e4 * k / (1 + (k / 0.02) ** 2.6)))
    models = {name: shear_model(lsst_y1_survey(), power, conventions=Conventions(limber_prefactor=name),
                                curved_lmax=3000) for name in ("spin2", "none")}
    ell = np.array([2.0, 10.0, 100.0, 1000.0])
    ratio = models["none"].cl({}, ell) / models["spin2"].cl({}, ell)
    np.testing.assert_allclose(ratio, np.broadcast_to(1 / spin2_limber_factor(ell), ratio.shape), rtol=1e-12)
    xp_none, _ = models["none"].xi({})
    xp_spin2, _ = models["spin2"].xi({})
    r = xp_none / xp_spin2
    assert np.all(r[:, -5] > r[:, 0]) and np.all(r[:, 0] > 1.0) and np.all(r[:, 0] < 1.01)
    with pytest.raises(ValueError, match="limber_prefactor: must be one of spin2, none"):
        Conventions(limber_prefactor="kappa")


class _Grid:
    """Analytic COLA emulator for the hybrid's response: ln B = p * k on k in [0.01, 1] h/Mpc."""
    k_range = (0.01, 1.0)

    def log_boost(self, k, z, params):
        return np.outer(np.ones(np.size(z)), params["w0"] * np.asarray(k))


class _Linear:
    k_range, z_range = (1e-4, 10.0), (0.0, 3.0)

    def log_pk(self, k, z, params):
        return np.zeros((np.size(z), np.size(k)))


class _Hybrid:
    kind = "hybrid"
    params = ("w0",)
    ee2_lcdm = None
    cola, linear = _Grid(), _Linear()
    z_range = (0.0, 3.0)

    def pnl(self, k, z, params, ee2="exact"):
        raise AssertionError("the hybrid path must not call pnl")

    def log_cola_ratio(self, k, z, params):
        """What COLA adds to EE2 (emulators.hybrid.HybridEmulator.log_cola_ratio)."""
        return self.cola.log_boost(k, z, params) - self.cola.log_boost(k, z, {**params, "w0": -1.0})

    def ln_ee2_lcdm(self, theta, z, k, mode):
        return np.zeros((1, np.size(z), np.size(k)))


class _HybridWithTail(_Hybrid):
    """... carrying an HMcode tail: ln R continues as (w0 + 1) ln(k / k_max) above k_max = 1."""
    hmcode_tail = object()

    def log_tail(self, k, z, params):
        k = np.asarray(k, dtype=float)
        return np.outer(np.ones(np.size(z)), np.where(k > 1.0, (params["w0"] + 1) * np.log(k / 1.0), 0.0))


@pytest.mark.parametrize("response", ["constant", "unity", "hmcode", "auto"])
def test_cola_response_above_kmax(response, caplog):
    import cosmopipe.likelihoods.theory.matter_power as power
    power._logged_cola_edge = False
    hybrid = _HybridWithTail() if response in ("hmcode", "auto") else _Hybrid()
    src = power.EmulatorPower(path="fake.h5", emulator=hybrid, cola_response=response)
    k = np.array([0.5, 1.0, 2.0, 5.0])
    cosmo = Cosmology(w0=-0.9)
    with caplog.at_level(logging.INFO, logger="cosmopipe.shear"):
        lnp = src._hybrid_log_pk(cosmo, k, np.array([0.0]))
        src._hybrid_log_pk(cosmo, k, np.array([0.0]))
    # ratio ln B(w0) - ln B(-1) = (w0 + 1) k inside; above k_max = 1 held at its edge value,
    # 0, or the edge value plus the tail (auto: the file has a tail, so hmcode)
    edge = (cosmo.w0 + 1.0) * 1.0
    above = {"constant": [edge, edge], "unity": [0.0, 0.0],
             "hmcode": [edge + (cosmo.w0 + 1) * np.log(2.0), edge + (cosmo.w0 + 1) * np.log(5.0)]}
    expect = [(cosmo.w0 + 1) * 0.5, edge] + above["hmcode" if response == "auto" else response]
    np.testing.assert_allclose(lnp[0], expect, rtol=1e-12)
    assert sum("COLA response above its k_max" in r.getMessage() for r in caplog.records) == 1


def test_cola_response_choices_and_default():
    import cosmopipe.likelihoods.theory.matter_power as power
    with pytest.raises(LikelihoodError, match="cola_response: must be one of auto, hmcode, constant, unity"):
        power.EmulatorPower(path="fake.h5", emulator=_Hybrid(), cola_response="linear")
    with pytest.raises(LikelihoodError, match="carries no HMcode tail"):
        power.EmulatorPower(path="fake.h5", emulator=_Hybrid(), cola_response="hmcode")
    assert power.EmulatorPower(path="fake.h5", emulator=_Hybrid()).cola_response == "constant"
    assert power.EmulatorPower(path="fake.h5", emulator=_HybridWithTail()).cola_response == "hmcode"


def test_options_table_matches_dataclass():
    assert set(OPTIONS) == set(Conventions().to_dict())
