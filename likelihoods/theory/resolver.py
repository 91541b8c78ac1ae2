"""The shared theory of a ``sample`` run: named providers wired to the likelihoods' needs.

Workflow section ``sample.theory`` (one provider, its settings beside it)::

    theory: {provider: none}     # likelihoods compute their own theory (cosmic shear)
    theory: {provider: camb, halofit_version: mead2020, ede_model: fluid, w_bins: 3, ...}
    theory: {provider: emulator, path: FILE}          # the EDE observables emulator
    theory: {provider: ee2 | hmcode}                  # P_nl and sigma8 (EE2-style parameters)
    theory: {provider: pk_emulator, path: FILE, ee2: auto, linear: FILE}

or several, in order of preference (each requirement goes to the first that provides it)::

    theory: {providers: {pk_emulator: {path: FILE}, camb: {halofit_version: mead2020}}}

Each provider (:mod:`.providers`) declares what it provides; each likelihood what it
needs (``requirements()``); :func:`resolve` assigns every need to one provider and
names the providers that could serve a need nobody serves.  Parameters are completed in
both vocabularies (:mod:`.params`) before any provider runs, and again with H0 from the
provider that solved for it (theta_* given).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from cosmopipe.emulators.registry import is_model_name, model_file
from cosmopipe.schema import ConfigError, Section, choice, string

from . import params as vocabulary
from .contract import TheoryResult
from .providers import CambProvider, NoProvider, ObservablesProvider, PowerProvider, camb_module

__all__ = ["PROVIDERS", "TheorySpec", "Theory", "parse_theory", "make_theory", "merge_requirements",
           "THEORY_REQUIREMENTS", "resolve", "build_provider"]

PROVIDERS = ("none", "camb", "emulator", "ee2", "hmcode", "pk_emulator")
# What each provider gives, for error messages before any provider is built.
PROVIDES = {"none": frozenset(), "camb": CambProvider.provides, "emulator": ObservablesProvider.provides,
            "ee2": PowerProvider.provides, "hmcode": PowerProvider.provides, "pk_emulator": PowerProvider.provides}
# Derived parameters a theory provider computes when asked (requirement key = parameter name).
THEORY_REQUIREMENTS = ("sigma8", "S8", "H0", "rdrag", "theta_star")
_POWER_KEYS = ("path", "ee2", "linear")


@dataclass(frozen=True)
class TheorySpec:
    """Parsed ``sample.theory``: provider names joined by '+', the first one's settings, and
    every (name, settings) in order of preference."""

    provider: str = "none"
    settings: Any = None
    components: tuple = ()


def _parse_one(name: str, section: Section) -> Any:
    """Settings of one provider from its section (consumed)."""
    if name == "emulator":
        path = section.take("path", string)
        if is_model_name(path):
            # A shipped model (cosmopipe models): its file, checked against the manifest.
            try:
                path = str(model_file(path))
            except ValueError as exc:
                raise section.error("path", str(exc)) from None
        if not Path(path).is_file():
            raise section.error("path", f"observables emulator file {path} not found (build it with the "
                                        f"observables stage or `cosmopipe observables campaign|train`)")
        section.finish(allowed_hint=["provider", "path"])
        return path
    if name == "none":
        section.finish(allowed_hint=["provider"])
        return None
    if name in ("ee2", "hmcode", "pk_emulator"):
        out = {k: section.take(k, string, default=None) for k in _POWER_KEYS}
        if name == "pk_emulator" and not out["path"]:
            raise section.error("path", "provider pk_emulator needs the emulator file (path: FILE)")
        section.finish(allowed_hint=["provider", *_POWER_KEYS])
        return {k: v for k, v in out.items() if v is not None}
    module = camb_module()
    if module is None:
        raise section.error("provider", f"provider camb needs the module {CambProvider.__module__}, which is not "
                                        "installed")
    return module.settings_from_section(section)


def parse_theory(section: Section) -> TheorySpec:
    if section.has("providers"):
        subs = section.sub("providers")
        names = [str(n) for n in subs.keys()]
        for n in names:
            if n not in PROVIDERS or n == "none":
                raise subs.error(n, f"unknown theory provider; choose from {', '.join(PROVIDERS[1:])}")
        comps = tuple((n, _parse_one(n, subs.sub(n, default={}))) for n in names)
        section.finish(allowed_hint=["providers"])
        if not comps:
            raise subs.error(None, f"name at least one provider: {', '.join(PROVIDERS[1:])}")
        return TheorySpec("+".join(names), comps[0][1], comps)
    provider = section.take("provider", choice(*PROVIDERS), default="none")
    rest = Section({k: v for k, v in section.data.items() if k != "provider"}, section.path, section.source)
    settings = _parse_one(provider, rest if provider not in ("emulator", "none") else section)
    return TheorySpec(provider, settings, ((provider, settings),))


def build_provider(name: str, settings: Any):
    """The provider object of a parsed (name, settings) pair."""
    if name == "none":
        return NoProvider()
    if name == "camb":
        return CambProvider(settings)
    if name == "emulator":
        return ObservablesProvider(str(settings))
    return PowerProvider.named(name, **dict(settings or {}))


def merge_requirements(requirements: Iterable[Mapping[str, Any]], provider: str = "none") -> dict[str, Any]:
    """Union of likelihood requirements: the provider's own merge when it has one, else
    booleans OR-ed, numbers the largest, lists united, mappings merged key by key."""
    requirements = [r or {} for r in requirements]
    if provider == "camb":
        merged = CambProvider().merge(requirements)
        if merged is not None:
            return merged
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


def resolve(names: Iterable[str], needs: Iterable[tuple[str, Mapping[str, Any]]],
            where: str = "sample.theory", source: str = "<workflow>") -> dict[str, list[dict]]:
    """provider name -> the requirement mappings it serves (one per likelihood that needs it).

    ``needs``: (likelihood name, requirements) pairs.  A need no named provider gives is a
    ConfigError naming the likelihood, the need and the providers that would give it."""
    names = list(names)
    out: dict[str, list[dict]] = {n: [] for n in names}
    for lik, req in needs:
        share: dict[str, dict] = {}
        for key, value in (req or {}).items():
            owner = next((n for n in names if key in PROVIDES[n]), None)
            if owner is None:
                able = [n for n in PROVIDERS if key in PROVIDES[n]]
                raise ConfigError(source, f"{where}.provider",
                                  f"likelihood {lik} needs {key}, which no named theory provider "
                                  f"({', '.join(names)}) provides; providers of {key}: {', '.join(able) or 'none'}")
            share.setdefault(owner, {})[key] = value
        for owner, part in share.items():
            out[owner].append(part)
    return out


@dataclass(frozen=True)
class Theory:
    """Callable ``params -> TheoryResult`` over resolved providers (picklable)."""

    provider: str
    requirements: dict = field(default_factory=dict, hash=False)
    settings: Any = None
    components: tuple = ()          # ((provider object, its merged requirements), ...)

    def params(self) -> tuple[str, ...]:
        """Names of the parameters the providers read."""
        return tuple(dict.fromkeys(p for comp, _ in self.components for p in comp.params()))

    def __call__(self, params: Mapping[str, float]) -> TheoryResult:
        full = vocabulary.complete(params)
        result = TheoryResult(params=dict(full))
        for comp, req in self.components:
            if not req and len(self.components) > 1:
                continue
            part = comp.calculate(full, req)
            _merge_into(result, part)
        if result.H0 is not None and "h" not in result.params and "H0" not in params:
            # theta_* given: the provider solved for H0, and the other vocabulary follows now.
            result.params = vocabulary.complete({**result.params, "H0": result.H0})
        return result


def _merge_into(result: TheoryResult, part: TheoryResult) -> None:
    for name, value in vars(part).items():
        if name == "params":
            result.params = {**result.params, **value}
        elif name == "derived":
            result.derived.update(value)
        elif value is not None:
            setattr(result, name, value)


def make_theory(section: Section | TheorySpec, info: Mapping[str, Any] | None = None) -> Theory:
    """The theory callable for a ``sample.theory`` section (or its parsed spec).

    ``info['requirements']`` (optional) holds the likelihoods' requirements, one mapping
    or a list of them (``info['names']`` their likelihood names, for errors);
    ``info['derived']`` names derived parameters to ask the provider for (sigma8, S8, H0,
    rdrag, theta_star).
    """
    spec = parse_theory(section) if isinstance(section, Section) else section
    info = info or {}
    source = str(info.get("source", "<workflow>"))
    reqs = info.get("requirements", {}) or {}
    reqs = [reqs] if isinstance(reqs, Mapping) else list(reqs)
    lnames = list(info.get("names") or [f"#{i + 1}" for i in range(len(reqs))])
    comps = spec.components or ((spec.provider, spec.settings),)
    names = [n for n, _ in comps]
    if "camb" in names and camb_module() is None:
        raise ConfigError(source, "sample.theory.provider",
                          f"provider camb needs the module {CambProvider.__module__}, which is not installed")
    if spec.provider == "none":
        return Theory("none", {}, None, ((NoProvider(), {}),))
    needs = list(zip(lnames, reqs))
    derived = {n: True for n in info.get("derived", ()) if n in THEORY_REQUIREMENTS}
    if derived:
        # Derived parameters go to the first provider able to compute them; none able is no error.
        first = {n: next((p for p in names if n in PROVIDES[p]), None) for n in derived}
        needs.append(("derived parameters", {n: True for n, p in first.items() if p is not None}))
    assigned = resolve(names, needs, source=source)
    built = tuple((build_provider(n, s), merge_requirements(assigned[n], n)) for n, s in comps)
    return Theory(spec.provider, merge_requirements([r for _, r in built]), spec.settings, built)
