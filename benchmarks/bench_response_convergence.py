"""Convergence of COLA's twin response R = B(theta)/B(theta_LCDM) at one campaign cosmology.

The cosmology of one twin pair of a consolidated dataset (default: train-0028 of the shipped
w0wa_cola128 training set, in the quintessence corner w0 + wa = -0.43, where COLA and EE2
differ most) and its LCDM projection are rerun paired-fixed with the same seed at the
campaign's set-up (128^3 particles, 320 Mpc/h, 384^3 mesh, 40 steps), with 80 steps, and with
a 512^3 force mesh; R is printed against EuclidEmulator2's and HMcode-2020's.

    python benchmarks/bench_response_convergence.py [SIM_ID [DATASET]]
    python benchmarks/bench_response_convergence.py --quick      # 32^3 particles: a one-minute smoke run

About 15 min on one idle core.  Measured 2026-12-06 for train-0028: 80 steps change R by at most
0.12 % (max |R/R_EE2 - 1| for k <= 1 at z = 2, 1, 0.5, 0: 0.55, 1.62, 3.95, 7.56 % with 40
steps; 0.51, 1.69, 4.03, 7.54 % with 80); the 512^3 mesh alone (4x the particle grid, force
resolution beyond the mass resolution) moves R by up to 15 % away from both EE2 and HMcode.
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

# (particles, box [Mpc/h], mesh, steps): the campaign's set-up, twice the steps, a finer force mesh
SETUPS = ((128, 320.0, 384, 40), (128, 320.0, 384, 80), (128, 320.0, 512, 40))
QUICK = tuple((32, 80.0, mesh // 4, steps // 4) for _, _, mesh, steps in SETUPS)
Z = np.array([2.0, 1.0, 0.5, 0.0])


def main(argv: list[str]) -> None:
    from cosmopipe.emulators.ee2 import ee2_boost
    from cosmopipe.emulators.hmcode_tail import hmcode_log_boost
    from cosmopipe.emulators.registry import model_file
    from cosmopipe.sims import Cosmology, SimConfig, run_simulation
    from cosmopipe.sims.dataset import read_dataset

    quick = "--quick" in argv
    argv = [a for a in argv if a != "--quick"]
    ds = read_dataset(argv[1] if len(argv) > 1 else model_file("w0wa_cola128").with_name("train.h5"))
    sim_id = argv[0] if argv else "train-0028"
    p = ds.param_dicts()[list(ds.sim_ids).index(sim_id)]
    lcdm = {**p, "w0": -1.0, "wa": 0.0}
    print(f"{sim_id}: " + ", ".join(f"{n} = {p[n]:.4g}" for n in ("Omega_m", "h", "A_s", "w0", "wa")))
    responses = {}
    for n, box, mesh, steps in QUICK if quick else SETUPS:
        label = f"{n}^3 / mesh {mesh}^3 / {steps} steps"
        cfg = SimConfig(box=box, particles=n, mesh=mesh, steps=steps, z_init=19.0, z_out=tuple(Z), paired=True,
                        fixed_amplitude=True, seed=5, k_max=min(1.2, np.pi * n / box), nk=30, threads=1)
        t0 = time.perf_counter()
        runs = [run_simulation(Cosmology.from_dict(c), cfg, progress=False) for c in (p, lcdm)]
        k = runs[0].k
        responses[label] = runs[0].boost / runs[1].boost
        print(f"{label}: {time.perf_counter() - t0:.0f} s", flush=True)
    keep = np.isfinite(k)  # bins with no mode (small boxes) are NaN
    k, responses = k[keep], {label: r[:, keep] for label, r in responses.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        r_ee2 = ee2_boost(k, Z, p) / ee2_boost(k, Z, lcdm)
    r_hm = np.exp(hmcode_log_boost(p, Z, k) - hmcode_log_boost(lcdm, Z, k))
    for j, z in enumerate(Z):
        for k_probe in (0.2, 0.5, 0.8, 1.0, 1.15):
            c = int(np.argmin(np.abs(k - k_probe)))
            print(f"z = {z:g}, k = {k[c]:.3f}: " + ", ".join(f"{lab} {r[j, c]:.4f}"
                                                             for lab, r in responses.items())
                  + f"; EE2 {r_ee2[j, c]:.4f}, HMcode {r_hm[j, c]:.4f}")
    sel = k <= 1.0
    for label, r in responses.items():
        print(f"{label}: max |R/R_EE2 - 1| (k <= 1) at z = 2, 1, 0.5, 0 [%]: "
              f"{np.round(100 * np.abs(r / r_ee2 - 1)[:, sel].max(1), 2)}; against HMcode "
              f"{np.round(100 * np.abs(r / r_hm - 1)[:, sel].max(1), 2)}")


if __name__ == "__main__":
    main(sys.argv[1:])
