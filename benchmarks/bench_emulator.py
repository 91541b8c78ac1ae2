"""Prediction speed of the boost emulator against EuclidEmulator2.

    python benchmarks/bench_emulator.py [--emulator boost.h5|hybrid.h5] [--linear linear.h5]

Without --emulator a stand-in boost emulator is trained on EE2 boosts at 100
Latin-hypercube wCDM cosmologies on the grid of workflows/wcdm_emulator_256.yaml
(13 z in 0-3, 30 k up to 1.2 h/Mpc); without --linear a linear-power
emulator is trained on 8 CAMB runs (16 z, 250 k in 1e-4-10 h/Mpc).  Their
accuracy is irrelevant here: the cost of a prediction depends on the grid
sizes and the network shape (64 x 64, the default), not on the weights.

Measured (median of repeated calls, one thread):

1. one cosmology on the emulator's full (z, k) training grid, against EE2 on
   the same grid (target: at least 100x faster);
2. batched throughput: 1000 cosmologies in one call;
3. P_nl = P_lin x B for one cosmology on a likelihood grid of 40 z x 100 k
   (target: well under 1 ms), and EE2's boost alone on that grid;
4. issue 17 item 6: one cosmology on 40 z x 200 k (target <= 0.1 ms) and a
   batch of 10^4 on the training grid (target >= 10^5 cosmologies/s), each
   against EE2 on the same grid in this process, with the ratio.

``--production`` trains the stand-in in the shape of the production model
(7 w0waCDM parameters, 16 z x 40 k, the default 64 x 64 network) instead.
``--sensitivity DATASET`` prints the twin response's sensitivity to each
parameter (emulators.response) of a consolidated dataset with LCDM twins;
``--sensitivity ee2`` builds an EE2 twin dataset (60 pairs) for it.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

TARGET_SPEEDUP = 100.0
TARGET_PNL_SECONDS = 1e-3


def timed(fn, min_seconds: float = 0.5, repeats: int = 7) -> float:
    """Median wall seconds of one call (calls grouped so each group lasts ~min_seconds/repeats)."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_seconds / repeats / once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(np.median(samples))


def stand_in_emulators():
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.linear import camb_linear_dataset, latin_hypercube, train_linear
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.synthetic import WCDM_PARAMS, ee2_dataset
    from cosmopipe.emulators.training import FitSettings

    z = np.linspace(0.0, 3.0, 13)
    k = np.linspace(1.2 / 30, 1.2, 30)
    fit = FitSettings(network=TrainConfig(hidden=(64, 64), epochs=300), validation_fraction=0.0)
    boost = train_boost(ee2_dataset(100, z, k, seed=1), fit)
    z_lin = np.expm1(np.linspace(0.0, np.log1p(3.0), 16))
    k_lin = np.geomspace(1e-4, 10.0, 250)
    camb = camb_linear_dataset(latin_hypercube(8, boost.space, seed=1), z_lin, k_lin)
    linear = train_linear(camb, boost.space, fit)
    print(f"stand-in emulators: boost on {len(WCDM_PARAMS)} parameters, "
          f"{len(z)} z x {len(k)} k; linear {len(z_lin)} z x {len(k_lin)} k")
    return boost, linear


def production_stand_in():
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.synthetic import WCDM_PARAMS, ee2_dataset
    from cosmopipe.emulators.ee2 import EE2_BOX
    from cosmopipe.emulators.training import FitSettings

    z = np.linspace(0.0, 3.0, 16)
    k = np.geomspace(0.01, 3.0, 40)
    box = {n: EE2_BOX[n] for n in (*WCDM_PARAMS, "wa")}
    fit = FitSettings(network=TrainConfig(epochs=300), validation_fraction=0.0)
    boost = train_boost(ee2_dataset(100, z, k, box, seed=1), fit)
    print(f"production-shape stand-in: {len(box)} parameters, {z.size} z x {k.size} k, network 64 x 64, "
          f"{int(boost.model.n_components[0])} PCA components")
    return boost


class _ShippedHybrid:
    """A hybrid as sampling uses it (EE2 surrogate at theta_LCDM), timed through the
    interface of a boost emulator; its batch cosmologies stay where theta_LCDM is in EE2's box."""

    def __init__(self, hybrid):
        from cosmopipe.emulators.ee2 import EE2_BOX

        self.hybrid, self.model, self.linear = hybrid, hybrid.cola.model, hybrid.linear
        self.z_range, self.k_range, self.space = hybrid.z_range, hybrid.k_range, hybrid.space
        lo, hi = np.array(self.space.lower, float), np.array(self.space.upper, float)
        for i, name in enumerate(self.space.names):
            lo[i], hi[i] = max(lo[i], EE2_BOX[name][0]), min(hi[i], EE2_BOX[name][1])
        self.space = type("Box", (), {"lower": lo, "upper": hi, "names": self.space.names,
                                      "fixed": self.space.fixed})()
        self.ee2 = "surrogate" if hybrid.ee2_lcdm is not None else "exact"

    def boost(self, k, z, params):
        return self.hybrid.boost(k, z, params, ee2=self.ee2)

    def pnl(self, k, z, params):
        return self.hybrid.pnl(k, z, params, ee2=self.ee2)


