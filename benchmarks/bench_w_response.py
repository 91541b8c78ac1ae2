"""Convergence of COLA's dark-energy response R = B(w0) / B(w0 = -1) against EuclidEmulator2.

The hybrid emulator (emulators/hybrid.py) takes from COLA only this ratio,
so its error away from w0 = -1 is the error of R_COLA.  For each simulation
set-up (particles, box, force mesh, steps) this runs three paired,
fixed-amplitude simulations with the same seed (w0 = -1, -0.7, -1.3; all else
equal) and prints max_k |R_COLA / R_EE2 - 1| per redshift for k <= 0.5 and
k <= 1 h/Mpc.  CAMB's HMcode-2020 response against EE2 is printed as the
yardstick of how well two independent nonlinear models agree on R.

    python benchmarks/bench_w_response.py                      # box-size series at 2.5 Mpc/h spacing
    python benchmarks/bench_w_response.py --setup 128,160,384,20 --setup 128,320,384,20

A set-up is particles,box[Mpc/h],mesh,steps.  The default series keeps the
mean particle spacing (2.5 Mpc/h) and the mesh-to-particle ratio (3) fixed
and grows the box: 64^3 / 160, 96^3 / 240, 128^3 / 320 Mpc/h (about 10 min
on 2 cores).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

BASE = dict(Omega_m=0.32, Omega_b=0.049, h=0.67, A_s=2.1e-9, n_s=0.966, wa=0.0, m_nu=0.058)
W0S = (-1.0, -0.7, -1.3)
Z_OUT = (2.0, 1.0, 0.5, 0.0)
DEFAULT_SETUPS = ("64,160,192,20", "96,240,288,20", "128,320,384,20")


def _setup(text: str) -> tuple[int, float, int, int]:
    try:
        n, box, mesh, steps = text.split(",")
        return int(n), float(box), int(mesh), int(steps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--setup expects particles,box,mesh,steps (e.g. 128,320,384,20), "
                                         f"got {text!r}") from None


def response_errors(k: np.ndarray, boosts: dict[float, np.ndarray], reference: dict[float, np.ndarray],
                    k_max: float) -> dict[float, np.ndarray]:
    """max over k <= k_max of |R / R_ref - 1| per redshift [%], for each w0 != -1."""
    sel = k <= k_max
    out = {}
    for w0 in W0S[1:]:
        r = boosts[w0] / boosts[-1.0]
        r_ref = reference[w0] / reference[-1.0]
        out[w0] = 100.0 * np.abs(r / r_ref - 1.0)[:, sel].max(axis=1)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setup", action="append", type=_setup,
                    help="particles,box,mesh,steps (repeatable; default: the box-size series)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    setups = args.setup or [_setup(s) for s in DEFAULT_SETUPS]

    from cosmopipe.emulators.ee2 import ee2_boost
    from cosmopipe.emulators.references import camb_boost
    from cosmopipe.sims import Cosmology, SimConfig, run_simulation

    z = np.array(Z_OUT)
    print(f"w0 response R = B(w0)/B(-1) at {BASE}; redshifts {list(Z_OUT)}")
    print("entries: max_k |R/R_EE2 - 1| in % per z (z = 2, 1, 0.5, 0)\n")
    k_probe = np.linspace(0.05, 1.0, 40)
    ee2 = {w: ee2_boost(k_probe, z, dict(BASE, w0=w)) for w in W0S}
    hm = {w: camb_boost(k_probe, z, dict(BASE, w0=w), "mead2020") for w in W0S}
    for k_max in (0.5, 1.0):
        for w0, err in response_errors(k_probe, hm, ee2, k_max).items():
            print(f"HMcode-2020 vs EE2       w0={w0:+.1f} k<={k_max}: {np.round(err, 2)}")
    print()
    for n, box, mesh, steps in setups:
        config = SimConfig(box=box, particles=n, mesh=mesh, steps=steps, z_init=19.0, z_out=Z_OUT, paired=True,
                           fixed_amplitude=True, seed=args.seed, k_max=min(1.2, np.pi * n / box), nk=30,
                           threads=args.threads)
        t0 = time.perf_counter()
        runs = {w: run_simulation(Cosmology(**BASE, w0=w), config, progress=False) for w in W0S}
        k = runs[-1.0].k
        ref = {w: ee2_boost(k, z, dict(BASE, w0=w)) for w in W0S}
        boosts = {w: r.boost for w, r in runs.items()}
        label = f"{n}^3 / {box:g} Mpc/h, mesh {mesh}, {steps} steps"
        for k_max in (0.5, 1.0):
            for w0, err in response_errors(k, boosts, ref, k_max).items():
                print(f"{label}: w0={w0:+.1f} k<={k_max}: {np.round(err, 2)}")
        lcdm = 100.0 * np.abs(boosts[-1.0] / ref[-1.0] - 1.0)[:, k <= 1.0].max(axis=1)
        print(f"{label}: LCDM max|B/B_EE2 - 1| k<=1: {np.round(lcdm, 1)}   ({time.perf_counter() - t0:.0f} s)\n",
              flush=True)


if __name__ == "__main__":
    main()
