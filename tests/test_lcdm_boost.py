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
    with pytest.raises(LikelihoodError, match="ee2_lcdm or hmcode_hybrid"):
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