def item6(boost, full, one, space, rng) -> bool:
    """Issue 17 item 6: one cosmology on 40 z x 200 k and a batch of 10^4 on the training grid, with EE2."""
    from cosmopipe.emulators.ee2 import ee2_boost

    z = np.linspace(max(0.0, boost.z_range[0]), min(3.0, boost.z_range[1]), 40)
    k = np.geomspace(boost.k_range[0], boost.k_range[1], 200)
    t_one = timed(lambda: boost.boost(k, z, one))
    t_ee2 = timed(lambda: ee2_boost(k, z, full), min_seconds=1.0)
    table = space.lower + rng.random((10_000, len(space.names))) * (space.upper - space.lower)
    z_t, k_t = boost.model.z, boost.model.k
    t_batch = timed(lambda: boost.boost(k_t, z_t, table), min_seconds=2.0, repeats=3)
    t_ee2_t = timed(lambda: ee2_boost(k_t, z_t, full), min_seconds=1.0)
    per_s = table.shape[0] / t_batch
    print("issue 17 item 6:")
    print(f"  one cosmology, 40 z x 200 k: {t_one * 1e6:8.1f} us  (target <= 100 us); EE2 {t_ee2 * 1e6:.0f} us, "
          f"{t_ee2 / t_one:.0f}x")
    print(f"  batch of {table.shape[0]} on {z_t.size} z x {k_t.size} k: {per_s:,.0f} cosmologies/s (target >= 1e5); "
          f"EE2 {1 / t_ee2_t:,.0f}/s, {per_s * t_ee2_t:.0f}x")
    return t_one <= 1e-4 and per_s >= 1e5


def sensitivity(source: str) -> None:
    from cosmopipe.emulators.response import ee2_twin_dataset, format_sensitivity, response_sensitivity
    from cosmopipe.sims.dataset import read_dataset

    ds = ee2_twin_dataset(60, [0.0, 0.5, 1.0, 2.0], np.geomspace(0.01, 1.0, 30), seed=7) if source == "ee2" \
        else read_dataset(source)
    print(format_sensitivity(response_sensitivity(ds)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", help="a boost emulator file (default: train a stand-in)")
    ap.add_argument("--linear", help="a linear-power emulator file (default: the emulator's, or a stand-in)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--production", action="store_true", help="a stand-in of the production model's shape")
    ap.add_argument("--sensitivity", metavar="DATASET|ee2", help="only print the twin response's sensitivity")
    args = ap.parse_args(argv)
    if args.sensitivity:
        sensitivity(args.sensitivity)
        return

    import dataclasses

    from cosmopipe import emulators
    from cosmopipe.emulators.ee2 import ee2_boost

    if args.emulator:
        boost = emulators.load(args.emulator)
        linear = emulators.load(args.linear) if args.linear else boost.linear
        if boost.kind == "hybrid":   # a shipped model, e.g. emulators/models/w0wa_cola128/hybrid.h5
            boost, linear = _ShippedHybrid(boost), None
            print(f"hybrid emulator {args.emulator}, B_EE2(theta_LCDM) from its {boost.ee2}")
    elif args.production:
        boost = production_stand_in()
        linear = emulators.load(args.linear) if args.linear else None
    else:
        boost, linear = stand_in_emulators()
        if args.linear:
            linear = emulators.load(args.linear)
    if linear is not None:
        boost = dataclasses.replace(boost, linear=linear)

    rng = np.random.default_rng(0)
    space = boost.space
    one = dict(zip(space.names, map(float, space.lower + 0.5 * (space.upper - space.lower))))
    full = {**space.fixed, **one}
    z_train, k_train = boost.model.z, boost.model.k

    t_emu = timed(lambda: boost.boost(k_train, z_train, one))
    t_ee2 = timed(lambda: ee2_boost(k_train, z_train, full), min_seconds=1.0)
    print(f"one cosmology, training grid {z_train.size} z x {k_train.size} k:")
    print(f"  emulator   {t_emu * 1e6:10.1f} us")
    print(f"  EE2        {t_ee2 * 1e6:10.1f} us")
    print(f"  speed-up   {t_ee2 / t_emu:10.0f}x  (target >= {TARGET_SPEEDUP:g}x)")

    unit = rng.random((args.batch, len(space.names)))
    table = space.lower + unit * (space.upper - space.lower)
    t_batch = timed(lambda: boost.boost(k_train, z_train, table), min_seconds=2.0, repeats=3)
    print(f"batch of {args.batch} cosmologies on the training grid: {t_batch * 1e3:.1f} ms, "
          f"{t_batch / args.batch * 1e6:.2f} us per cosmology, {args.batch / t_batch:,.0f} cosmologies/s")

    z_like = np.linspace(max(0.01, boost.z_range[0]), boost.z_range[1], 40)
    k_like = np.geomspace(boost.k_range[0], boost.k_range[1], 100)
    t_b = timed(lambda: boost.boost(k_like, z_like, one))
    t_ee2_like = timed(lambda: ee2_boost(k_like, z_like, full), min_seconds=1.0)
    print(f"one cosmology, likelihood grid 40 z x 100 k:")
    print(f"  boost      {t_b * 1e6:10.1f} us   (EE2: {t_ee2_like * 1e6:.0f} us, {t_ee2_like / t_b:.0f}x)")
    ok = t_ee2 / t_emu >= TARGET_SPEEDUP
    if boost.linear is not None:
        t_pnl = timed(lambda: boost.pnl(k_like, z_like, one))
        print(f"  P_nl       {t_pnl * 1e6:10.1f} us   (target < {TARGET_PNL_SECONDS * 1e6:g} us)")
        ok = ok and t_pnl < TARGET_PNL_SECONDS
    ok = item6(boost, full, one, space, rng) and ok
    print("  targets met" if ok else "  TARGETS NOT MET")


if __name__ == "__main__":
    main()
