"""The raw COLA twin responses of a campaign against EuclidEmulator2's and HMcode-2020's.

For every twin pair (theta, theta_LCDM, same seed) of a consolidated dataset whose theta lies
inside EE2's box, R_COLA = B(theta) / B(theta_LCDM) straight from the simulations (no
emulator), R_EE2 from EuclidEmulator2 and R_HM from CAMB's HMcode-2020 (two runs per pair).
Prints, per redshift, the median / p95 / max over pairs of max_{k <= k_max} |R_a / R_b - 1|
for the three pairs of models, and the fraction within 1 %: how far apart independent
w0waCDM nonlinear models are, next to how far the COLA hybrid is from EE2.

    python benchmarks/bench_response_models.py                     # the shipped w0wa_cola128 training set
    python benchmarks/bench_response_models.py --dataset out/w0wa_cola128/datasets/train.h5 --z 0 0.5 1

About 4 s of CAMB per pair.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main(argv=None) -> None:
    from cosmopipe.emulators.ee2 import ee2_boost
    from cosmopipe.emulators.hmcode_tail import hmcode_log_boost
    from cosmopipe.emulators.registry import model_file
    from cosmopipe.sims.dataset import read_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None, help="consolidated dataset (default: w0wa_cola128's train.h5)")
    ap.add_argument("--z", type=float, nargs="+", default=[0.0, 1.0], help="redshifts (on the dataset's grid)")
    ap.add_argument("--k-max", type=float, default=1.0, help="h/Mpc")
    args = ap.parse_args(argv)
    path = args.dataset or model_file("w0wa_cola128").with_name("train.h5")
    ds = read_dataset(path)
    ids = list(ds.sim_ids)
    index = {s: i for i, s in enumerate(ids)}
    params = ds.param_dicts()
    z = np.array(args.z, dtype=float)
    rows = [int(np.argmin(np.abs(ds.z - zi))) for zi in z]
    sel = ds.k <= args.k_max
    errors = {"COLA vs EE2": [], "COLA vs HMcode-2020": [], "HMcode-2020 vs EE2": []}
    size, t0 = [], time.perf_counter()
    for i, sid in enumerate(ids):
        twin = index.get(sid + "-lcdm")
        if sid.endswith("-lcdm") or twin is None:
            continue
        p = params[i]
        lcdm = {**p, "w0": -1.0, "wa": 0.0}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                r_ee2 = ee2_boost(ds.k, z, p) / ee2_boost(ds.k, z, lcdm)
        except ValueError:  # theta outside EE2's box (the training design is widened by 5 %)
            continue
        r_cola = (ds.boost[i] / ds.boost[twin])[rows]
        r_hm = np.exp(hmcode_log_boost(p, z, ds.k) - hmcode_log_boost(lcdm, z, ds.k))
        for key, (a, b) in zip(errors, ((r_cola, r_ee2), (r_cola, r_hm), (r_hm, r_ee2))):
            errors[key].append(np.abs(a / b - 1.0)[:, sel].max(axis=1))
        size.append(np.abs(r_ee2 - 1.0)[:, sel].max())
    n = len(size)
    print(f"{path}: {n} twin pairs inside EE2's box, k <= {args.k_max:g} h/Mpc ({time.perf_counter() - t0:.0f} s); "
          f"EE2's |R - 1| up to {100 * max(size):.1f} % (median {100 * np.median(size):.1f} %)")
    print("max_k |R_a/R_b - 1| over pairs: median / p95 / max [%], fraction within 1 %")
    for key, rows_ in errors.items():
        e = 100 * np.array(rows_)
        for j, zi in enumerate(z):
            print(f"  {key:20s} z = {zi:g}: {np.median(e[:, j]):.2f} / {np.percentile(e[:, j], 95):.2f} / "
                  f"{e[:, j].max():.2f}   {100 * np.mean(e[:, j] < 1):.0f} %")


if __name__ == "__main__":
    main()
