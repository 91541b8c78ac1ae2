"""``cosmopipe predict``, ``validate``, ``models`` and ``model-card``: using a trained emulator.

    cosmopipe predict EMULATOR --param Omega_m=0.3 --param w0=-0.9 --z 0 0.5 1 \\
        [--k-min K --k-max K --nk N | --k K ...] [--out table.csv | --out plot.png] [--compare ee2] [--extrapolate]
    cosmopipe predict --emulator NAME|PATH --table cosmologies.csv --z ... [--k ...] --out out.csv|out.h5
    cosmopipe validate EMULATOR --test DATASET [--out DIR] [--no-ee2]
    cosmopipe models
    cosmopipe model-card EMULATOR --out DIR [--name NAME] [--train DATASET] [--test DATASET] [--no-ee2]
                         [--ee2-points N]

EMULATOR is a shipped model's name (``cosmopipe models``) or an emulator file.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from cosmopipe import emulators
from cosmopipe.emulators.ee2 import ee2_boost
from cosmopipe.emulators.core import tail_line
from cosmopipe.emulators.plots import plot_prediction
from cosmopipe.emulators.registry import model_info, models_root, predict
from cosmopipe.emulators.validate import validate
from cosmopipe.integrity import text
from cosmopipe.provenance import code_version
from cosmopipe.sims.dataset import read_dataset

from .cli import UsageError, parse_params, parse_redshifts

__all__ = ["SUBCOMMANDS", "MAX_PREDICT_POINTS"]

# Largest (k, z) grid `predict` evaluates: about 250 bytes of working memory per
# point, so 0.25 GB at the limit (10^8 points needed 23 GB and were killed).
MAX_PREDICT_POINTS = 1_000_000
# A table's predictions are (n, nz, nk) arrays: at most this many values in all.
MAX_TABLE_POINTS = 20_000_000


def _load(name):
    try:
        return emulators.load(name)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None


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
    p.add_argument("emulator", nargs="?", metavar="EMULATOR",
                   help="a shipped model name (see `cosmopipe models`) or an emulator file (.h5)")
    p.add_argument("--emulator", dest="emulator_opt", metavar="NAME|PATH", help="the same, as an option")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="cosmology parameter, repeatable")
    p.add_argument("--table", type=Path, metavar="COSMOLOGIES.csv",
                   help="a CSV file of cosmologies (header: parameter names, one row each); --out then "
                        "takes .csv (one row per cosmology, z and k) or .h5 ((n, nz, nk) arrays)")
    p.add_argument("--z", type=float, nargs="+", metavar="Z", default=None,
                   help="redshifts, in increasing or decreasing order (default 0)")
    p.add_argument("--k", type=float, nargs="+", metavar="K", default=None,
                   help="wavenumbers [h/Mpc] (instead of --k-min/--k-max/--nk)")
    p.add_argument("--k-min", type=float, help="smallest k [h/Mpc] (default: the emulator's)")
    p.add_argument("--k-max", type=float, help="largest k [h/Mpc] (default: the emulator's)")
    p.add_argument("--nk", type=int, default=30,
                   help=f"number of log-spaced k (default 30; nk x number of redshifts <= {MAX_PREDICT_POINTS:,})")
    p.add_argument("--out", type=Path, metavar="FILE.csv|FILE.png|FILE.h5",
                   help="write a CSV table or a PNG plot (with --table: CSV or HDF5)")
    p.add_argument("--compare", choices=["ee2"], help="add EuclidEmulator2 (a column, or curves in the plot)")
    p.add_argument("--extrapolate", action="store_true", help="allow parameters outside the training box")
    return p


def _predict_inputs(args, emu):
    z = np.asarray(sorted(parse_redshifts(args.z if args.z is not None else [0.0])), dtype=float)
    if args.nk < 1:
        raise UsageError(f"--nk must be a positive integer, got {args.nk}")
    # One cosmology per call: the grid is nk x nz.  Refused before anything is evaluated.
    if args.nk * z.size > MAX_PREDICT_POINTS:
        raise UsageError(f"--nk {args.nk} with {z.size} redshift(s) asks for {args.nk * z.size:,} (k, z) points; "
                     f"at most {MAX_PREDICT_POINTS:,} are allowed (nk x number of redshifts)")
    params = emu.space.complete(parse_params(args.param))
    if args.k is not None:
        if args.k_min is not None or args.k_max is not None:
            raise UsageError("--k: give either --k or --k-min/--k-max/--nk, not both")
        return params, z, np.sort(np.asarray(args.k, dtype=float))
    k_lo, k_hi = emu.k_range
    k_min = k_lo if args.k_min is None else args.k_min
    k_max = k_hi if args.k_max is None else args.k_max
    if not (np.isfinite(k_min) and np.isfinite(k_max) and 0 < k_min <= k_max):
        raise UsageError(f"--k-min/--k-max: need 0 < k-min <= k-max, got {k_min:g}, {k_max:g}")
    k = np.geomspace(k_min, k_max, args.nk) if args.nk > 1 else np.array([k_min])
    return params, z, k


def _emulator_arg(args) -> str:
    if args.emulator and args.emulator_opt and args.emulator != args.emulator_opt:
        raise UsageError(f"predict: two emulators given ({args.emulator}, {args.emulator_opt}); give one")
    name = args.emulator or args.emulator_opt
    if not name:
        raise UsageError("predict: give the emulator (a shipped model name or a file), e.g. --emulator NAME")
    return name


def cmd_predict(args: argparse.Namespace) -> int:
    name = _emulator_arg(args)
    emu = _load(name)
    if getattr(emu, "kind", None) not in ("boost", "hybrid"):
        raise UsageError(f"{name}: a {emu.kind} emulator has no boost; give a boost or hybrid emulator")
    if args.table is not None:
        return _predict_table(args, emu, name)
    params, z, k = _predict_inputs(args, emu)
    suffix = args.out.suffix.lower() if args.out is not None else None
    if suffix not in (None, ".csv", ".png"):
        raise UsageError(f"--out: the file name must end in .csv (table) or .png (plot), got {args.out}")
    try:
        boost = emu.boost(k, z, params, extrapolate=args.extrapolate)
    except ValueError as exc:
        raise UsageError(str(exc).replace("pass extrapolate=True", "pass --extrapolate")) from None

    if suffix == ".png":
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
    full = {**emu.fixed, **params}
    try:
        return ee2_boost(k, z, full).ravel()
    except ValueError as exc:
        raise UsageError(f"--compare ee2: {exc}") from None


def _table(columns: dict, csv: bool) -> str:
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    if csv:
        lines = [",".join(names)] + [",".join(f"{v:.8g}" for v in row) for row in rows]
    else:
        lines = ["".join(f"{n:>14s}" for n in names)] + ["".join(f"{v:14.6g}" for v in row) for row in rows]
    return "\n".join(lines) + "\n"



# -- predict --table ------------------------------------------------------------------
def read_table(path: Path) -> dict[str, np.ndarray]:
    """Columns of a CSV table of cosmologies (header: parameter names); one-line errors name
    the file, the line and the column."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--table {path}: cannot be read ({exc})") from None
    if len(rows) < 2:
        raise UsageError(f"--table {path}: needs a header of parameter names and at least one row of values")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise UsageError(f"--table {path}: the header has an empty or repeated column name: {', '.join(header)}")
    values = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UsageError(f"--table {path}: line {i} has {len(row)} values, the header {len(header)} names")
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise UsageError(f"--table {path}: line {i}, column {header[j]}: {cell!r} is not a number") from None
    return {name: values[:, j] for j, name in enumerate(header)}


