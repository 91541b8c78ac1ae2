"""The theory layer as components: the parameter vocabulary against CAMB's own derived
values, and the resolver's wiring of likelihood needs to providers."""
from __future__ import annotations

import math

import pytest

from cosmopipe.likelihoods.theory import make_theory, resolve
from cosmopipe.likelihoods.theory.camb_theory import camb_theory
from cosmopipe.likelihoods.theory.contract import TheorySetupError
from cosmopipe.likelihoods.theory.params import complete, ee2_to_planck, planck_to_ee2
from cosmopipe.schema import ConfigError, Section

EE2 = {"Omega_m": 0.319, "Omega_b": 0.049, "h": 0.67, "A_s": 2.1e-9, "n_s": 0.96, "m_nu": 0.06}


def test_ee2_to_planck_matches_camb_derived():
    """CAMB run with the translated Planck-style point returns the EE2 numbers as its own derived ones."""
    planck = ee2_to_planck(EE2)
    res = camb_theory(planck, {"rdrag": True})
    d = res.derived
    assert d["Omega_m"] == pytest.approx(EE2["Omega_m"], rel=1e-10)
    assert d["Omega_b"] == pytest.approx(EE2["Omega_b"], rel=1e-12)
    assert d["h"] == pytest.approx(EE2["h"], rel=1e-12)
    assert d["As"] == pytest.approx(EE2["A_s"], rel=1e-12)
    # Back again, and through CAMB's theta_*: H0 -> 100 theta_* -> H0 with CAMB's solve.
    back = planck_to_ee2({**planck, "H0": d["H0"]})
    for k, v in EE2.items():
        assert back[k] == pytest.approx(v, rel=1e-10)
    theta_mc = d["theta_MC_100"]
    solved = camb_theory({k: v for k, v in planck.items() if k != "H0"} | {"theta_MC_100": theta_mc}, {"rdrag": True})
    assert solved.H0 == pytest.approx(100 * EE2["h"], rel=2e-5)


def test_theta_without_camb_is_a_clear_error():
    with pytest.raises(TheorySetupError, match="theta_MC_100 is given.*CAMB"):
        planck_to_ee2({"ombh2": 0.022, "omch2": 0.12, "theta_MC_100": 1.041, "logA": 3.05, "ns": 0.965})
    # complete() adds nothing it cannot derive without CAMB
    partial = {"ombh2": 0.022, "omch2": 0.12, "theta_MC_100": 1.041, "logA": 3.05, "ns": 0.965}
    assert complete(partial) == partial


def test_resolver_names_the_missing_provider():
    with pytest.raises(ConfigError, match="likelihood lsst_y1_shear needs pk_nl.*providers of pk_nl: camb, ee2"):
        resolve(["emulator"], [("lsst_y1_shear", {"pk_nl": {"kmax": 20}})])
    got = resolve(["ee2", "camb"], [("shear", {"pk_nl": {"kmax": 20}, "sigma8": True}), ("bao", {"rdrag": True})])
    assert got == {"ee2": [{"pk_nl": {"kmax": 20}, "sigma8": True}], "camb": [{"rdrag": True}]}


def test_hmcode_provider_agrees_with_camb_pk_nl():
    """P_nl from the hmcode power provider (EE2 names) against camb_theory's own (Planck names)."""
    import numpy as np

    from types import SimpleNamespace

    from cosmopipe.likelihoods.theory.providers import PowerProvider

    theory = make_theory(Section({"provider": "hmcode"}, "sample.theory", "t.yaml"),
                         {"requirements": [{"pk_nl": True, "sigma8": True}], "names": ["x"]})
    assert theory.params()[:2] == ("Omega_m", "Omega_b")
    # camb_theory's neutrinos: one massive eigenstate; the same for the provider here
    one = PowerProvider.named("hmcode", conventions=SimpleNamespace(neutrinos="one_massive"))
    theory = type(theory)("hmcode", theory.requirements, None, ((one, theory.requirements),))
    res = theory({**EE2, "w0": -1.0, "wa": 0.0})
    assert "ombh2" in res.params and res.params["H0"] == pytest.approx(67.0)
    k, z = np.geomspace(0.01, 5.0, 30), np.array([0.0, 1.0])
    ref = camb_theory(res.params, {"pk_nl": {"kmax": 6.0, "z": [0.0, 1.0]}, "sigma8": True})
    np.testing.assert_allclose(res.pk_nl(k, z), ref.pk_nl(k, z), rtol=1e-3)
    # camb_sigma8 runs the transfer functions to 10 h/Mpc (converged to ~1e-4 there), camb_theory
    # with its own accuracy settings: agreement to a few 1e-4 is what the two set-ups promise
    assert res.sigma8 == pytest.approx(ref.sigma8, rel=5e-4)
    assert res.S8 == pytest.approx(res.sigma8 * math.sqrt(EE2["Omega_m"] / 0.3), rel=1e-12)
