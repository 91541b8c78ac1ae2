"""The theory layer: providers that turn parameters into observables, as components.

:mod:`.contract` (TheoryResult, errors), :mod:`.params` (one vocabulary, EE2 <-> Planck),
:mod:`.providers` (CAMB, CAMB with EDE and w bins, the observables emulator, EE2,
HMcode and the boost / hybrid / linear P(k) emulators), :mod:`.resolver` (wiring each
likelihood need to one provider), :mod:`.camb_theory`, :mod:`.ede`,
:mod:`.matter_power` and :mod:`.observables`.  Nothing here imports the likelihoods.
"""
from .resolver import (PROVIDERS, THEORY_REQUIREMENTS, Theory, TheorySpec, build_provider, make_theory,
                       merge_requirements, parse_theory, resolve)

__all__ = ["PROVIDERS", "TheorySpec", "Theory", "parse_theory", "make_theory", "merge_requirements",
           "THEORY_REQUIREMENTS", "resolve", "build_provider"]
