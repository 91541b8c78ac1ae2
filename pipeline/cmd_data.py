"""``cosmopipe data``: the handler (the parser is in cli_data.py).

Imported by :func:`cosmopipe.pipeline.cli.main` only when the subcommand runs: the
likelihoods package (numba among it) takes about a second to import, which
``cosmopipe --help`` and the other subcommands should not pay.
"""
from __future__ import annotations

import argparse

from cosmopipe.likelihoods.data_registry import run_command

__all__ = ["cmd_data"]


def cmd_data(args: argparse.Namespace) -> int:
    return run_command(args.data_command, getattr(args, "names", ()), getattr(args, "data_dir", None),
                       getattr(args, "overwrite", False))
