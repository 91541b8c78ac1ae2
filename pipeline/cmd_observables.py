"""``cosmopipe observables``: the handler (the parser is in cli_observables.py).

Imported by :func:`cosmopipe.pipeline.cli.main` only when the subcommand runs: the
likelihood modules (numba among them) take about a second to import, which
``cosmopipe --help`` and the other subcommands should not pay.
"""
from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from cosmopipe.likelihoods.theory.observables import report_markdown, write_report

from .stages.observables import build_campaign, check_chain, train_and_test

__all__ = ["cmd_observables"]


def cmd_observables(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        client = None
        if args.workers:
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                                       dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}))
            client = stack.enter_context(Client(cluster))
        if args.obs_command == "campaign":
            build_campaign(Path(args.out), args.n, args.n_test, args.n_background, args.chunk, args.seed, client,
                           args.from_chains, args.n_posterior, say=lambda m: print(m, flush=True))
        elif args.obs_command == "check":
            report = check_chain(args.chains, args.emulator, args.n, args.data_dir, client)
            write_report(report, Path(args.out or Path(args.chains) / "camb_check"))
            print(report_markdown(report))
        else:
            train_and_test(Path(args.campaign), Path(args.out), args.test or (), args.n_optimise,
                           args.parameter_coordinates, args.data_dir, client)
    return 0
