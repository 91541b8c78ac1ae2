"""GetDist text output of the chains."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .backend import _atomic_text, read_chain
from .posterior import Posterior

__all__ = ["write_getdist"]


def write_getdist(root: Path, posterior: Posterior, chain_files: Sequence[Path], discard: int, thin: int) -> list[Path]:
    """GetDist text chains ``<root>_<i>.txt`` (weight, -ln posterior, parameters, derived),
    ``<root>.paramnames`` (derived names end in '*') and ``<root>.ranges`` (prior bounds, N = none).

    Derived columns: each derived parameter and ``chi2__<likelihood>`` = -2 ln L.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    nlik = len(posterior.likelihoods)
    written = []
    for i, path in enumerate(chain_files):
        samples, lnp, blobs = read_chain(path, discard, thin)
        derived = blobs[:, nlik:] if blobs is not None else np.empty((len(samples), 0))
        chi2 = -2.0 * blobs[:, :nlik] if blobs is not None else np.empty((len(samples), 0))
        table = np.column_stack([np.ones(len(samples)), -lnp, samples, derived, chi2])
        target = root.parent / f"{root.name}_{i + 1}.txt"
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        np.savetxt(tmp, table, fmt="%.12e")
        os.replace(tmp, target)
        written.append(target)
    lines = [f"{p.name}\t{p.latex or p.name}" for p in posterior.sampled]
    lines += [f"{d.name}*\t{d.latex or d.name}" for d in posterior.derived]
    lines += [f"chi2__{lik.name}*\t\\chi^2_{{\\rm {lik.name.replace('_', '-')}}}" for lik in posterior.likelihoods]
    paramnames, ranges_file = root.parent / f"{root.name}.paramnames", root.parent / f"{root.name}.ranges"
    _atomic_text(paramnames, "\n".join(lines) + "\n")
    fmt = lambda x: repr(float(x)) if math.isfinite(x) else "N"  # noqa: E731
    ranges = [f"{p.name} {fmt(p.prior.lower)} {fmt(p.prior.upper)}" for p in posterior.sampled]
    _atomic_text(ranges_file, "\n".join(ranges) + "\n")
    return written + [paramnames, ranges_file]