"""Workflows: a YAML file of stages run in pipeline order.

Top level of a workflow file::

    name: quickstart            # names the run directory (default: the file stem); letters,
                                # digits and underscores, as it becomes part of file names
    run_dir: out/quickstart     # default: out/<name>, relative to the working directory
    data_dir: ../shared/data    # optional; else $COSMOPIPE_DATA
    cluster: local              # see pipeline.cluster
    simulate: {...}             # one section per stage, each optional
    train: {...}
    validate: {...}
    sample: {...}

Stages are registered by modules listed in ``_STAGE_MODULES``; each exposes
``STAGES``, a list of :class:`Stage`.  A stage parses its own section into an
immutable settings object (errors name file and key path) and runs with a
:class:`RunContext` that gives it the run directory, a logger and a lazily
started Dask client.  Stages run in registry order.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cosmopipe.schema import ConfigError, Section, file_name, load_yaml, optional, string

# The module, not its functions: start_cluster and stop_cluster are looked up when called,
# so that tests can run a workflow on an in-process cluster by replacing them.
from . import cluster as dask_cluster
from .cluster import merge_cluster, parse_cluster
from .logs import attach_run_log
from .plugins import optional_modules
from .rundir import STALE_TEMP_SECONDS, naming_file, remove_stale_temp_files, run_dir_lock

__all__ = ["Stage", "Workflow", "RunContext", "load_workflow", "stage_registry", "run_workflow"]

log = logging.getLogger("cosmopipe.workflow")

_STAGE_MODULES = ("cosmopipe.pipeline.simulate", "cosmopipe.pipeline.stages.emulators", "cosmopipe.pipeline.stages.observables",
                  "cosmopipe.pipeline.stages.posterior", "cosmopipe.pipeline.stages.emulator_bias")


@dataclass(frozen=True)
class Stage:
    """One workflow stage.

    parse(section, workflow_info) -> settings (frozen; raise ConfigError via section.error)
    run(settings, ctx) -> None
    plan(settings, ctx) -> str: what a --dry-run prints (optional)
    check(settings, ctx) -> None: checks that need the machine (memory, an existing run
        directory's contents); raise ConfigError. Run for every stage before anything is
        written to the run directory, so a refused workflow leaves nothing behind (optional)
    """

    name: str
    parse: Callable[[Section, dict], Any]
    run: Callable[[Any, "RunContext"], None]
    plan: Callable[[Any, "RunContext"], str] | None = None
    help: str = ""
    check: Callable[[Any, "RunContext"], None] | None = None


def stage_registry() -> dict[str, Stage]:
    """All known stages in pipeline order."""
    return {stage.name: stage for module in optional_modules(_STAGE_MODULES) for stage in module.STAGES}


@dataclass(frozen=True)
class Workflow:
    source: str
    name: str
    run_dir: Path
    data_dir: str | None
    cluster: Any                      # pipeline.cluster.ClusterSpec
    stages: dict[str, Any]            # stage name -> parsed settings, pipeline order
    raw: dict = field(default_factory=dict, repr=False)

    def settings(self, stage: str) -> Any:
        return self.stages[stage]


_TOP_KEYS = ("name", "run_dir", "data_dir", "cluster", "description")


def load_workflow(path: str | Path, cluster_override: str | None = None, run_dir: str | Path | None = None) -> Workflow:
    """Read and validate a workflow file (every error names file and key path)."""
    path = Path(path)
    raw = load_yaml(path)
    source = str(path)
    top = Section(raw, "", source)
    # The file stem, made a valid name, when the workflow gives none.
    name = top.take("name", file_name, default=re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:64] or "workflow")
    top.take("description", string, default="")
    configured = Path(top.take("run_dir", string, default=f"out/{name}"))
    run_dir = Path(run_dir) if run_dir is not None else configured
    data_dir = top.take("data_dir", optional(string), default=None)
    cluster = parse_cluster(merge_cluster(top.take("cluster", default="local"), cluster_override),
                            source, "cluster")
    registry = stage_registry()
    info = {"name": name, "source": source, "run_dir": run_dir, "data_dir": data_dir, "raw": raw,
            "workflow_dir": path.parent}
    stages: dict[str, Any] = {}
    for stage_name, stage in registry.items():
        if stage_name in raw:
            # Later stages may refer to earlier ones' settings.
            info["stages"] = stages
            stages[stage_name] = stage.parse(top.sub(stage_name), info)
    top.finish(allowed_hint=list(_TOP_KEYS) + list(registry))
    return Workflow(source=source, name=name, run_dir=run_dir, data_dir=data_dir, cluster=cluster,
                    stages=stages, raw=raw)


class RunContext:
    """What a running stage gets: paths, logging and a lazily started Dask client."""

    def __init__(self, workflow: Workflow, progress: bool = True, resume: bool = False, client=None):
        self.workflow = workflow
        self.run_dir = workflow.run_dir
        self.progress = progress
        self.resume = resume
        self.log = log
        self._cluster = None
        self._client = client
        self._own_client = client is None  # an injected client is the caller's to close
        self.dry_run = False               # a dry run validates and plans; it connects to nothing

    def path(self, *parts: str) -> Path:
        """RUN_DIR/parts...; refuses a path that would leave the run directory."""
        out = self.run_dir.joinpath(*parts)
        # Lexical, not resolved: a run directory may hold symlinks to other disks on purpose.
        root, target = Path(os.path.normpath(self.run_dir)), Path(os.path.normpath(out))
        if target != root and root not in target.parents:
            raise ConfigError(self.workflow.source, "", f"output path {out} leaves the run directory {self.run_dir}")
        return out

    def resolve(self, value: str | os.PathLike | None, default: str | None = None) -> Path:
        """A path from the workflow: absolute (``~`` expanded) as given, else under the run
        directory (:meth:`path`); ``default`` when the workflow gives none."""
        path = Path(value if value is not None else default).expanduser()
        return path if path.is_absolute() else self.path(str(path))

    @property
    def client_started(self) -> bool:
        return self._client is not None

    def client(self):
        """The Dask client of the workflow's cluster, started on first use."""
        if self._client is None:
            self._cluster, self._client = dask_cluster.start_cluster(self.workflow.cluster, self.log, run_dir=self.run_dir)
        return self._client

    def close(self) -> None:
        if self._client is not None and self._own_client:
            dask_cluster.stop_cluster(self._cluster, self._client)
            self._client = self._cluster = None


def _save_resolved(workflow: Workflow) -> None:
    """The resolved configuration goes into the run directory (human-readable)."""
    import yaml

    target = workflow.run_dir / "workflow.yaml"
    tmp = target.with_suffix(".yaml.tmp")
    try:
        with naming_file(target):
            tmp.write_text(yaml.safe_dump(workflow.raw, sort_keys=False))
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def run_workflow(workflow: Workflow, only: str | None = None, dry_run: bool = False,
                 progress: bool = True, resume: bool = False, client=None) -> None:
    registry = stage_registry()
    names = list(workflow.stages)
    if only is not None:
        if only not in registry:
            raise ConfigError(workflow.source, "--stage", f"unknown stage {only!r}; known: {', '.join(registry)}")
        if only not in workflow.stages:
            raise ConfigError(workflow.source, only, f"the workflow has no {only!r} section")
        names = [only]
    if not names:
        raise ConfigError(workflow.source, "", f"the workflow defines no stages; known stages: {', '.join(registry)}")
    ctx = RunContext(workflow, progress=progress, resume=resume, client=client)
    ctx.dry_run = dry_run
    try:
        # Everything that can refuse the workflow runs before the first write.
        for name in names:
            if registry[name].check is not None:
                registry[name].check(workflow.stages[name], ctx)
        if dry_run:
            for name in names:
                stage = registry[name]
                text = stage.plan(workflow.stages[name], ctx) if stage.plan else "(no plan available)"
                print(f"[{name}]\n{text}\n")
            return
        with run_dir_lock(workflow.run_dir):
            remove_stale_temp_files(workflow.run_dir)
            _save_resolved(workflow)
            try:
                with attach_run_log(workflow.run_dir / "run.log"):
                    for name in names:
                        log.info("stage %s: starting (run directory %s)", name, workflow.run_dir)
                        registry[name].run(workflow.stages[name], ctx)
                        log.info("stage %s: done", name)
            finally:
                # A run that stops (a full disk, say) leaves no temp file: once our own cluster
                # is closed no writer of this run is left, and the lock keeps others out.  The
                # workers of an existing scheduler may still be writing: only stale ones go.
                ctx.close()
                own = ctx._own_client and (workflow.cluster is None or workflow.cluster.kind != "address")
                remove_stale_temp_files(workflow.run_dir, min_age_s=0.0 if own else STALE_TEMP_SECONDS)
    finally:
        ctx.close()

