"""``cosmopipe datavector``: the handler (the parser and the description are in
cli_datavector.py).

Imported by :func:`cosmopipe.pipeline.cli.main` only when the subcommand runs: the
likelihood modules (numba among them) take about a second to import, which
``cosmopipe --help`` and the other subcommands should not pay.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.shear import from_config
from cosmopipe.likelihoods.shear.covariance import load_covariance
from cosmopipe.likelihoods.shear.hankel import theta_edges
from cosmopipe.likelihoods.shear.modelvector import (cosmolike_3x2pt_size, delta_chi2_by_cut, read_modelvector,
                                                     write_modelvector)
from cosmopipe.schema import Section, load_yaml

from .cli import UsageError, parse_assignments

__all__ = ["cmd_datavector"]

_SECTION = ("sample", "likelihoods", "lsst_y1_shear")


def _likelihood(path: str):
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
    if bool(args.out) == bool(args.compare):
        raise UsageError("datavector: give exactly one of --out FILE or --compare FILE1 FILE2")
    try:
        return _compare(args) if args.compare else _write(args)
    except LikelihoodError as exc:
        raise UsageError(str(exc)) from None
