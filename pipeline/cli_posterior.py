"""``cosmopipe plot``: triangle plots and constraint tables of sample runs."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["SUBCOMMANDS"]

log = logging.getLogger("cosmopipe")


def _add_plot(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot", help="GetDist triangle plot and constraint tables of sample runs",
        description="Overlay the posteriors of one or more runs of the sample stage in a GetDist triangle plot "
                    "(68/95% filled contours, fiducial values marked) and write the marginalised means and "
                    "68% limits as Markdown (also printed) and LaTeX tables next to the figure.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run directory of a workflow with a sample stage (or its chain directory)")
    p.add_argument("--params", nargs="+", metavar="NAME",
                   help="parameters to show (default: all sampled and derived ones common to the runs)")
    p.add_argument("--out", type=Path, metavar="FILE.png",
                   help="figure file, .png or .pdf (default: triangle.png in the first RUN_DIR); the tables go "
                        "to FILE.md and FILE.tex")
    p.add_argument("--labels", nargs="+", metavar="LABEL",
                   help="legend labels, one per RUN_DIR (default: directory names)")
    p.add_argument("--mark", action="append", metavar="NAME=VALUE",
                   help="mark a parameter value (repeatable); adds to or overrides the fiducial values")
    p.add_argument("--no-fiducial", action="store_true",
                   help="do not mark the fiducial values of the workflow's mock data")
    return p


def _parse_marks(items) -> dict[str, float]:
    from .cli import parse_assignments

    return parse_assignments(items, "--mark")


def cmd_plot(args: argparse.Namespace) -> int:
    from .cli import UsageError
    from .posterior import common_params, constraints_tables, find_chains, load_run, triangle_plot

    marks = _parse_marks(args.mark)
    if args.labels is not None and len(args.labels) != len(args.run_dirs):
        raise UsageError(f"--labels: give one label per RUN_DIR ({len(args.run_dirs)}), got {len(args.labels)}")
    runs = []
    for run_dir in args.run_dirs:
        try:
            runs.append(find_chains(run_dir))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    labels = list(args.labels) if args.labels else [r.label for r in runs]
    if len(set(labels)) != len(labels):
        labels = [str(r.root.parent) for r in runs]
    samples = [load_run(r) for r in runs]
    params = list(args.params) if args.params else common_params(samples)
    if not params:
        raise UsageError("the runs have no parameter in common; choose some with --params")
    fiducial = {}
    if not args.no_fiducial:
        for r in runs:
            for k, v in r.fiducial.items():
                fiducial.setdefault(k, v)
    fiducial.update(marks)
    unknown = sorted(set(marks) - set(params))
    if unknown:
        log.warning("--mark: %s not among the plotted parameters (%s)", ", ".join(unknown), ", ".join(params))
    out = args.out if args.out is not None else args.run_dirs[0] / "triangle.png"
    if out.suffix.lower() not in (".png", ".pdf"):
        raise UsageError(f"--out: the figure must be a .png or .pdf file, got {out}")
    try:
        figure = triangle_plot(samples, params, out, labels, markers=fiducial)
        markdown, latex = constraints_tables(samples, params, labels,
                                             fiducial={k: v for k, v in fiducial.items() if k in params})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    md_path, tex_path = out.with_suffix(".md"), out.with_suffix(".tex")
    md_path.write_text(markdown)
    tex_path.write_text(latex)
    print(markdown)
    print(f"figure written to {figure}; tables to {md_path} and {tex_path}")
    return 0


SUBCOMMANDS = {"plot": (_add_plot, cmd_plot)}
