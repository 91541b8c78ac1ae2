"""``cosmopipe plot``: triangle plots and constraint tables of sample runs.

Runs are drawn as a cosmologist would show them: cosmological and derived parameters
(nuisances with ``--all``), labels with units, legends from the workflows' names,
fiducial markers, 68/95 % filled contours.  A run that did not converge gets a red
NOT CONVERGED banner in the figure and a WARNING line in the output; ``--strict``
refuses to plot it (exit status 2).  ``--thin-out DIR`` also writes each run's thinned
GetDist chain with provenance (pipeline/thin.py), the files a committed figure is
replotted from (docs/FIGURES.md).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .cli import UsageError, parse_assignments
from .plotting import apply_unit_labels, default_params, posterior_triangle
from .posterior import PosteriorRun, constraints_tables, find_chains, load_run
from .stages.sample_support import not_converged_line
from .thin import find_thinned, thin_run

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
                   help="parameters to show (default: the cosmological and derived ones common to the runs)")
    p.add_argument("--all", action="store_true", dest="show_all",
                   help="also show the likelihoods' nuisance parameters (photo-z, shear bias, IA, ...)")
    p.add_argument("--strict", action="store_true",
                   help="refuse to plot a run that did not converge (or has no convergence record): exit status 2")
    p.add_argument("--thin-out", type=Path, metavar="DIR",
                   help="also write each run's thinned GetDist chain (<= 5 MB) with provenance to DIR/<name>/, "
                        "the files to commit next to the figure")
    p.add_argument("--out", type=Path, metavar="FILE.png",
                   help="figure file, .png or .pdf (default: triangle.png in the first RUN_DIR); the tables go "
                        "to FILE.md and FILE.tex")
    p.add_argument("--labels", nargs="+", metavar="LABEL",
                   help="legend labels, one per RUN_DIR (default: the workflows' names)")
    p.add_argument("--mark", action="append", metavar="NAME=VALUE",
                   help="mark a parameter value (repeatable); adds to or overrides the fiducial values")
    p.add_argument("--no-fiducial", action="store_true",
                   help="do not mark the fiducial values of the workflow's mock data")
    return p


def _parse_marks(items) -> dict[str, float]:
    return parse_assignments(items, "--mark")


def _workflow_name(run: PosteriorRun) -> str:
    """Legend label: the workflow's name (summary, else the run directory's workflow.yaml)."""
    if run.summary.get("workflow"):
        return str(run.summary["workflow"])
    for directory in (run.root.parent, run.root.parent.parent):
        resolved = directory / "workflow.yaml"
        if resolved.is_file():
            import yaml

            try:
                name = (yaml.safe_load(resolved.read_text()) or {}).get("name")
            except yaml.YAMLError:
                name = None
            if name:
                return str(name)
    return run.label


def convergence_note(run: PosteriorRun, label: str) -> str:
    """'' for a converged run, else the warning line naming the run."""
    if run.summary.get("status") == "converged":
        return ""
    if "status" not in run.summary:
        return f"{label}: convergence unknown (no sampling summary next to the chains)"
    return f"{label}: {not_converged_line(run.summary)}"


def _find(run_dir: Path) -> PosteriorRun:
    try:
        return find_thinned(run_dir) or find_chains(run_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _labels(args, runs) -> list[str]:
    if args.labels is not None:
        if len(args.labels) != len(args.run_dirs):
            raise UsageError(f"--labels: give one label per RUN_DIR ({len(args.run_dirs)}), got {len(args.labels)}")
        return list(args.labels)
    labels = [_workflow_name(r) for r in runs]
    if len(set(labels)) != len(labels):
        labels = [f"{name} ({d})" for name, d in zip(labels, args.run_dirs)]
    return labels


def _params(args, samples, runs) -> list[str]:
    if args.params:
        return list(args.params)
    per_run = [default_params(s, r.summary.get("nuisance"), args.show_all) for s, r in zip(samples, runs)]
    params = [p for p in per_run[0] if all(p in other for other in per_run[1:])]
    if not params:
        raise UsageError("the runs have no parameter in common; choose some with --params")
    return params


def cmd_plot(args: argparse.Namespace) -> int:
    marks = _parse_marks(args.mark)
    runs = [_find(d) for d in args.run_dirs]
    labels = _labels(args, runs)
    notes = [n for n in (convergence_note(r, l) for r, l in zip(runs, labels)) if n]
    if notes and args.strict:
        for note in notes:
            print(f"cosmopipe plot: refused (--strict): {note}")
        return 2
    samples = [load_run(r) for r in runs]
    for s, label in zip(samples, labels):
        apply_unit_labels(s)
        s.label = label
    params = _params(args, samples, runs)
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
    banner = "  |  ".join(notes)
    try:
        # The tables check that every run has every parameter (one-line error) before GetDist draws.
        markdown, latex = constraints_tables(samples, params, labels,
                                             fiducial={k: v for k, v in fiducial.items() if k in params})
        figure = posterior_triangle(samples, params, out, labels, markers=fiducial, banner=banner)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    md_path, tex_path = out.with_suffix(".md"), out.with_suffix(".tex")
    md_path.write_text(markdown)
    tex_path.write_text(latex)
    print(markdown)
    if args.thin_out is not None:
        for r, label in zip(runs, labels):
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
            written = thin_run(r, args.thin_out, name)
            meta = json.loads((written / "thinned.json").read_text())["provenance"]
            print(f"thinned chain of {label}: {written} ({meta['rows_kept']} of {meta['rows_in']} rows, "
                  f"thinned by {meta['thinned_by']})")
    print(f"figure written to {figure}; tables to {md_path} and {tex_path}")
    for note in notes:
        print(f"WARNING: {note}")
    return 0


SUBCOMMANDS = {"plot": (_add_plot, cmd_plot)}
