"""Light helpers of the ``sample`` stage that the command line needs without importing the
sampler: the NOT CONVERGED line of a run summary and the ``--allow-unvalidated`` switch."""
from __future__ import annotations

import dataclasses
from typing import Mapping

__all__ = ["not_converged_line", "allow_unvalidated_emulators"]


def not_converged_line(s: Mapping) -> str:
    """'NOT CONVERGED (R-1 = 0.85, ...)': the one line every reader of an unconverged run sees."""
    t = s.get("tests") or {}
    parts = []
    if t.get("rminus1") is not None:
        parts.append(f"R-1 = {t['rminus1']:.3g} (limit {t.get('rminus1_limit', float('nan')):g})")
    if t.get("tau_long_enough") is False:
        parts.append(f"chain shorter than {t.get('tau_factor', float('nan')):g} tau")
    if t.get("tau_stable") is False and t.get("tau_change") is not None:
        parts.append(f"tau still changing by {t['tau_change']:.3g}")
    parts.append(f"{s.get('steps_per_chain', '?')} steps per chain")
    return "NOT CONVERGED (" + ", ".join(parts) + ")"


def allow_unvalidated_emulators(workflow) -> None:
    """``cosmopipe run --allow-unvalidated``: waive the emulator guards of the workflow's sample stage."""
    settings = workflow.stages.get("sample")
    if settings is not None and hasattr(settings, "allow_unvalidated"):
        workflow.stages["sample"] = dataclasses.replace(settings, allow_unvalidated=True)
