"""``cosmopipe run``: the handler (the parser is in cli_campaign.py).

Imported by :func:`cosmopipe.pipeline.cli.main` only when the subcommand runs: loading a
workflow, and the dry-run checks, import every stage's module and with them the
likelihoods, which ``cosmopipe --help`` and the other subcommands should not load.
"""
from __future__ import annotations

import argparse
import logging

from .dryrun import check_inputs, cluster_section
from .stages.sample_support import allow_unvalidated_emulators
from .workflow import load_workflow, run_workflow

__all__ = ["cmd_run"]

log = logging.getLogger("cosmopipe")


def cmd_run(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.workflow, cluster_override=args.cluster, run_dir=args.run_dir)
    if getattr(args, "allow_unvalidated", False):
        allow_unvalidated_emulators(workflow)
    if args.dry_run:
        notes = check_inputs(workflow, args.stage)
        print(cluster_section(workflow))
        for note in notes:
            print(f"note: {note}")
    else:
        log.info("workflow %s (%s): stages %s; run directory %s; %s", workflow.name, workflow.source,
                 ", ".join(workflow.stages) or "none", workflow.run_dir, workflow.cluster.describe())
    try:
        run_workflow(workflow, only=args.stage, dry_run=args.dry_run, progress=not args.no_progress,
                     resume=args.resume)
    except RuntimeError as exc:
        print(f"cosmopipe: {exc}. See {workflow.run_dir / 'run.log'}; rerun the same command to retry what is missing.")
        return 1
    if not args.dry_run:
        print(f"workflow {workflow.name} finished; results in {workflow.run_dir}")
    return 0
