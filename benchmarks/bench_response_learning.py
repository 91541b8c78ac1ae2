"""How many twin pairs does the dark-energy response emulator need, and which inputs?

EuclidEmulator2 emulates w0waCDM itself, so its own response R = B(theta) / B(theta_LCDM)
is a noiseless stand-in for the COLA twins' (same box, same grid as the production
campaign workflows/w0wa_cola128.yaml: 16 z in [0, 3], 40 k up to 1.25 h/Mpc).  Training the
response emulator on N EE2 twin pairs and testing it on 200 others separates the
emulator's interpolation error (what more simulations buy) from COLA's own error (what
resolution buys, benchmarks/bench_hybrid_floor.py).

    python benchmarks/bench_response_learning.py [--n 25 50 100 200] [--test 200] [--quick]

Prints, for each N and input set, the 50th/95th percentile and the maximum over test
cosmologies of max_{z, k <= 1 h/Mpc} |R_emu / R_EE2 - 1|, and the fit time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.response import ee2_twin_dataset, train_response, twin_pairs
from cosmopipe.emulators.training import FitSettings

Z = [3.0, 2.5, 2.25, 2.0, 1.75, 1.5, 1.25, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
K = np.geomspace(0.03, 1.25, 40)   # h/Mpc
INPUTS = {"Omega_m, A_s, h, w0, wa": ["Omega_m", "A_s", "h", "w0", "wa"],
          "all 7": None,
          "Omega_m, w0, wa": ["Omega_m", "w0", "wa"]}
FIXED = {"m_nu": 0.058}


def errors(emu, test) -> np.ndarray:
    """max over z and k <= 1 h/Mpc of |R_emu / R_EE2 - 1| for each test pair."""
    a, b, _ = twin_pairs(test)
    ksel = test.k <= 1.0
    r_true = test.boost[a] / test.boost[b]
    params = [dict(zip(test.names, map(float, row))) for row in test.params[a]]
    r_emu = np.stack([emu.response(test.k, test.z, p) for p in params])
    return np.abs(r_emu / r_true - 1.0)[:, :, ksel].reshape(len(a), -1).max(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="N = 25, 50; 50 test pairs; 2000 iterations")
    args = ap.parse_args()
    ns, n_test, epochs = (([25, 50], 50, 2000) if args.quick else (args.n, args.test, 10000))
    t0 = time.perf_counter()
    test = ee2_twin_dataset(n_test, Z, K, fixed=FIXED, seed=2)
    print(f"EE2 test twins: {n_test} pairs in {time.perf_counter() - t0:.1f} s")
    settings = FitSettings(network=TrainConfig(hidden=(64, 64), epochs=epochs), restarts=2)
    print("| pairs | inputs | p50 | p95 | max | fit [s] |")
    print("|---|---|---|---|---|---|")
    for n in ns:
        train = ee2_twin_dataset(n, Z, K, fixed=FIXED, seed=1)
        for label, params in INPUTS.items():
            t0 = time.perf_counter()
            emu = train_response(train, settings, params=params)
            fit = time.perf_counter() - t0
            err = errors(emu, test)
            p50, p95 = np.percentile(err, [50, 95])
            print(f"| {n} | {label} | {100 * p50:.2f} % | {100 * p95:.2f} % | {100 * err.max():.2f} % | {fit:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
