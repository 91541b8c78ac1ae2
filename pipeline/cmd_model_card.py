"""``cosmopipe model-card``: the handler (the parser is in cli_emulators.py).

Imported by :func:`cosmopipe.pipeline.cli.main` only when the subcommand runs: an EDE
observables emulator's card measures Delta chi^2 with the likelihoods, which
``cosmopipe --help`` should not import.
"""
from __future__ import annotations

import argparse
import sys

from cosmopipe.emulators.registry import CARD, write_model
from .cli import UsageError
from .stages.observables_card import is_observables_file, write_observables_model

__all__ = ["cmd_model_card"]


def cmd_model_card(args: argparse.Namespace) -> int:
    try:
        if is_observables_file(args.emulator):
            out = write_observables_model(args.emulator, args.out, name=args.name, test=args.test,
                                          posterior_check=args.posterior_check, data_dir=args.data_dir,
                                          description=args.description)
        else:
            out = write_model(args.emulator, args.out, name=args.name, train=args.train, test=args.test,
                              compare_ee2=not args.no_ee2, description=args.description,
                              ee2_points=0 if args.no_ee2 else args.ee2_points)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write((out / CARD).read_text())
    print(f"\nmodel written to {out}")
    return 0
