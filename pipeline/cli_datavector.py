"""``cosmopipe datavector``: the xi+- vector of a workflow's shear likelihood, in
CosmoLike's modelvector format, and Delta chi^2 between two such vectors.

    cosmopipe datavector WORKFLOW.yaml [--param NAME=VALUE ...] --out FILE [--cov FILE]
    cosmopipe datavector [WORKFLOW.yaml] --compare FILE1 FILE2 [--cov FILE]

The first writes the theory vector at the given parameters (the workflow's
``data.fiducial`` for the others; cosmological and nuisance names) as rows
``index value``; ``--cov`` also writes the likelihood's covariance (Gaussian at
the fiducial unless the workflow names a file) as a plain text matrix.  The
second prints Delta chi^2 over all points and per l_max scale cut, with the
covariance of ``--cov`` or else of the workflow.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cosmopipe.schema import Section, load_yaml

from .cli import UsageError, parse_assignments

# The likelihood modules are imported in the commands: they (numba among them) take about
# 0.4 s to import, which `cosmopipe --help` and the other subcommands should not pay.

__all__ = ["SUBCOMMANDS"]

_SECTION = ("sample", "likelihoods", "lsst_y1_shear")


def _add(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "datavector", help="write the shear xi+- vector (CosmoLike modelvector format) or compare two",
        description=__doc__.split("\n\n")[0])
    p.add_argument("workflow", nargs="?", help="workflow file with a sample.likelihoods.lsst_y1_shear section")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeatable)")
    p.add_argument("--out", help="modelvector file to write")
    p.add_argument("--cov", help="with --out: also write the covariance here; with --compare: read it")
    p.add_argument("--compare", nargs=2, metavar=("FILE1", "FILE2"), help="print Delta chi^2 between two vectors")
    return p


def _likelihood(path: str):
    from cosmopipe.likelihoods.shear import from_config
    raw = load_yaml(path)
    node = raw
    for key in _SECTION:
        if not isinstance(node, dict) or key not in node:
            raise UsageError(f"{path}: no {'.'.join(_SECTION)} section (the shear likelihood)")
        node = node[key]
    info = {"data_dir": raw.get("data_dir"), "run_dir": None}
    return from_config(Section(node, ".".join(_SECTION), str(path)), info)


def _parse_params(items, allowed) -> dict[str, float]:
    return parse_assignments(items, "--param", list(allowed))


def _write(args) -> int:
    from cosmopipe.likelihoods.shear.modelvector import write_modelvector

    if args.workflow is None:
        raise UsageError("datavector: a WORKFLOW file is needed with --out")
    lik = _likelihood(args.workflow)
    params = _parse_params(args.param, lik.model.parameter_names())
    try:
        vector = lik.model.data_vector(params)
    except ValueError as exc:
        raise UsageError(f"--param: {exc}") from None
    print(f"data vector ({vector.size} entries: xi+ then xi-, {len(lik.model.pairs)} pairs x "
          f"{lik.model.ntheta} theta) written to {write_modelvector(args.out, vector)}")
    if args.cov:
        np.savetxt(args.cov, lik.cov, fmt="%.10e")
        print(f"covariance ({lik.cov.shape[0]} x {lik.cov.shape[1]}) written to {args.cov}")
    return 0


def _compare(args) -> int:
    from cosmopipe.likelihoods.shear.covariance import load_covariance
    from cosmopipe.likelihoods.shear.hankel import theta_edges
    from cosmopipe.likelihoods.shear.modelvector import cosmolike_3x2pt_size, delta_chi2_by_cut, read_modelvector

    if args.workflow is None and args.cov is None:
        raise UsageError("datavector --compare: give a WORKFLOW (its covariance) or --cov FILE")
    lik = _likelihood(args.workflow) if args.workflow else None
    edges = lik.model.theta_edges if lik else theta_edges()
    nbins = lik.model.nbins if lik else 5
    npairs = nbins * (nbins + 1) // 2
    size = 2 * npairs * (edges.size - 1)
    full = cosmolike_3x2pt_size(nbins, edges.size - 1)
    a, b = (read_modelvector(f, size, full) for f in args.compare)
    cov = load_covariance(Path(args.cov), size) if args.cov else lik.cov
    print(f"Delta chi^2 between {args.compare[0]} and {args.compare[1]}:")
    for cut, (n, chi2) in delta_chi2_by_cut(a, b, np.asarray(cov), edges, npairs).items():
        print(f"  {cut:<14s} {n:4d} points   {chi2:.4g}")
    return 0


def cmd_datavector(args: argparse.Namespace) -> int:
    from cosmopipe.likelihoods.base import LikelihoodError

    if bool(args.out) == bool(args.compare):
        raise UsageError("datavector: give exactly one of --out FILE or --compare FILE1 FILE2")
    try:
        return _compare(args) if args.compare else _write(args)
    except LikelihoodError as exc:
        raise UsageError(str(exc)) from None


SUBCOMMANDS = {"datavector": (_add, cmd_datavector)}
