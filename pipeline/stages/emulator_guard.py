"""Guards of the ``sample`` stage: no posterior from an emulator that cannot be trusted.

Before the first step the sample stage checks every emulator file the workflow
reads (``power: {source: emulator, path: ...}`` anywhere in a likelihood's
settings, and ``theory: {provider: emulator, path: ...}``) and refuses, in one
line naming the file, the criterion and the numbers, an emulator

* whose recorded validation misses its target (TARGETS below),
* whose box does not cover the prior of a parameter the workflow samples, or
* that holds fixed a parameter the workflow samples.

``sample: {allow_unvalidated_emulator: true}`` or ``cosmopipe run --allow-unvalidated``
lets it through; every waived refusal is logged as a warning and written to the
chain summary (``summary.json`` "warnings", a banner in ``summary.md``).

Targets, one per emulator kind, judged on what is recorded (the ``validate``
stage's ``validation.json`` next to the emulator when present, else the
held-out scores the training stored in the file):

* boost   p95 over test cosmologies of max_k |B_emu / B_sim - 1| for k <= 1 h/Mpc
          <= 1 % (the COLA simulations are the reference it was trained to match);
* hybrid  the same statistic against EuclidEmulator2 for k <= 1 h/Mpc, z <= 2, <= 1 %
          (the hybrid is EE2 x the COLA w-response: EE2 is its reference); without a
          validate-stage report, the embedded COLA emulator's held-out score <= 1 %;
* linear  p95 of the pointwise held-out |P_emu / P_CAMB - 1| <= 0.5 %;
* observables (EDE)  p95 over the checked points of |Delta chi^2| summed over the
          likelihoods <= 1 (one unit of chi^2 moves a 1-D posterior by ~1 sigma; the
          emulator must stay well inside that).  The check travels inside the file: the
          JSON attr ``provenance`` carries ``delta_chi2_check`` =
          ``{"p95_total": float, "points": int, "where": str, ...}`` written by the stage
          that builds the emulator.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from cosmopipe.emulators import load
from cosmopipe.emulators.registry import is_model_name, model_file

__all__ = ["TARGETS", "EmulatorRef", "emulator_refs", "check_emulators", "validation_verdict",
           "observables_check_verdict", "GuardRefusal"]

OVERRIDE_HINT = "set sample.allow_unvalidated_emulator: true or run with --allow-unvalidated to sample anyway"


@dataclass(frozen=True)
class Target:
    kind: str
    criterion: str
    limit: float


TARGETS = {
    "boost": Target("boost", "p95 of max |B_emu/B_sim - 1| (k <= 1 h/Mpc) against the held-out simulations", 0.01),
    "hybrid": Target("hybrid", "p95 of max |B_emu/B_EE2 - 1| (k <= 1 h/Mpc, z <= 2) against EuclidEmulator2", 0.01),
    "linear": Target("linear", "p95 of held-out |P_emu/P_CAMB - 1|", 0.005),
    # The emulator error's own Delta chi^2 (data = the CAMB model at each held-out point): what a
    # posterior there sees (pipeline.stages.observables.error_chi2), not the term linear in the
    # residual to far-away data that dominates chi^2(emulator) - chi^2(CAMB) in a box corner.
    "observables": Target("observables", "p95 of the emulator error's Delta chi^2 (all likelihoods, data = the "
                                         "CAMB model) against CAMB", 1.0),
}


class GuardRefusal(Exception):
    """One reason to refuse an emulator (the message is the whole line)."""


@dataclass(frozen=True)
class EmulatorRef:
    path: Path
    key: str          # where the workflow names it, e.g. sample.likelihoods.lsst_y1_shear.power.path
    kind: str         # "power" (emulators.load) or "observables"


def emulator_refs(likelihoods: Iterable[tuple[str, Any]], theory_provider: str, theory_settings: Any) -> list:
    """The emulator files a parsed sample section reads (relative paths as the likelihoods take them)."""
    refs = []

    def walk(node, key):
        if isinstance(node, Mapping):
            if node.get("source") == "emulator" and isinstance(node.get("path"), str):
                refs.append(EmulatorRef(Path(node["path"]), f"{key}.path", "power"))
            for k, v in node.items():
                walk(v, f"{key}.{k}")

    for name, raw in likelihoods:
        walk(raw, f"sample.likelihoods.{name}")
    if theory_provider == "emulator" and theory_settings:
        refs.append(EmulatorRef(Path(str(theory_settings)), "sample.theory.path", "observables"))
    return refs


# -- validation targets ----------------------------------------------------------------
def _percent(x: float) -> str:
    return f"{100 * x:.3g} %"


def _validate_stage_report(path: Path, dataset_hash: str | None) -> dict | None:
    """The validate stage's summary for this emulator: <run>/validation[/<stem>]/validation.json
    next to <run>/emulators/<stem>.h5, trusted only when it names the same training set."""
    for candidate in (path.parent.parent / "validation" / path.stem / "validation.json",
                      path.parent.parent / "validation" / "validation.json",
                      path.with_suffix(".validation.json")):
        if candidate.is_file():
            try:
                summary = json.loads(candidate.read_text()).get("summary", {})
            except (OSError, ValueError, AttributeError):
                continue
            if dataset_hash and summary.get("trained_on") not in (None, dataset_hash):
                continue
            return dict(summary, _file=str(candidate))
    return None


def validation_verdict(kind: str, info: Mapping[str, Any], report: Mapping[str, Any] | None,
                       cola_info: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """(passed, what was measured) for a P(k) emulator of ``kind`` against TARGETS[kind].

    ``info``: the emulator's info (held-out scores under "validation"); ``report``: the
    validate stage's summary or None; ``cola_info``: the hybrid's embedded COLA emulator info."""
    target = TARGETS[kind]
    value, source = None, ""
    if kind == "hybrid":
        box = (report or {}).get("ee2_box") or {}
        if box.get("p95") is not None:
            value, source = box["p95"], (f"EE2 at {box['n_box']} cosmologies over the box, model card "
                                         f"({report['_file']})")
        elif report and report.get("ee2_p95_max_error_k_le_1_z_le_2") is not None:
            value, source = report["ee2_p95_max_error_k_le_1_z_le_2"], f"validate stage ({report['_file']})"
        elif cola_info and (cola_info.get("validation") or {}).get("max_k_le_1_p95") is not None:
            value = cola_info["validation"]["max_k_le_1_p95"]
            source = "held-out COLA simulations at training (no validate-stage report against EE2)"
    elif kind == "boost":
        if report and report.get("p95_max_error_k_le_1_z_le_3") is not None:
            value, source = report["p95_max_error_k_le_1_z_le_3"], f"validate stage ({report['_file']})"
        elif (info.get("validation") or {}).get("max_k_le_1_p95") is not None:
            value, source = info["validation"]["max_k_le_1_p95"], "held-out simulations at training"
    elif kind == "linear":
        if (info.get("validation") or {}).get("pointwise_p95") is not None:
            value, source = info["validation"]["pointwise_p95"], "held-out CAMB spectra at training"
    if value is None:
        return False, f"no recorded validation ({target.criterion}; target <= {_percent(target.limit)})"
    value = float(value)
    ok = math.isfinite(value) and value <= target.limit
    return ok, (f"{target.criterion} = {_percent(value)} {'<=' if ok else '>'} target {_percent(target.limit)} "
                f"({source})")


def observables_check_verdict(provenance: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, what was measured) for the Delta chi^2 check recorded in an observables emulator."""
    target = TARGETS["observables"]
    check = provenance.get("delta_chi2_check")
    if not isinstance(check, Mapping) or check.get("p95_total") is None:
        return False, (f"no Delta chi^2 check recorded in the file ({target.criterion}; target <= "
                       f"{target.limit:g})")
    value = float(check["p95_total"])
    ok = math.isfinite(value) and value <= target.limit
    where = f"{check.get('points', '?')} {check.get('where', 'checked')} points"
    return ok, f"{target.criterion} = {value:.3g} {'<=' if ok else '>'} target {target.limit:g} ({where})"


