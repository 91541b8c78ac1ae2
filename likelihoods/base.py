"""The contract between theory codes, likelihoods and the sampler.

A *theory provider* turns a parameter dict into a :class:`TheoryResult`
(CAMB, or an emulator of the same observables).  A *likelihood* states what
it needs (:meth:`Likelihood.requirements`) and evaluates ``loglike(theory,
params)``; several likelihoods share one theory computation per point, so a
combined Planck + BAO + SN posterior calls CAMB once.  Likelihoods that
carry their own fast theory (cosmic shear with an emulated P(k)) may ignore
``theory`` and read ``params`` only.

Optional likelihood attributes the sample stage uses when present:

* ``input_params``: non-nuisance parameter names the likelihood reads itself
  (so the stage can reject parameters nothing uses);
* ``derived(theory, params) -> dict``: derived parameters to store with the chain;
* ``fiducial``: mapping of parameter values to mark on posterior plots.

Errors: a :class:`LikelihoodError` raised while sampling stops the run (bad
data or configuration); any other ``ValueError`` (e.g. CAMB refusing a point)
rejects that point as zero likelihood.

Likelihoods are built from workflow YAML by factories named in
:data:`LIKELIHOODS` (``"module:function"``); a factory has the signature
``factory(section: pipeline.schema.Section, info: dict) -> Likelihood`` where
``info`` holds at least ``data_dir`` (str or None) and ``run_dir``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from .theory.contract import LikelihoodError, TheoryResult

__all__ = ["TheoryResult", "Likelihood", "LIKELIHOODS", "likelihood_factory", "LikelihoodError"]



@runtime_checkable
class Likelihood(Protocol):
    """What the sampler needs from a likelihood."""

    name: str

    def requirements(self) -> dict[str, Any]:
        """What the theory must provide, e.g. {'cls': {'lmax': 2508, 'lensing': True},
        'distances': True, 'rdrag': True, 'pk_nl': {'kmax': 10, 'zmax': 4}}; {} for none."""

    def parameters(self) -> dict[str, dict]:
        """Nuisance parameters this likelihood introduces, name -> default prior spec
        (e.g. {'A_planck': {'prior': 'gaussian', 'mean': 1, 'sigma': 0.0025}}); {} for none."""

    def loglike(self, theory: TheoryResult, params: Mapping[str, float]) -> float:
        """ln L (= -chi^2/2 up to a parameter-independent constant)."""


# name -> "module:factory"; modules that do not exist yet are reported clearly.
LIKELIHOODS: dict[str, str] = {
    "lsst_y1_shear": "cosmopipe.likelihoods.shear.likelihood:from_config",
    "planck_2018_plik_lite": "cosmopipe.likelihoods.planck:plik_lite_from_config",
    "planck_2018_lowl_tt": "cosmopipe.likelihoods.planck:lowl_tt_from_config",
    "planck_2018_lowl_ee_sroll2": "cosmopipe.likelihoods.planck:lowl_ee_from_config",
    "planck_2018_lensing": "cosmopipe.likelihoods.planck_lensing:from_config",
    "bao": "cosmopipe.likelihoods.bao:from_config",
    "pantheon": "cosmopipe.likelihoods.sn:pantheon_from_config",
    "pantheon_plus": "cosmopipe.likelihoods.sn:pantheon_plus_from_config",
}


def likelihood_factory(name: str) -> Callable:
    if name not in LIKELIHOODS:
        raise LikelihoodError(f"unknown likelihood {name!r}; known: {', '.join(sorted(LIKELIHOODS))}")
    module_name, _, func = LIKELIHOODS[name].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, func)
