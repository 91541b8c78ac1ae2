"""``cosmopipe predict`` and ``cosmopipe validate``: using a trained emulator.

    cosmopipe predict EMULATOR --param Omega_m=0.3 --param w0=-0.9 --z 0 0.5 1 \\
        [--k-min K --k-max K --nk N] [--out table.csv | --out plot.png] [--compare ee2] [--extrapolate]
    cosmopipe validate EMULATOR --test DATASET [--out DIR] [--no-ee2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["SUBCOMMANDS", "MAX_PREDICT_POINTS"]

# Largest (k, z) grid `predict` evaluates: about 250 bytes of working memory per
# point, so 0.25 GB at the limit (10^8 points needed 23 GB and were killed).
MAX_PREDICT_POINTS = 1_000_000


def _usage(message: str):
    from .cli import UsageError

    return UsageError(message)


def _load(path: Path):
    from cosmopipe import emulators
    try:
        return emulators.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise _usage(str(exc)) from None


# -- predict --------------------------------------------------------------------------
def _add_predict(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="evaluate a trained emulator: boost B(k, z) (and P_nl) for one cosmology",
        description="Evaluate a trained emulator for one cosmology. Varied parameters not given take the "
                    "EuclidEmulator2 reference values; the emulator's fixed parameters (e.g. wa, m_nu) take "
                    "their training values. Prints a table (columns z, k [h/Mpc], boost, and pnl "
                    "[(Mpc/h)^3] when the emulator carries a linear-power emulator) or writes it to a CSV "
                    "file, or plots the boost to a PNG file. The grid (--nk values of k times the number of "
                    f"redshifts) may hold at most {MAX_PREDICT_POINTS:,} points.",
    )
    p.add_argument("emulator", type=Path, metavar="EMULATOR", help="emulator file (.h5) written by the train stage")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="cosmology parameter, repeatable")
    p.add_argument("--z", type=float, nargs="+", metavar="Z", default=[0.0],
                   help="redshifts, in increasing or decreasing order (default 0)")
    p.add_argument("--k-min", type=float, help="smallest k [h/Mpc] (default: the emulator's)")
    p.add_argument("--k-max", type=float, help="largest k [h/Mpc] (default: the emulator's)")
    p.add_argument("--nk", type=int, default=30,
                   help=f"number of log-spaced k (default 30; nk x number of redshifts <= {MAX_PREDICT_POINTS:,})")
    p.add_argument("--out", type=Path, metavar="FILE.csv|FILE.png", help="write a CSV table or a PNG plot")
    p.add_argument("--compare", choices=["ee2"], help="add EuclidEmulator2 (a column, or curves in the plot)")
    p.add_argument("--extrapolate", action="store_true", help="allow parameters outside the training box")
    return p


def _predict_inputs(args, emu):
    from cosmopipe.sims.cosmology import Cosmology

    from .cli import parse_params, parse_redshifts

    given = parse_params(args.param)
    reference = Cosmology().to_dict()
    params = {name: given.get(name, reference[name]) for name in emu.params}
    params.update({n: v for n, v in given.items() if n not in emu.params})
    z = np.asarray(sorted(parse_redshifts(args.z)), dtype=float)
    if args.nk < 1:
        raise _usage(f"--nk must be a positive integer, got {args.nk}")
    # One cosmology per call: the grid is nk x nz.
    if args.nk * z.size > MAX_PREDICT_POINTS:
        raise _usage(f"--nk {args.nk} with {z.size} redshift(s) asks for {args.nk * z.size:,} (k, z) points; "
                     f"at most {MAX_PREDICT_POINTS:,} are allowed (nk x number of redshifts)")
    k_lo, k_hi = emu.k_range
    k_min = k_lo if args.k_min is None else args.k_min
    k_max = k_hi if args.k_max is None else args.k_max
    if not (np.isfinite(k_min) and np.isfinite(k_max) and 0 < k_min <= k_max):
        raise _usage(f"--k-min/--k-max: need 0 < k-min <= k-max, got {k_min:g}, {k_max:g}")
    k = np.geomspace(k_min, k_max, args.nk) if args.nk > 1 else np.array([k_min])
    return params, z, k


def cmd_predict(args: argparse.Namespace) -> int:
    emu = _load(args.emulator)
    if getattr(emu, "kind", None) == "linear":
        raise _usage(f"{args.emulator}: a linear-power emulator has no boost; give a boost or hybrid emulator")
    params, z, k = _predict_inputs(args, emu)
    suffix = args.out.suffix.lower() if args.out is not None else None
    if suffix not in (None, ".csv", ".png"):
        raise _usage(f"--out: the file name must end in .csv (table) or .png (plot), got {args.out}")
    try:
        boost = emu.boost(k, z, params, extrapolate=args.extrapolate)
    except ValueError as exc:
        raise _usage(str(exc).replace("pass extrapolate=True", "pass --extrapolate")) from None

    if suffix == ".png":
        from cosmopipe.emulators.plots import plot_prediction

        path, note = plot_prediction(emu, params, k, z, args.out, compare_ee2=args.compare == "ee2",
                                     extrapolate=args.extrapolate)
        if note:
            print(f"note: {note}", file=sys.stderr)
        print(f"plot written to {path}")
        return 0

    columns = {"z": np.repeat(z, k.size), "k": np.tile(k, z.size), "boost": boost.ravel()}
    if emu.linear is not None:
        try:
            columns["pnl"] = emu.pnl(k, z, params, extrapolate=args.extrapolate).ravel()
        except ValueError as exc:
            print(f"note: no pnl column: {exc}", file=sys.stderr)
    if args.compare == "ee2":
        columns["ee2"] = _ee2_column(emu, params, k, z)
    text = _table(columns, csv=suffix == ".csv")
    if suffix == ".csv":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"table written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _ee2_column(emu, params, k, z):
    from cosmopipe.emulators.ee2 import ee2_boost

    full = {**emu.fixed, **params}
    try:
        return ee2_boost(k, z, full).ravel()
    except ValueError as exc:
        raise _usage(f"--compare ee2: {exc}") from None


def _table(columns: dict, csv: bool) -> str:
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    if csv:
        lines = [",".join(names)] + [",".join(f"{v:.8g}" for v in row) for row in rows]
    else:
        lines = ["".join(f"{n:>14s}" for n in names)] + ["".join(f"{v:14.6g}" for v in row) for row in rows]
    return "\n".join(lines) + "\n"


# -- validate -------------------------------------------------------------------------
def _add_validate(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate",
        help="error percentiles of an emulator against a held-out simulation dataset",
        description="Compare an emulator with the boosts of a held-out simulation dataset (and with "
                    "EuclidEmulator2 when the test cosmologies are inside its box). Writes "
                    "validation.csv, validation.md, validation.json and validation.png.",
    )
    p.add_argument("emulator", type=Path, metavar="EMULATOR", help="emulator file (.h5)")
    p.add_argument("--test", type=Path, required=True, metavar="DATASET", help="test dataset (.h5, e.g. datasets/test.h5)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory (default: validation/ next to the emulator file)")
    p.add_argument("--no-ee2", action="store_true", help="skip the comparison with EuclidEmulator2")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    return p


def cmd_validate(args: argparse.Namespace) -> int:
    from cosmopipe.sims.dataset import read_dataset

    from cosmopipe.emulators.validate import validate

    emu = _load(args.emulator)
    if getattr(emu, "kind", None) == "linear":
        raise _usage(f"{args.emulator}: validate compares boosts; give a boost or hybrid emulator")
    try:
        test = read_dataset(args.test)
    except (FileNotFoundError, ValueError) as exc:
        raise _usage(f"--test: {exc}") from None
    out = args.out if args.out is not None else args.emulator.parent / "validation"
    try:
        result = validate(emu, test, out, compare_ee2=not args.no_ee2, plot=not args.no_plot)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    sys.stdout.write(Path(result.files["markdown"]).read_text())
    print("\nwritten: " + ", ".join(result.files.values()))
    return 0


SUBCOMMANDS = {
    "predict": (_add_predict, cmd_predict),
    "validate": (_add_validate, cmd_validate),
}