# -- reading the files -----------------------------------------------------------------
@dataclass(frozen=True)
class _Facts:
    kind: str
    box: dict            # varied parameter -> (lower, upper)
    fixed: dict          # parameter -> value held fixed in training
    passed: bool
    measured: str


def _power_facts(path: Path) -> _Facts:
    emu = load(path)
    kind = getattr(emu, "kind", "boost")
    info = dict(getattr(emu, "info", {}) or {})
    cola = getattr(emu, "cola", None)
    dataset_hash = info.get("dataset_hash") or info.get("cola_dataset_hash")
    report = _validate_stage_report(path, dataset_hash) if kind in ("boost", "hybrid") else None
    passed, measured = validation_verdict(kind, info, report, cola.info if cola is not None else None)
    return _Facts(kind, dict(emu.space.box), dict(emu.fixed), passed, measured)


def _observables_facts(path: Path) -> _Facts:
    """Box, fixed values and the recorded check of an observables emulator, read from its
    attributes only (the regressors are not needed for the guard)."""
    import h5py

    with h5py.File(path, "r") as f:
        names = json.loads(f["box"].attrs["names"])
        lower, upper = f["box"]["lower"][()], f["box"]["upper"][()]
        fixed = json.loads(f.attrs.get("fixed", "{}"))
        provenance = json.loads(f.attrs.get("provenance", "{}"))
    passed, measured = observables_check_verdict(provenance)
    return _Facts("observables", {n: (float(lo), float(hi)) for n, lo, hi in zip(names, lower, upper)},
                  {k: float(v) for k, v in fixed.items()}, passed, measured)


