"""The ``cosmopipe`` command line.

Each subcommand is an ``_add_<name>`` function that builds its parser and a
``cmd_<name>(args) -> int`` that runs it; register both in ``_SUBCOMMANDS``.  A handler
whose imports are heavy (the likelihoods: about a second) is registered by name, as
``"module:function"``, and imported only when its subcommand runs, so that building the
parser (``cosmopipe --help``) loads only the light parser modules.
User errors are reported as ``cosmopipe: error: <message>`` with exit code 2, and so
are faults of the disk or the run directory (full, read-only, busy, a damaged file):
:func:`main` maps them in one place, so no subcommand prints a traceback for them.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from cosmopipe import sims
from cosmopipe._version import __version__
from cosmopipe.integrity import CorruptFileError
from cosmopipe.schema import ConfigError
from cosmopipe.sims.config import ASSIGNMENTS, STEP_SPACINGS, MemoryLimitError, SimConfig, check_memory
from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.io import write_result

from .cluster import parse_bytes
from .plotting import plot_boost
from .plugins import optional_modules
from .rundir import RunDirError, describe_os_error, naming_file

__all__ = ["main", "build_parser"]

log = logging.getLogger("cosmopipe")


class UsageError(Exception):
    """A problem with the command-line input; reported without a traceback."""


# -- argument parsing helpers ----------------------------------------------
def parse_assignments(items: Sequence[str] | None, option: str,
                      allowed: Sequence[str] | None = None) -> dict[str, float]:
    """``["a=1", "b=2.5"]`` -> ``{"a": 1.0, "b": 2.5}`` for the command-line ``option``;
    names must be in ``allowed`` when given, each at most once, values finite numbers."""
    out: dict[str, float] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise UsageError(f"{option} expects NAME=VALUE, got {item!r}")
        if allowed is not None and name not in allowed:
            raise UsageError(f"{option}: unknown cosmology parameter {name!r}; allowed: {', '.join(allowed)}")
        if allowed is not None and name in out:
            raise UsageError(f"{option}: {name} given more than once")
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{option} {name}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{option} {name}: expected a finite number, got {text!r}")
        out[name] = value
    return out


def parse_params(items: Sequence[str] | None) -> dict[str, float]:
    """``["Omega_m=0.3", "w0=-0.9"]`` -> ``{"Omega_m": 0.3, "w0": -0.9}``."""
    return parse_assignments(items, "--param", Cosmology.names())


def parse_redshifts(values: Sequence[float]) -> tuple[float, ...]:
    """Output redshifts given in increasing or decreasing order -> decreasing tuple."""
    values = list(values)
    seen = set()
    for z in values:
        if z in seen:
            raise UsageError(f"--z: redshift {z:g} is given twice")
        seen.add(z)
    increasing = all(b > a for a, b in zip(values, values[1:]))
    decreasing = all(b < a for a, b in zip(values, values[1:]))
    if not (increasing or decreasing):
        shown = " ".join(f"{z:g}" for z in values)
        raise UsageError(f"--z: redshifts must be given in increasing or decreasing order, got {shown}")
    return tuple(sorted(values, reverse=True))


def _sim_defaults() -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(SimConfig)}


# -- sim ----------------------------------------------------------------------
def _add_sim(subparsers) -> argparse.ArgumentParser:
    d = _sim_defaults()
    p = subparsers.add_parser(
        "sim",
        help="run one COLA simulation and write its spectra to HDF5",
        description="Run one COLA simulation and write P(k), P_lin(k) and the boost at the output "
                    "redshifts to an HDF5 file. Unspecified cosmology parameters take the "
                    "EuclidEmulator2 reference values.",
    )
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help=f"cosmology parameter, repeatable; names: {', '.join(Cosmology.names())}")
    # Defaults are None so that SimConfig's own defaults apply (one source of truth).
    p.add_argument("--box", type=float, help=f"box side [Mpc/h] (default {d['box']:g})")
    p.add_argument("--particles", type=int, help=f"particles per side (default {d['particles']})")
    p.add_argument("--mesh", type=int, help="force mesh cells per side (default 2 x particles)")
    p.add_argument("--steps", type=int, help=f"COLA time steps (default {d['steps']})")
    p.add_argument("--z-init", type=float, help=f"initial redshift (default {d['z_init']:g})")
    p.add_argument("--z", type=float, nargs="+", metavar="Z",
                   help="output redshifts, in increasing or decreasing order (default 0)")
    p.add_argument("--seed", type=int, help=f"random seed of the initial field (default {d['seed']})")
    p.add_argument("--paired", action="store_true", default=None,
                   help="also run the phase-flipped partner and average the spectra")
    p.add_argument("--fixed-amplitude", action="store_true", default=None,
                   help="fix the initial mode amplitudes to sqrt(P(k))")
    p.add_argument("--assignment", metavar="{" + ",".join(ASSIGNMENTS) + "}",
                   help=f"force mass assignment (default {d['assignment']})")
    p.add_argument("--step-spacing", metavar="{" + ",".join(STEP_SPACINGS) + "}",
                   help=f"time steps uniform in a ('linear') or ln a ('log') (default {d['step_spacing']})")
    p.add_argument("--threads", type=int, help="threads for FFTs and particle loops (default all cores)")
    p.add_argument("--max-memory", metavar="SIZE",
                   help="refuse runs whose memory estimate exceeds SIZE, e.g. 64GB (default: the available "
                        "memory, MemAvailable)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also plot the boost (with EE2 where possible)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.h5", help="output HDF5 file")
    return p


def _sim_config_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """SimConfig keyword arguments for the options actually given."""
    mapping = {
        "box": args.box, "particles": args.particles, "mesh": args.mesh, "steps": args.steps,
        "z_init": args.z_init, "seed": args.seed, "paired": args.paired,
        "fixed_amplitude": args.fixed_amplitude, "assignment": args.assignment,
        "step_spacing": args.step_spacing, "threads": args.threads,
    }
    kwargs = {name: value for name, value in mapping.items() if value is not None}
    if args.z is not None:
        kwargs["z_out"] = parse_redshifts(args.z)
    return kwargs


def _check_writable(path: Path, what: str) -> None:
    """Fail before a long run, not after it, when an output cannot be written."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what}: cannot create directory {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{what}: directory {parent} is not writable")


