"""The shared theory provider of a `sample` run: which code turns parameters into observables.

Workflow section ``sample.theory``::

    theory: {provider: none}     # likelihoods compute their own theory (cosmic shear)
    theory: {provider: camb, halofit_version: mead2020, accuracy_boost: 1.0, ...}

``none`` hands the likelihoods an empty :class:`~likelihoods.base.TheoryResult`
(holding the parameters only).  ``camb`` calls
``cosmopipe.likelihoods.camb_theory.camb_theory(params, requirements, settings)`` once
per point with the merged requirements of all likelihoods; the other keys of
the section are that module's settings (``settings_from_section``), and the
parameters it reads are ``theory_params(settings)`` (Planck-style names:
ombh2, omch2, H0, logA, ns, tau, mnu, ...).  The module is imported only when
a workflow asks for it.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cosmopipe.schema import ConfigError, Section, choice, string

from .base import TheoryResult

__all__ = ["PROVIDERS", "TheorySpec", "Theory", "parse_theory", "make_theory", "merge_requirements",
           "THEORY_REQUIREMENTS"]

PROVIDERS = ("none", "camb", "emulator")
_CAMB_MODULE = "cosmopipe.likelihoods.camb_theory"
# Derived parameters a theory provider computes when asked (requirement key = parameter name).
THEORY_REQUIREMENTS = ("sigma8", "S8", "H0", "rdrag", "theta_star")


def _camb_module():
    try:
        return importlib.import_module(_CAMB_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _CAMB_MODULE:
            raise
        return None


@dataclass(frozen=True)
class TheorySpec:
    """Parsed ``sample.theory`` section: provider and its settings object (None for none)."""

    provider: str = "none"
    settings: Any = None


def parse_theory(section: Section) -> TheorySpec:
    provider = section.take("provider", choice(*PROVIDERS), default="none")
    if provider == "emulator":
        # An observables emulator file (emulators/observables.py): C_ell and sigma8 emulated,
        # the background from CAMB's fast background-only run.
        path = section.take("path", string)
        if not Path(path).is_file():
            raise section.error("path", f"observables emulator file {path} not found (build it with "
                                        f"python -m cosmopipe.emulators.observables campaign|train)")
        section.finish(allowed_hint=["provider", "path"])
        return TheorySpec("emulator", path)
    if provider == "none":
        section.finish(allowed_hint=["provider"])
        return TheorySpec("none")
    module = _camb_module()
    if module is None:
        raise section.error("provider", f"provider camb needs the module {_CAMB_MODULE}, which is not installed")
    rest = Section({k: v for k, v in section.data.items() if k != "provider"}, section.path, section.source)
    return TheorySpec("camb", module.settings_from_section(rest))


def merge_requirements(requirements: Iterable[Mapping[str, Any]], provider: str = "none") -> dict[str, Any]:
    """Union of likelihood requirements: the provider's own merge when it has one, else
    booleans OR-ed, numbers the largest, lists united, mappings merged key by key."""
    requirements = [r or {} for r in requirements]
    if provider == "camb":
        module = _camb_module()
        if module is not None and hasattr(module, "merge_requirements"):
            return module.merge_requirements(*requirements)
    out: dict[str, Any] = {}
    for req in requirements:
        for key, value in req.items():
            if key not in out:
                out[key] = dict(value) if isinstance(value, Mapping) else value
            elif isinstance(value, Mapping) and isinstance(out[key], Mapping):
                out[key] = merge_requirements([out[key], value])
            elif isinstance(value, bool) or isinstance(out[key], bool):
                out[key] = bool(out[key]) or bool(value)
            elif isinstance(value, (int, float)) and isinstance(out[key], (int, float)):
                out[key] = max(out[key], value)
            elif isinstance(value, (list, tuple)) and isinstance(out[key], (list, tuple)):
                out[key] = list(dict.fromkeys(list(out[key]) + list(value)))
            elif out[key] != value:
                raise ValueError(f"likelihood requirements disagree on {key!r}: {out[key]!r} vs {value!r}")
    return out


@dataclass(frozen=True)
class Theory:
    """Callable ``params -> TheoryResult`` (picklable: the provider module is imported by name)."""

    provider: str
    requirements: dict = field(default_factory=dict, hash=False)
    settings: Any = None

    def params(self) -> tuple[str, ...]:
        """Names of the parameters this provider reads."""
        if self.provider == "none":
            return ()
        if self.provider == "emulator":
            from cosmopipe.emulators.observables import theory_params

            return tuple(theory_params(self.settings))
        module = importlib.import_module(_CAMB_MODULE)
        if hasattr(module, "theory_params"):
            return tuple(module.theory_params(self.settings))
        return tuple(module.PARAMS)

    def __call__(self, params: Mapping[str, float]) -> TheoryResult:
        if self.provider == "none":
            return TheoryResult(params=dict(params))
        if self.provider == "emulator":
            from cosmopipe.emulators.observables import emulated_theory

            return emulated_theory(dict(params), self.requirements, path=self.settings)
        module = importlib.import_module(_CAMB_MODULE)
        if self.settings is None:
            return module.camb_theory(dict(params), self.requirements)
        return module.camb_theory(dict(params), self.requirements, self.settings)


def make_theory(section: Section | TheorySpec, info: Mapping[str, Any] | None = None) -> Theory:
    """The theory callable for a ``sample.theory`` section (or its parsed spec).

    ``info['requirements']`` (optional) holds the likelihoods' requirements, one mapping
    or a list of them (merged here); ``info['derived']`` names derived parameters to
    ask the provider for (sigma8, S8, H0, rdrag, theta_star).
    """
    spec = parse_theory(section) if isinstance(section, Section) else section
    info = info or {}
    reqs = info.get("requirements", {}) or {}
    reqs = [reqs] if isinstance(reqs, Mapping) else list(reqs)
    if spec.provider != "none":
        reqs.append({name: True for name in info.get("derived", ()) if name in THEORY_REQUIREMENTS})
        if _camb_module() is None and spec.provider == "camb":
            raise ConfigError(str(info.get("source", "<workflow>")), "sample.theory.provider",
                              f"provider camb needs the module {_CAMB_MODULE}, which is not installed")
    return Theory(spec.provider, merge_requirements(reqs, spec.provider), spec.settings)