def _predict_table(args, emu, name: str) -> int:
    suffix = args.out.suffix.lower() if args.out is not None else None
    if suffix not in (".csv", ".h5"):
        raise UsageError(f"--out: with --table the file name must end in .csv or .h5, got {args.out}")
    if args.compare:
        raise UsageError("--compare: not available with --table")
    columns = read_table(args.table)
    given = {n: v for n, v in parse_params(args.param).items() if n not in columns}
    _, z, k = _predict_inputs(args, emu)
    n = len(next(iter(columns.values())))
    if n * z.size * k.size > MAX_TABLE_POINTS:
        raise UsageError(f"--table: {n} cosmologies x {z.size} z x {k.size} k = {n * z.size * k.size:,} values; at "
                     f"most {MAX_TABLE_POINTS:,} (split the table)")
    try:
        result = predict(emu, {**columns, **given}, z, k, extrapolate=args.extrapolate, pnl=True)
    except ValueError as exc:
        raise UsageError(f"--table {args.table}: " + str(exc).replace("pass extrapolate=True", "pass --extrapolate")) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    (_write_h5 if suffix == ".h5" else _write_long_csv)(args.out, result, name, emu)
    print(f"{n} cosmologies x {z.size} z x {k.size} k written to {args.out}")
    return 0


def _write_long_csv(path: Path, result: dict, name: str, emu) -> None:
    z, k, boost = result["z"], result["k"], result["boost"]
    n = boost.shape[0]
    names = [p for p in emu.params] + [p for p in result["params"] if p not in emu.params]
    cols = {"cosmology": np.repeat(np.arange(n), z.size * k.size)}
    for p in names:
        cols[p] = np.repeat(np.broadcast_to(np.asarray(result["params"][p], float), (n,)), z.size * k.size)
    cols["z"] = np.tile(np.repeat(z, k.size), n)
    cols["k"] = np.tile(k, n * z.size)
    cols["boost"] = boost.ravel()
    if "pnl" in result:
        cols["pnl"] = result["pnl"].ravel()
    table = np.column_stack([cols[c] for c in cols])
    fmt = ["%d"] + ["%.10g"] * (len(cols) - 1)
    np.savetxt(path, table, delimiter=",", fmt=fmt, header=",".join(cols), comments="")


