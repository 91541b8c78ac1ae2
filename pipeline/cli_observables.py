"""``cosmopipe observables campaign|train|check``: the EDE observables emulator by hand
(the ``observables`` workflow stage does campaign + train on the workflow's cluster)."""
from __future__ import annotations

import argparse
import os

__all__ = ["SUBCOMMANDS"]


def _add(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("observables", help="EDE observables emulator: CAMB campaign, training, CAMB check")
    sub = p.add_subparsers(dest="obs_command", required=True, metavar="ACTION")
    c = sub.add_parser("campaign", help="CAMB runs on a Latin hypercube of DEFAULT_BOX, in chunks (resumable)")
    c.add_argument("--out", required=True)
    c.add_argument("--n", type=int, default=1200, help="C_ell campaign points (~6 s of CPU each)")
    c.add_argument("--n-test", type=int, default=50)
    c.add_argument("--n-background", type=int, default=4000,
                   help="background-only points (~0.2 s of CPU each) for the distance / H0 blocks")
    c.add_argument("--chunk", type=int, default=20)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--from-chains", default=None,
                   help="also draw --n-posterior points around the posterior of these chains")
    c.add_argument("--n-posterior", type=int, default=400)
    t = sub.add_parser("train", help="fit the emulator to a campaign and report Delta chi^2 on held-out points")
    t.add_argument("--campaign", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--test", nargs="+", default=None, help="held-out campaign file(s) (observable tables)")
    t.add_argument("--n-optimise", type=int, default=500,
                   help="points the GP kernel hyperparameters are fitted on (each optimiser step is O(n^3))")
    t.add_argument("--workers", type=int, default=0, help="Dask workers for the fit (0: in process)")
    t.add_argument("--parameter-coordinates", action="store_true",
                   help="regress on the parameters themselves (default: ln(pi - theta_i))")
    t.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    k = sub.add_parser("check", help="CAMB at posterior samples of an emulator chain: Delta chi^2 and "
                                     "importance-sampling shifts")
    k.add_argument("--chains", required=True, help="chain directory of a converged sample stage")
    k.add_argument("--emulator", required=True)
    k.add_argument("--n", type=int, default=200)
    k.add_argument("--out", default=None, help="report path without suffix (default CHAINS/camb_check)")
    k.add_argument("--workers", type=int, default=0)
    k.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    return p


# The handler is named, not imported: cli.main imports it (and with it the likelihood
# modules) when the subcommand runs.
SUBCOMMANDS = {"observables": (_add, "cosmopipe.pipeline.cmd_observables:cmd_observables")}
