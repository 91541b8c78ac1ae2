"""Fixed emulator parameters are compared at their own scale (issue 16, item 1).

An absolute slack of 1e-9 once let every A_s between 1.1e-9 and 3.1e-9 pass
as the training value 2.1e-9, which the emulator then silently dropped: a
sampled A_s gave a flat posterior.  Each parameter is checked here at its
real scale, against a 1 % change (refused) and a text round trip (accepted).
"""
from __future__ import annotations

import numpy as np
import pytest

from cosmopipe.emulators.params import ParameterSpace
from cosmopipe.sims.cosmology import Cosmology

DEFAULTS = Cosmology().to_dict()


def _space_fixing(name: str) -> ParameterSpace:
    """Vary one other parameter; fix ``name`` at its EE2-reference value."""
    varied = "Omega_m" if name != "Omega_m" else "h"
    lo, hi = {"Omega_m": (0.24, 0.40), "h": (0.61, 0.73)}[varied]
    return ParameterSpace((varied,), [lo], [hi], {name: DEFAULTS[name]})


@pytest.mark.parametrize("name", [n for n in Cosmology.names()])
def test_fixed_value_is_checked_relative_to_its_own_scale(name):
    space = _space_fixing(name)
    varied = space.names[0]
    value = DEFAULTS[name]
    base = {varied: float(np.mean(space.box[varied]))}
    # Written to text and read back (YAML, CSV, command line): still the same value.
    theta, _ = space.read({**base, name: float(f"{value:.15g}")})
    assert theta.shape == (1, 1)
    # A 1 % change (or 0.01 for a parameter fixed at zero) is a different cosmology.
    other = value * 1.01 if value != 0.0 else 0.01
    with pytest.raises(ValueError, match=rf"parameter {name}=\S+ differs from the value \S+ it was fixed to"):
        space.read({**base, name: other})


@pytest.mark.parametrize("a_s", [1.5e-9, 2.0e-9, 2.11e-9, 2.9e-9])
def test_a_s_away_from_the_training_value_is_refused(a_s):
    space = _space_fixing("A_s")
    with pytest.raises(ValueError, match=r"A_s=\S+ differs from the value 2\.1e-09"):
        space.read({"Omega_m": 0.3, "A_s": a_s})


def test_a_s_refused_in_a_table_names_the_first_bad_value():
    space = _space_fixing("A_s")
    with pytest.raises(ValueError, match=r"A_s=2\.5e-09 differs"):
        space.read({"Omega_m": [0.3, 0.31], "A_s": [2.1e-9, 2.5e-9]})


def test_m_nu_at_neutrino_scale():
    space = _space_fixing("m_nu")
    space.read({"Omega_m": 0.3, "m_nu": 0.058})
    for bad in (0.06, 0.0585, 0.0):
        with pytest.raises(ValueError, match=r"m_nu="):
            space.read({"Omega_m": 0.3, "m_nu": bad})