def _write_h5(path: Path, result: dict, name: str, emu) -> None:
    n = result["boost"].shape[0]
    with h5py.File(path, "w") as f:
        f.create_dataset("boost", data=result["boost"])
        if "pnl" in result:
            f.create_dataset("pnl", data=result["pnl"]).attrs["units"] = text("(Mpc/h)^3")
        f.create_dataset("z", data=result["z"])
        f.create_dataset("k", data=result["k"]).attrs["units"] = text("h/Mpc")
        g = f.create_group("params")
        for p, v in result["params"].items():
            g.create_dataset(p, data=np.broadcast_to(np.asarray(v, float), (n,)))
        f.attrs["emulator"] = text(str(name))
        f.attrs["emulator_kind"] = text(emu.kind)
        f.attrs["emulator_file"] = text(str(getattr(emu, "_source", "")))
        f.attrs["fixed"] = text(json.dumps(emu.space.fixed))
        f.attrs["code_version"] = text(code_version())
        f.attrs["created"] = text(datetime.now(timezone.utc).isoformat(timespec="seconds"))
        f.attrs["shape"] = text("boost[cosmology, z, k]")


# -- models and model-card ----------------------------------------------------------------
def _add_models(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="list the shipped emulator models with their box and accuracy",
                              description="List the emulator models shipped with cosmopipe (or under "
                                          "$COSMOPIPE_MODELS), with their parameter box, k and z range and accuracy.")
    p.add_argument("--root", type=Path, help="a models directory instead of the shipped one")
    return p


def cmd_models(args: argparse.Namespace) -> int:
    try:
        models = model_info(args.root)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not models:
        print(f"no models in {models_root(args.root)}")
        return 0
    for m in models:
        box = ", ".join(f"{n} [{lo:.4g}, {hi:.4g}]" for n, (lo, hi) in m.get("box", {}).items())
        print(f"{m['name']}: {m.get('kind', '?')} emulator" + (f" ({m['mode']} mode)" if m.get("mode") else ""))
        print(f"  box       {box}")
        if "provides" in m:
            print(f"  provides  {', '.join(m['provides'])} (ell <= {m.get('lmax', '?')}); a theory provider: "
                  f"theory: {{provider: emulator, path: {m['name']}}}")
        else:
            (k_lo, k_hi), (z_lo, z_hi) = m.get("k_range", (0, 0)), m.get("z_range", (0, 0))
            print(f"  k         {k_lo:.4g} - {k_hi:.4g} h/Mpc;  z {z_lo:.4g} - {z_hi:.4g}")
        if "tail_k_max" in m:
            print(tail_line(m["tail_k_max"]))
        print(f"  accuracy  {m.get('accuracy', 'not recorded')}")
    return 0


def _add_model_card(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("model-card", help="write a model directory (emulator, datasets, manifest, model card)",
                              description="Copy an emulator (and its datasets) into a model directory, validate it "
                                          "against the test set (and EuclidEmulator2), time it, and write "
                                          "MODEL_CARD.md and MANIFEST.json with the sha256 of every file.")
    p.add_argument("emulator", type=Path, metavar="EMULATOR", help="emulator file (.h5)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the model directory to write")
    p.add_argument("--name", help="the model's name (default: the directory's name)")
    p.add_argument("--train", type=Path, metavar="DATASET", help="training dataset to ship with it")
    p.add_argument("--test", type=Path, metavar="DATASET", help="held-out test dataset (validated and shipped); for an "
                                                                "EDE observables emulator its held-out CAMB table")
    p.add_argument("--posterior-check", type=Path, metavar="JSON",
                   help="observables emulator: the report of `cosmopipe observables check` (CAMB at posterior samples)")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="observables emulator: the data directory of its likelihoods (default $COSMOPIPE_DATA)")
    p.add_argument("--description", default="", help="a sentence for the top of the card")
    p.add_argument("--no-ee2", action="store_true", help="skip the comparison with EuclidEmulator2")
    p.add_argument("--ee2-points", type=int, default=0, metavar="N",
                   help="also compare with EuclidEmulator2 at N Latin-hypercube cosmologies over the box "
                        "(a larger sample than the held-out simulations; 0: not done)")
    return p


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
    emu = _load(args.emulator)
    if getattr(emu, "kind", None) == "linear":
        raise UsageError(f"{args.emulator}: validate compares boosts; give a boost or hybrid emulator")
    try:
        test = read_dataset(args.test)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"--test: {exc}") from None
    out = args.out if args.out is not None else args.emulator.parent / "validation"
    try:
        result = validate(emu, test, out, compare_ee2=not args.no_ee2, plot=not args.no_plot)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(Path(result.files["markdown"]).read_text())
    print("\nwritten: " + ", ".join(result.files.values()))
    return 0


SUBCOMMANDS = {
    "predict": (_add_predict, cmd_predict),
    "validate": (_add_validate, cmd_validate),
    "models": (_add_models, cmd_models),
    "model-card": (_add_model_card, "cosmopipe.pipeline.cmd_model_card:cmd_model_card"),
}
