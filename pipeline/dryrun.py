"""What ``cosmopipe run --dry-run`` adds to the stages' own checks and plans.

The stages' ``check`` hooks (run by run_workflow) cover the simulate stage. The
stages below have none, so a dry run would pass where the real run then
refuses; here they get the real run's own first steps (building the
likelihoods and the posterior, resolving input paths), not copies of them.
Inputs that an earlier stage of the same run writes cannot exist yet and are
not required.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from cosmopipe.schema import ConfigError

from .cluster import cluster_plan
from .stages.emulator_bias import check_bias
from .stages.emulators import _out_dirs, _path
from .stages.posterior import _build_likelihoods, build_posterior
from .workflow import RunContext

__all__ = ["check_inputs", "cluster_section"]

log = logging.getLogger("cosmopipe")


def _need_file(path: Path, source: str, key: str) -> None:
    if not path.is_file():
        raise ConfigError(source, key, f"file {path} not found")


def _check_sample(settings: Any, ctx) -> None:
    # The real run's first two steps: they load every data and emulator file and
    # resolve the sampled and fixed parameter names against the likelihoods.
    likelihoods = _build_likelihoods(settings, Path(ctx.run_dir), dry_run=True)
    build_posterior(settings, likelihoods, logging.getLogger("cosmopipe.dryrun"))


def _check_train(settings: Any, ctx) -> None:
    _need_file(_path(ctx, settings.dataset, "datasets/train.h5"), settings_source(settings, ctx), "train.dataset")


def _check_validate(settings: Any, ctx) -> None:
    source = settings_source(settings, ctx)
    _need_file(_path(ctx, settings.test, "datasets/test.h5"), source, "validate.test")
    for emulator, _ in _out_dirs(settings, ctx):
        _need_file(emulator, source, "validate.emulators")


def settings_source(settings: Any, ctx) -> str:
    return getattr(settings, "source", "") or ctx.workflow.source


_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "sample": _check_sample, "train": _check_train, "validate": _check_validate, "emulator_bias": check_bias,
}


def check_inputs(workflow, only: str | None = None) -> list[str]:
    """Raise the real run's ConfigError for a missing input or unknown parameter; returns notes."""
    names = [only] if only is not None else list(workflow.stages)
    ctx = RunContext(workflow, progress=False)
    notes = []
    for i, name in enumerate(names):
        check = _CHECKS.get(name)
        if check is None or name not in workflow.stages:
            continue
        if i > 0:
            notes.append(f"{name}: inputs written by {', '.join(names[:i])} in this run are not checked")
            continue
        check(workflow.stages[name], ctx)
    return notes


def cluster_section(workflow) -> str:
    return f"[cluster]\n{cluster_plan(workflow.cluster)}\n"
