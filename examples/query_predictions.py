"""Query predictions: B(k, z) and P_nl from a trained emulator, for one cosmology and a batch.

    .venv/bin/python examples/query_predictions.py [EMULATOR] [--out OUT_DIR]   (default out/examples/query)

EMULATOR is an emulator file or a shipped model name (`cosmopipe models`); by default the one
examples/run_a_campaign.py makes (out/examples/campaign/run/emulators/boost.h5).  If that does
not exist either, a tiny emulator is trained first (EuclidEmulator2 boosts at 12 cosmologies
standing in for simulations, plus a CAMB linear-power emulator; about 30 s on 2 cores), so the
script runs on its own.

Prints the emulator's short repr, a table of B(k, z) and P_nl at one cosmology (the middle of
the emulator's box), the shapes for a batch of cosmologies (a dict of arrays), and writes
OUT_DIR/boost.png: B(k) at the lowest and highest redshift of the emulator.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cosmopipe import emulators
from cosmopipe.emulators.plots import plot_prediction

DEFAULT = Path("out/examples/campaign/run/emulators/boost.h5")


def train_tiny(run_dir: Path) -> Path:
    """A boost emulator (with P_lin attached) trained on EE2 boosts: the train stage of a workflow
    whose training set stands in for a simulate stage's output."""
    import yaml

    from cosmopipe.emulators.synthetic import ee2_dataset
    from cosmopipe.pipeline.workflow import load_workflow, run_workflow
    from cosmopipe.sims.dataset import write_dataset

    box, fixed = {"Omega_m": (0.26, 0.36), "w0": (-1.2, -0.8)}, {"h": 0.67, "wa": 0.0}
    write_dataset(run_dir / "datasets" / "train.h5",
                  ee2_dataset(12, [1.0, 0.0], np.geomspace(0.03, 1.0, 32), box, fixed=fixed, seed=1))
    workflow = {"name": "tiny_emulator", "run_dir": str(run_dir),
                "cluster": {"local": {"workers": 2, "threads_per_worker": 1}},
                "train": {"network": {"hidden": [16], "epochs": 500}, "validation_fraction": 0.2,
                          "linear": {"n": 6, "nz": 4, "nk": 60}}}
    path = run_dir / "tiny_emulator.yaml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    run_workflow(load_workflow(path), progress=False)
    return run_dir / "emulators" / "boost.h5"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("emulator", nargs="?", help=f"emulator file or shipped model name (default {DEFAULT})")
    parser.add_argument("--out", type=Path, default=Path("out/examples/query"), help="directory for boost.png")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    source = args.emulator or DEFAULT
    if args.emulator is None and not DEFAULT.is_file():
        print(f"{DEFAULT} not found (run examples/run_a_campaign.py first to use it): "
              f"training a tiny emulator in {args.out / 'tiny'}")
        source = train_tiny(args.out / "tiny")
    emu = emulators.load(source)
    print(f">>> emu = emulators.load({str(source)!r}); print(emu)")
    print(emu)

    # -- one cosmology: the middle of the box (parameters left out take the reference values)
    params = {name: 0.5 * (lo + hi) for name, (lo, hi) in emu.space.box.items()}
    (k_lo, k_hi), (z_lo, z_hi) = emu.k_range, emu.z_range
    z = np.array([z_lo, z_hi])
    k = np.geomspace(k_lo, k_hi, 8)
    one = emulators.predict(emu, params, z=z, k=k, pnl=emu.linear is not None)
    boost = np.asarray(one["boost"]).reshape(len(z), len(k))
    print(f"\nB(k, z) at {', '.join(f'{n}={v:.4g}' for n, v in params.items())}:")
    header = f"{'k [h/Mpc]':>10}" + "".join(f"{f'B(z={zi:g})':>12}" for zi in z)
    if "pnl" in one:
        pnl = np.asarray(one["pnl"]).reshape(len(z), len(k))
        header += "".join(f"{f'P_nl(z={zi:g})':>14}" for zi in z)
    print(header)
    for j, kj in enumerate(k):
        row = f"{kj:>10.4f}" + "".join(f"{boost[i, j]:>12.4f}" for i in range(len(z)))
        if "pnl" in one:
            row += "".join(f"{pnl[i, j]:>14.2f}" for i in range(len(z)))
        print(row)
    if "pnl" in one:
        species = {"tot": "total matter", "cb": "CDM + baryons"}.get(emu.linear.species, emu.linear.species)
        print(f"P_nl = P_lin x B in (Mpc/h)^3, of {species} (the linear emulator's species)")

    # -- a batch: a dict of arrays, one row per cosmology
    n = 5
    batch = {name: np.linspace(lo, hi, n + 2)[1:-1] for name, (lo, hi) in emu.space.box.items()}
    b = emu.boost(k, z, batch)
    print(f"\nbatch of {n} cosmologies ({', '.join(batch)} as arrays of {n}):")
    print(f"  emu.boost(k, z, batch).shape = {b.shape}   (cosmologies, z, k);  "
          f"B in [{b.min():.4f}, {b.max():.4f}], all finite: {bool(np.isfinite(b).all())}")
    if emu.linear is not None:
        p = emu.pnl(k, z, batch)
        print(f"  emu.pnl(k, z, batch).shape   = {p.shape}   P_nl in [{p.min():.4g}, {p.max():.4g}] (Mpc/h)^3, "
              f"all finite: {bool(np.isfinite(p).all())}")
    else:
        print("  (no linear-power emulator attached: emu.pnl would run CAMB for every cosmology)")

    # -- a figure: B(k) at the two redshifts, against EuclidEmulator2 where the cosmology is in its box
    path, note = plot_prediction(emu, params, np.geomspace(k_lo, k_hi, 60), z, args.out / "boost.png")
    print(f"\nwrote {path}" + (f" ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
