"""Stand-in training data: EuclidEmulator2 boosts at Latin-hypercube cosmologies.

For exercising and benchmarking the emulator machinery without running
simulations: the result is a :class:`cosmopipe.sims.dataset.SimDataset` shaped like
the simulate stage's output, with ``boost`` from EE2 (an independent,
smooth target), ``pk_lin`` a placeholder of ones and ``pk`` equal to the
boost.  The box must lie inside EE2's (EE2 cannot be extrapolated).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cosmopipe.sims.cosmology import Cosmology
from cosmopipe.sims.dataset import SimDataset
from cosmopipe.sims.design import latin_hypercube

from .ee2 import EE2_BOX, ee2_boost

__all__ = ["ee2_dataset", "WCDM_PARAMS"]

WCDM_PARAMS = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0")


def ee2_dataset(n: int, z: Sequence[float], k: Sequence[float], box: Mapping[str, tuple[float, float]] | None = None,
                fixed: Mapping[str, float] | None = None, seed: int = 0, design: str = "ee2-lhs"):
    """SimDataset of EE2 boosts at ``n`` Latin-hypercube points of ``box``.

    z      redshifts (stored decreasing, as the simulate stage does)
    k      wavenumbers [h/Mpc] inside EE2's range
    box    {name: (lower, upper)} of the varied parameters (default: EE2's box of
           the six wCDM parameters)
    fixed  values of the other Cosmology parameters (default: wa = 0, m_nu = 0.058 eV,
           the others EE2's reference)
    """
    box = dict(box) if box is not None else {name: EE2_BOX[name] for name in WCDM_PARAMS}
    varied = tuple(box)
    lower = np.array([box[v][0] for v in varied], dtype=float)
    upper = np.array([box[v][1] for v in varied], dtype=float)
    base = {**Cosmology(wa=0.0, m_nu=0.058).to_dict(), **dict(fixed or {})}
    theta = latin_hypercube(box, n, seed=seed)
    names = Cosmology.names()
    rows = [{**base, **dict(zip(varied, row))} for row in theta]
    z = np.sort(np.asarray(z, dtype=float))[::-1]
    k = np.asarray(k, dtype=float)
    boost = np.stack([ee2_boost(k, z, row) for row in rows])
    params = np.array([[row[name] for name in names] for row in rows])
    return SimDataset(names=names, params=params, varied=varied, lower=lower, upper=upper, z=z, k=k,
                      boost=boost, pk=boost.copy(), pk_lin=np.ones_like(boost),
                      nmodes=np.ones(k.size, dtype=np.int64), sim_ids=tuple(f"ee2-{seed}-{i:04d}" for i in range(n)),
                      timings=np.zeros(n), attrs={"design": design})