def _facts(ref: EmulatorRef) -> _Facts:
    path = ref.path
    try:
        if is_model_name(str(path)):
            # A shipped model: its file, checked against the manifest (a damaged one is refused).
            path = model_file(str(path))
    except ValueError as exc:
        raise GuardRefusal(f"{ref.key}: {exc}") from None
    if not path.is_file():
        raise GuardRefusal(f"{ref.key}: emulator file {path} not found")
    try:
        return _observables_facts(path) if ref.kind == "observables" else _power_facts(path)
    except (OSError, KeyError, ValueError) as exc:
        raise GuardRefusal(f"{ref.key}: cannot read emulator {path}: {exc}") from None


# -- the checks ------------------------------------------------------------------------
def refusals(ref: EmulatorRef, facts: _Facts, priors: Mapping[str, tuple[float, float]]) -> list[str]:
    """Every reason to refuse one emulator for the sampled ``priors`` (name -> (lower, upper))."""
    out = []
    name = ref.path.name
    if not facts.passed:
        out.append(f"emulator {ref.path} ({facts.kind}) fails its validation target: {facts.measured}")
    for pname, (lo, hi) in priors.items():
        if pname in facts.fixed:
            out.append(f"emulator {ref.path} holds {pname} fixed at {facts.fixed[pname]:g} but the workflow samples "
                       f"it (prior [{lo:g}, {hi:g}]); fix {pname} to {facts.fixed[pname]:g} or train an emulator "
                       f"that varies it")
        elif pname in facts.box:
            blo, bhi = facts.box[pname]
            slack = 1e-9 * (bhi - blo)
            if lo < blo - slack or hi > bhi + slack:
                out.append(f"emulator {name}: its box of {pname}, [{blo:g}, {bhi:g}], does not cover the prior "
                           f"[{lo:g}, {hi:g}] ({ref.path}); narrow the prior to the box")
    return out


def check_emulators(refs: Iterable[EmulatorRef], priors: Mapping[str, tuple[float, float]], allow: bool,
                    log) -> list[str]:
    """Refuse (GuardRefusal with the first reason) or, with ``allow``, return the waived
    reasons as warnings (each also logged).  Returns [] when every emulator passes."""
    reasons = []
    for ref in refs:
        try:
            facts = _facts(ref)
        except GuardRefusal as exc:
            reasons.append(str(exc))
            continue
        found = refusals(ref, facts, priors)
        if not found:
            log.info("emulator %s (%s): %s; box covers the sampled priors", ref.path, facts.kind, facts.measured)
        reasons += found
    if reasons and not allow:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise GuardRefusal(f"{reasons[0]}{more}; {OVERRIDE_HINT}")
    warnings = [f"UNVALIDATED EMULATOR ALLOWED: {r}" for r in reasons]
    for w in warnings:
        log.warning(w)
    return warnings