def _simulate(cosmology, config, progress: bool, memory_limit: int | None = None):
    """The engine entry point (a seam for tests)."""
    # sims.run_simulation loads the engine (CAMB, numba kernels) on first use.
    return sims.run_simulation(cosmology, config, progress=progress, memory_limit=memory_limit)


def _memory_limit(text: str | None) -> int | None:
    """--max-memory SIZE -> bytes (None: the available memory)."""
    if text is None:
        return None
    try:
        limit = parse_bytes(text)
    except (ValueError, TypeError):
        limit = 0
    if limit <= 0:
        raise UsageError(f"--max-memory: expected a positive size such as 64GB or 512MiB, got {text!r}")
    return limit


def cmd_sim(args: argparse.Namespace) -> int:
    try:
        cosmology = Cosmology.from_dict(parse_params(args.param))
        config = SimConfig(**_sim_config_kwargs(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    memory_limit = _memory_limit(args.max_memory)
    try:
        check_memory(config, memory_limit)
    except MemoryLimitError as exc:
        raise UsageError(str(exc)) from None
    _check_writable(args.out, "--out")
    if args.plot is not None:
        _check_writable(args.plot, "--plot")

    log.info("cosmology: %s", cosmology.label())
    log.info("simulation: L=%g Mpc/h, %d^3 particles, %d^3 mesh, %d steps, z_out=%s, seed %d%s",
             config.box, config.particles, config.mesh, config.steps,
             ",".join(f"{z:g}" for z in config.z_out), config.seed, ", paired" if config.paired else "")
    result = _simulate(cosmology, config, progress=not args.no_progress, memory_limit=memory_limit)
    with naming_file(args.out):
        out = write_result(args.out, result)
    print(f"simulation written to {out}")
    if args.plot is not None:
        print(f"plot written to {plot_boost(result, args.plot)}")
    return 0


# -- top level ----------------------------------------------------------------
# A handler, or the "module:function" that holds it (imported when the subcommand runs).
Handler = Callable[[argparse.Namespace], int] | str

_SUBCOMMANDS: dict[str, tuple[Callable, Handler]] = {
    "sim": (_add_sim, cmd_sim),
}


# Subcommands of the other areas live in their own modules, each exposing
# SUBCOMMANDS = {name: (add_parser, handler)} and raising UsageError (from
# this module) for user errors.  These modules are imported to build the parser:
# they keep heavy imports out, in the handler modules they name.
_PLUGIN_MODULES = ("cosmopipe.pipeline.cli_campaign", "cosmopipe.pipeline.cli_emulators", "cosmopipe.pipeline.cli_posterior", "cosmopipe.pipeline.cli_data",
                   "cosmopipe.pipeline.cli_datavector", "cosmopipe.pipeline.cli_observables")


def _all_subcommands() -> dict[str, tuple[Callable, Handler]]:
    commands = dict(_SUBCOMMANDS)
    for module in optional_modules(_PLUGIN_MODULES):
        commands.update(module.SUBCOMMANDS)
    return commands


def _resolve(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """The handler itself, or the function a "module:function" string names, imported now."""
    if callable(handler):
        return handler
    module, _, name = handler.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosmopipe",
        description="COLA simulations, emulators and likelihoods for the nonlinear matter power spectrum.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add, handler) in _all_subcommands().items():
        sub = add(subparsers)
        # Also accept -v after the subcommand; SUPPRESS keeps a top-level -v.
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="debug log output")
        sub.set_defaults(handler=handler)
    return parser


def _setup_logging(verbose: bool) -> None:
    # No force=True: an embedding application (or pytest) keeps its handlers.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not verbose:
        # Dask's own INFO lines (workers starting and closing) drown ours.
        for name in ("distributed", "dask_jobqueue", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cosmopipe``; returns the exit code.

    argparse's own usage errors exit with code 2 via SystemExit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return _resolve(args.handler)(args)
    except (UsageError, ConfigError, RunDirError, CorruptFileError) as exc:
        message = str(exc)
    except OSError as exc:
        # A full or read-only disk is the user's to fix; any other OSError is a bug.
        message = describe_os_error(exc)
        if message is None:
            raise
    print(f"cosmopipe: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
