"""Convergence of COLA's twin response R = B(theta)/B(theta_LCDM) at one campaign cosmology.

The cosmology of one twin pair of a consolidated dataset (default: train-0028 of the shipped
w0wa_cola128 training set, in the quintessence corner w0 + wa = -0.43, where COLA and EE2
differ most) and its LCDM projection are rerun paired-fixed with the same seed: at the
campaign's set-up (128^3 particles, 320 Mpc/h, 384^3 mesh, 40 steps, 'lattice' noise), and
with 'nested' noise (sims.ic: the same large-scale modes at every particle count) at that
set-up, with 80 steps, with particles and mesh refined together (192^3 / 576^3; 256^3 / 768^3
with --full) and with two more seeds, whose scatter a change must exceed to count.  R is
printed against EuclidEmulator2's and HMcode-2020's.

    python benchmarks/bench_response_convergence.py [SIM_ID [DATASET]] [--full]
    python benchmarks/bench_response_convergence.py --quick      # 32^3 particles: a one-minute smoke run

About 25 min on one idle core (--full: about 30 min more, 12 GB).  Measured 2026-12-06 for
train-0028, see docs/shipped_models.md "Is COLA's response converged there?".
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

# (particles, box [Mpc/h], mesh, steps, seed, noise): the campaign's set-up, then the nested-noise
# set-up every other is compared with, its refinements and its seed scatter
SETUPS = ((128, 320.0, 384, 40, 5, "lattice"), (128, 320.0, 384, 40, 5, "nested"),
          (128, 320.0, 384, 80, 5, "nested"), (192, 320.0, 576, 40, 5, "nested"),
          (128, 320.0, 384, 40, 6, "nested"), (128, 320.0, 384, 40, 7, "nested"))
FULL = ((256, 320.0, 768, 40, 5, "nested"),)
Z = np.array([2.0, 1.0, 0.5, 0.0])


def _label(n: int, mesh: int, steps: int, seed: int, noise: str) -> str:
    return f"{n}^3 / mesh {mesh}^3 / {steps} steps / {noise} seed {seed}"


def main(argv: list[str]) -> None:
    from cosmopipe.emulators.ee2 import ee2_boost
    from cosmopipe.emulators.hmcode_tail import hmcode_log_boost
    from cosmopipe.emulators.registry import model_file
    from cosmopipe.sims import Cosmology, SimConfig, run_simulation
    from cosmopipe.sims.dataset import read_dataset

    quick, full = "--quick" in argv, "--full" in argv
    argv = [a for a in argv if not a.startswith("--")]
    setups = SETUPS + (FULL if full else ())
    if quick:
        setups = tuple((n // 4, box / 4, mesh // 4, steps // 4, seed, noise)
                       for n, box, mesh, steps, seed, noise in SETUPS)
    ds = read_dataset(argv[1] if len(argv) > 1 else model_file("w0wa_cola128").with_name("train.h5"))
    sim_id = argv[0] if argv else "train-0028"
    p = ds.param_dicts()[list(ds.sim_ids).index(sim_id)]
    lcdm = {**p, "w0": -1.0, "wa": 0.0}
    print(f"{sim_id}: " + ", ".join(f"{n} = {p[n]:.4g}" for n in ("Omega_m", "h", "A_s", "w0", "wa")))
    responses = {}
    for n, box, mesh, steps, seed, noise in setups:
        label = _label(n, mesh, steps, seed, noise)
        cfg = SimConfig(box=box, particles=n, mesh=mesh, steps=steps, z_init=19.0, z_out=tuple(Z), paired=True,
                        fixed_amplitude=True, seed=seed, noise=noise, k_max=min(1.2, np.pi * setups[0][0] / box),
                        nk=30, threads=1)
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
    n, _, mesh, steps, seed, noise = setups[1]
    _report(k, responses, r_ee2, r_hm, base=_label(n, mesh, steps, seed, noise))


def _report(k: np.ndarray, responses: dict, r_ee2: np.ndarray, r_hm: np.ndarray, base: str) -> None:
    """R at a few k per z; each set-up's distance from EE2 and HMcode; each change from ``base``
    (the campaign's set-up with nested noise) against the seed scatter (max over k <= 1 h/Mpc, %)."""
    for j, z in enumerate(Z):
        for k_probe in (0.2, 0.5, 0.8, 1.0):
            c = int(np.argmin(np.abs(k - k_probe)))
            print(f"z = {z:g}, k = {k[c]:.3f}: " + ", ".join(f"{lab} {r[j, c]:.4f}" for lab, r in responses.items())
                  + f"; EE2 {r_ee2[j, c]:.4f}, HMcode {r_hm[j, c]:.4f}")
    sel = k <= 1.0
    pct = lambda a: np.round(100 * np.abs(a)[:, sel].max(1), 2)  # noqa: E731
    print("max over k <= 1 h/Mpc at z = 2, 1, 0.5, 0 [%]:")
    for label, r in responses.items():
        print(f"  {label}: vs EE2 {pct(r / r_ee2 - 1)}, vs HMcode {pct(r / r_hm - 1)}, "
              f"vs {base} {pct(r / responses[base] - 1)}")
    same_setup = base.rsplit(" seed ", 1)[0]
    seeds = np.array([r for lab, r in responses.items() if lab.rsplit(" seed ", 1)[0] == same_setup])
    if len(seeds) > 2:
        print(f"  seed scatter of R at {same_setup} ({len(seeds)} seeds, std / mean): "
              f"{pct(seeds.std(0, ddof=1) / seeds.mean(0))}")


if __name__ == "__main__":
    main(sys.argv[1:])
