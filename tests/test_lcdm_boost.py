"""The LCDM-boost shortcuts for w0waCDM (likelihoods.theory.lcdm_boost) against
EuclidEmulator2, which emulates w0waCDM itself: exactly EE2 on the LCDM slice, and
the hybrid form closer to EE2 than the LCDM boost used unchanged where dark energy
changes the boost (arXiv:2510.14888's comparison)."""
from __future__ import annotations

import numpy as np
import pytest

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.theory import matter_power
from cosmopipe.likelihoods.theory.lcdm_boost import LCDMBoostPower, lcdm_projection, method_source
from cosmopipe.sims.cosmology import Cosmology

K = np.geomspace(0.01, 5.0, 40)   # h/Mpc
Z = np.array([0.0, 0.5, 1.0])


def test_lcdm_projection_keeps_everything_but_dark_energy():
    c = Cosmology(Omega_m=0.3, A_s=2.3e-9, w0=-0.8, wa=0.3)
    p = lcdm_projection(c)
    assert (p.w0, p.wa) == (-1.0, 0.0) and p.Omega_m == 0.3 and p.A_s == 2.3e-9 and p.m_nu == c.m_nu


def test_unknown_method_names_the_choices():
    with pytest.raises(LikelihoodError, match="unknown boost model 'halofit'.*hmcode_hybrid"):
        method_source("halofit")
    with pytest.raises(LikelihoodError, match="ee2_lcdm, hmcode_hybrid, ee2_response"):
        LCDMBoostPower(name="ee2")


@pytest.mark.slow
def test_shortcuts_against_ee2():
    """Two CAMB runs with HMcode per cosmology (LCDM point, then w0 = -0.8 and its
    projection), shared by all sources through the run cache."""
    matter_power._CAMB_CACHE.clear()
    lcdm = Cosmology()
    ref = method_source("ee2").log_pk(lcdm, K, Z)
    for name in ("ee2_lcdm", "hmcode_hybrid"):
        np.testing.assert_allclose(method_source(name).log_pk(lcdm, K, Z), ref, rtol=0, atol=1e-12)
    # HMcode alone differs from EE2 by a few per cent at k ~ 1 h/Mpc (Mead et al. 2021 vs EE2)
    hm = method_source("hmcode").log_pk(lcdm, K, Z) - ref
    assert 0.003 < np.abs(hm[:, K < 1]).max() < 0.06

    wcdm = Cosmology(w0=-0.8)
    ref = method_source("ee2").log_pk(wcdm, K, Z)
    err = {m: np.abs(method_source(m).log_pk(wcdm, K, Z) - ref)[:, (K > 0.1) & (K < 1)].max()
           for m in ("ee2_lcdm", "hmcode_hybrid")}
    # the LCDM boost misses the dark-energy response (several per cent at w0 = -0.8);
    # HMcode's response on top of it recovers most of it
    assert err["ee2_lcdm"] > 0.02
    assert err["hmcode_hybrid"] < 0.35 * err["ee2_lcdm"]
    # the linear power of every shortcut is CAMB's at theta: on large scales all agree with EE2
    low = K < 0.02
    for m in ("ee2_lcdm", "hmcode_hybrid"):
        assert np.abs(method_source(m).log_pk(wcdm, K, Z) - ref)[:, low].max() < 2e-3


@pytest.mark.slow
def test_response_floor_is_ee2_up_to_the_cola_kmax():
    """The floor models: EE2 itself below the COLA k_max, then B_EE2(theta_LCDM) times
    R at the edge (constant), or times HMcode's R shape (continuous at the edge)."""
    matter_power._CAMB_CACHE.clear()
    wcdm, kc = Cosmology(w0=-0.8, wa=0.2), 1.0
    ref = method_source("ee2").log_pk(wcdm, K, Z)
    lcdm_boost = method_source("ee2_lcdm").log_pk(wcdm, K, Z)
    floor = LCDMBoostPower(name="ee2_response", response_kmax=kc).log_pk(wcdm, K, Z)
    cont = LCDMBoostPower(name="ee2_response_hmcode", response_kmax=kc).log_pk(wcdm, K, Z)
    below, above = K <= kc, K > kc
    np.testing.assert_allclose(floor[:, below], ref[:, below], rtol=0, atol=1e-10)
    np.testing.assert_allclose(cont[:, below], ref[:, below], rtol=0, atol=1e-10)
    # above k_max the floor is the LCDM boost times one k-independent ln R per redshift
    ln_r = floor[:, above] - lcdm_boost[:, above]
    np.testing.assert_allclose(ln_r, ln_r[:, :1].repeat(ln_r.shape[1], axis=1), rtol=0, atol=1e-10)
    assert np.abs(ln_r).max() > 0.01          # the response at w0 = -0.8 is several per cent
    # HMcode's continuation: its ln R(k) - ln R(k_max) on top of the floor, so continuous at k_max
    ln_r_hm = method_source("hmcode_hybrid").log_pk(wcdm, K, Z) - lcdm_boost
    edge = (method_source("hmcode_hybrid").log_pk(wcdm, np.array([kc]), Z)
            - method_source("ee2_lcdm").log_pk(wcdm, np.array([kc]), Z))
    np.testing.assert_allclose((cont - floor)[:, above], ln_r_hm[:, above] - edge, rtol=0, atol=1e-8)
