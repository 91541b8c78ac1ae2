"""Is the dark-energy response easier to emulate with a sigma8(z)-matched LCDM anchor?

The shipped hybrid multiplies EE2's LCDM boost at theta_LCDM = theta with w0 = -1, wa = 0
(same A_s: the "A_s-matched" anchor of arXiv:2404.12344) by an emulated response
R = B(theta) / B(theta_LCDM).  The alternative anchor keeps sigma8 instead: at each output
redshift z, theta_LCDM(z) has w0 = -1, wa = 0 and A_s(z) = A_s (sigma8(theta, z) /
sigma8(theta_LCDM, z))^2, so that the anchor has the same linear amplitude as theta there
and R only carries what dark energy does beyond the amplitude.

EuclidEmulator2 stands in for the simulations (noiseless; the same box and grid as the
campaign workflows/w0wa_cola128.yaml), CAMB gives sigma8(z).  For each anchor:

* how much there is to learn: rms and max over the box of |ln R| (k <= 1 h/Mpc);
* how often the anchor leaves EE2's A_s range (the hybrid could not use it there);
* the emulator's error: a PCA + MLP fitted to ln R from N cosmologies and tested on
  others, p50 / p95 / max over test cosmologies of max_{z, k <= 1} |R_emu / R - 1|.

    python benchmarks/bench_sigma8_anchor.py [--n 25 50] [--test 50] [--epochs 4000]

CAMB runs twice per cosmology (about 1 s each), EE2 17 times (once per anchor z).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cosmopipe.emulators.boost import train_boost
from cosmopipe.emulators.ee2 import EE2_BOX, ee2_boost
from cosmopipe.emulators.network import TrainConfig
from cosmopipe.emulators.training import FitSettings
from cosmopipe.sims import Cosmology
from cosmopipe.sims.dataset import SimDataset
from cosmopipe.sims.design import latin_hypercube
from cosmopipe.sims.linear import camb_params

Z = np.array([3.0, 2.5, 2.25, 2.0, 1.75, 1.5, 1.25, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0])
K = np.geomspace(0.03, 1.25, 40)   # h/Mpc, the campaign's grid
NAMES = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0", "wa")
FIXED = {"m_nu": 0.058}


def sigma8_of_z(row: dict) -> np.ndarray:
    """sigma8 (total matter) at the redshifts Z [decreasing], from CAMB."""
    import camb

    pars = camb_params(Cosmology.from_dict(row), sorted(set(Z.tolist())), kmax=2.0)
    results = camb.get_results(pars)
    sig = np.ravel(results.get_sigmaR(8.0, hubble_units=True, var1="delta_tot", var2="delta_tot"))
    z_sig = np.asarray(pars.Transfer.PK_redshifts[: pars.Transfer.PK_num_redshifts], dtype=float)
    return np.array([sig[int(np.argmin(np.abs(z_sig - z)))] for z in Z])


def responses(theta: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{anchor: (R (n, nz, nk), anchor A_s (n, nz))} for the rows of theta (n, 7)."""
    out_as, out_s8, as_s8 = [], [], []
    for row in theta:
        p = {**FIXED, **dict(zip(NAMES, map(float, row)))}
        lcdm = {**p, "w0": -1.0, "wa": 0.0}
        b = ee2_boost(K, Z, p)
        out_as.append(b / ee2_boost(K, Z, lcdm))
        a_z = p["A_s"] * (sigma8_of_z(p) / sigma8_of_z(lcdm)) ** 2
        as_s8.append(a_z)
        r = np.empty_like(b)
        for i, (z, a) in enumerate(zip(Z, a_z)):
            anchor = {**lcdm, "A_s": float(np.clip(a, *EE2_BOX["A_s"]))}
            r[i] = b[i] / ee2_boost(K, [z], anchor)[0]
        out_s8.append(r)
    n = len(theta)
    return {"A_s-matched": (np.array(out_as), np.full((n, Z.size), np.nan)),
            "sigma8(z)-matched": (np.array(out_s8), np.array(as_s8))}


def dataset(theta: np.ndarray, r: np.ndarray, box: dict) -> SimDataset:
    names = (*NAMES, "m_nu")
    params = np.column_stack([theta, np.full(len(theta), FIXED["m_nu"])])
    lower = np.array([box[v][0] for v in NAMES])
    upper = np.array([box[v][1] for v in NAMES])
    return SimDataset(names=names, params=params, varied=NAMES, lower=lower, upper=upper, z=Z, k=K, boost=r,
                      pk=r.copy(), pk_lin=np.ones_like(r), nmodes=np.ones(K.size, dtype=np.int64),
                      sim_ids=tuple(f"anchor-{i:04d}" for i in range(len(theta))), timings=np.zeros(len(theta)),
                      attrs={"design": "ee2-anchor"})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[25, 50])
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=4000)
    args = ap.parse_args(argv)
    # Keep theta_LCDM's A_s inside EE2's box for most points: the inner 90 % of the box.
    box = {n: (EE2_BOX[n][0] + 0.05 * np.ptp(EE2_BOX[n]), EE2_BOX[n][1] - 0.05 * np.ptp(EE2_BOX[n])) for n in NAMES}
    n_train = max(args.n)
    t0 = time.perf_counter()
    theta_train = latin_hypercube(box, n_train, seed=11)
    theta_test = latin_hypercube(box, args.test, seed=12)
    train, test = responses(theta_train), responses(theta_test)
    print(f"{n_train} training + {args.test} test cosmologies: CAMB + EE2 in {time.perf_counter() - t0:.0f} s")
    ksel = K <= 1.0
    print("\n| anchor | rms abs ln R | max abs ln R | anchor A_s outside EE2's box |")
    print("|---|---|---|---|")
    for anchor, (r, a_s) in test.items():
        lnr = np.abs(np.log(r[:, :, ksel]))
        outside = np.mean((a_s < EE2_BOX["A_s"][0]) | (a_s > EE2_BOX["A_s"][1])) if anchor != "A_s-matched" else 0.0
        print(f"| {anchor} | {100 * np.sqrt(np.mean(lnr ** 2)):.2f} % | {100 * lnr.max():.2f} % | "
              f"{100 * outside:.1f} % of (cosmology, z) |")
    settings = FitSettings(network=TrainConfig(hidden=(64, 64), epochs=args.epochs), restarts=2)
    print("\n| anchor | N | p50 | p95 | max | fit [s] |")
    print("|---|---|---|---|---|---|")
    for n in args.n:
        for anchor in train:
            t0 = time.perf_counter()
            emu = train_boost(dataset(theta_train[:n], train[anchor][0][:n], box), settings)
            fit = time.perf_counter() - t0
            r_true = test[anchor][0]
            r_emu = emu.boost(K, Z[::-1], theta_test)[:, ::-1]
            err = np.abs(r_emu / r_true - 1.0)[:, :, ksel].reshape(len(theta_test), -1).max(axis=1)
            p50, p95 = np.percentile(err, [50, 95])
            print(f"| {anchor} | {n} | {100 * p50:.2f} % | {100 * p95:.2f} % | {100 * err.max():.2f} % | {fit:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
