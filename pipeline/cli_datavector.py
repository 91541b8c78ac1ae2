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

__all__ = ["SUBCOMMANDS"]


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


# The handler is named, not imported: cli.main imports it (and with it the likelihood
# modules) when the subcommand runs.
SUBCOMMANDS = {"datavector": (_add, "cosmopipe.pipeline.cmd_datavector:cmd_datavector")}
