"""``cosmopipe data list|check|download``: the public data sets the likelihoods read."""
from __future__ import annotations

import argparse

__all__ = ["SUBCOMMANDS"]


def _add_data(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data", help="list, check (sha256) or download the public data sets",
        description="The data directory is --data-dir, else $COSMOPIPE_DATA.")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="registered data sets")
    check = sub.add_parser("check", help="check that files are present with the registered checksums")
    check.add_argument("names", nargs="*", help="data sets (default: all)")
    check.add_argument("--data-dir")
    get = sub.add_parser("download", help="download missing files from their public URLs, verifying checksums")
    get.add_argument("names", nargs="+")
    get.add_argument("--data-dir")
    get.add_argument("--overwrite", action="store_true")
    return p


# The handler is named, not imported: cli.main imports it when the subcommand runs.
SUBCOMMANDS = {"data": (_add_data, "cosmopipe.pipeline.cmd_data:cmd_data")}
