"""Posterior figures and tables from the GetDist chains of ``sample`` runs.

A run directory holds ``<out>/summary.json`` (written by the sample stage; it
names the GetDist root ``<out>/<name>`` of ``<name>_<i>.txt``, ``.paramnames``,
``.ranges``, and the fiducial parameters of the mock data when the likelihoods
say).  :func:`constraints_tables` gives marginalised means and 68% limits
as Markdown and LaTeX (GetDist's limits: two-tail, or a one-tail 68% bound
when the posterior is open at a prior edge).  The triangle plot itself is
:func:`cosmopipe.pipeline.plotting.triangle_plot`.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["PosteriorRun", "find_chains", "load_run", "common_params", "constraints_tables"]

log = logging.getLogger("cosmopipe.posterior")


@dataclass(frozen=True)
class PosteriorRun:
    """One run's chains: GetDist root (no suffix), a label for legends, fiducial values."""

    root: Path
    label: str
    fiducial: dict = field(default_factory=dict, hash=False, compare=False)
    summary: dict = field(default_factory=dict, hash=False, compare=False)


def find_chains(run_dir: str | Path) -> PosteriorRun:
    """The GetDist chains of a run directory (or of a chain directory given directly).

    Raises FileNotFoundError naming what was looked for.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a directory")
    summaries = [run_dir / "summary.json"] if (run_dir / "summary.json").is_file() else sorted(
        run_dir.glob("*/summary.json"))
    summaries = [s for s in summaries if "getdist_root" in _read_json(s)]
    if len(summaries) > 1:
        dirs = ", ".join(str(s.parent) for s in summaries)
        raise FileNotFoundError(f"{run_dir}: several chain directories ({dirs}); give one of them instead of the "
                                "run directory")
    label = run_dir.name if run_dir.name not in ("chains", "") else run_dir.resolve().parent.name
    if summaries:
        summary = _read_json(summaries[0])
        root = Path(summary["getdist_root"])
        if not root.parent.is_dir():
            # The run directory was moved: the files sit next to the summary.
            root = summaries[0].parent / root.name
        _check_root(root)
        return PosteriorRun(root, label, dict(summary.get("fiducial") or {}), summary)
    names = sorted(run_dir.glob("*.paramnames")) or sorted(run_dir.glob("*/*.paramnames"))
    if len(names) == 1:
        root = names[0].with_name(names[0].name[: -len(".paramnames")])
        _check_root(root)
        return PosteriorRun(root, label)
    if names:
        raise FileNotFoundError(f"{run_dir}: several GetDist chain sets ({', '.join(map(str, names))}); "
                                "give one directory")
    raise FileNotFoundError(f"{run_dir}: no GetDist chains (expected <out>/summary.json from the sample stage, "
                            "or <name>.paramnames with <name>_<i>.txt)")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _check_root(root: Path) -> None:
    if not root.parent.joinpath(root.name + ".paramnames").is_file():
        raise FileNotFoundError(f"{root}.paramnames is missing")
    if not list(root.parent.glob(root.name + "_*.txt")) and not root.parent.joinpath(root.name + ".txt").is_file():
        raise FileNotFoundError(f"no chain files {root}_<i>.txt")


def load_run(run: PosteriorRun):
    """getdist MCSamples of a run (burn-in was removed when the chains were written)."""
    from getdist import loadMCSamples

    # GetDist prints the files it reads; keep stdout for the tables.
    with contextlib.redirect_stdout(io.StringIO()) as said:
        samples = loadMCSamples(str(run.root), settings={"ignore_rows": 0})
    log.debug("getdist: %s", said.getvalue().strip())
    samples.label = run.label
    return samples


def _plot_names(samples) -> list[str]:
    """Parameters worth plotting: sampled and derived, not the chi^2 columns."""
    return [p.name for p in samples.paramNames.names if not p.name.startswith("chi2")]


def common_params(samples_list: Sequence) -> list[str]:
    """Parameters present in every run, in the first run's order."""
    first = _plot_names(samples_list[0])
    return [p for p in first if all(s.paramNames.parWithName(p) is not None for s in samples_list[1:])]


def _check_params(samples_list: Sequence, params: Sequence[str], labels: Sequence[str]) -> None:
    for s, label in zip(samples_list, labels):
        missing = [p for p in params if s.paramNames.parWithName(p) is None]
        if missing:
            raise ValueError(f"run {label} has no parameter(s) {', '.join(missing)}; it has "
                             f"{', '.join(_plot_names(s))}")


def _latex_escape(text: str) -> str:
    return text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")


def constraints_tables(samples_list: Sequence, params: Sequence[str], labels: Sequence[str],
                       fiducial: Mapping[str, float] | None = None) -> tuple[str, str]:
    """(Markdown, LaTeX) tables: one row per parameter, one column per run with the
    marginalised mean and 68% limits, and a fiducial column when values are given."""
    _check_params(samples_list, params, labels)
    fiducial = dict(fiducial or {})
    with_fid = any(p in fiducial for p in params)
    cells = []
    for s in samples_list:
        _, texs = s.getLatex(params=list(params), limit=1)
        cells.append(texs)
    names = [samples_list[0].paramNames.parWithName(p).getLabel() for p in params]

    md_head = ["Parameter"] + list(labels) + (["fiducial"] if with_fid else [])
    md = ["| " + " | ".join(md_head) + " |", "|" + "---|" * len(md_head)]
    tex = ["\\begin{tabular}{l" + "c" * (len(labels) + with_fid) + "}", "\\hline",
           " & ".join(["Parameter"] + [_latex_escape(l) for l in labels] + (["fiducial"] if with_fid else []))
           + " \\\\", "\\hline"]
    for i, (p, label) in enumerate(zip(params, names)):
        values = [cells[j][i] for j in range(len(samples_list))]
        fid = [f"{fiducial[p]:.6g}" if p in fiducial else "" for _ in [0]] if with_fid else []
        md.append("| " + " | ".join([f"${label}$"] + [f"${v}$" for v in values] + fid) + " |")
        tex.append(" & ".join([f"${label}$"] + [f"${v}$" for v in values] + [f"${f}$" if f else "" for f in fid])
                   + " \\\\")
    tex += ["\\hline", "\\end{tabular}"]
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"
