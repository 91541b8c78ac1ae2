"""Run a campaign: simulate -> train, from a workflow file, on a laptop.

A deliberately tiny campaign (6 training + 2 test wCDM cosmologies in Omega_m and w0, 24^3
particles, 8 COLA steps, z = 1 and 0), then a PCA+MLP emulator of ln B(k, z) with a small
linear-power emulator attached (so it also predicts P_nl), so it runs in about a minute on
2 cores; workflows/quickstart.yaml is the same job at a size worth using.

    .venv/bin/python examples/run_a_campaign.py [OUT_DIR]     (default out/examples/campaign)

Writes OUT_DIR/campaign.yaml and runs it into OUT_DIR/run/ (sims/, datasets/, emulators/boost.h5,
validation/); prints the stage log, the `cosmopipe status` table and the emulator's short repr.
Rerunning resumes: finished simulations and an up-to-date emulator are reused.
examples/query_predictions.py queries the emulator it makes.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import yaml

from cosmopipe import emulators
from cosmopipe.pipeline.cli import main as cosmopipe
from cosmopipe.pipeline.workflow import load_workflow, run_workflow

WORKFLOW = {
    "name": "example_campaign",
    "description": "6 training + 2 test wCDM cosmologies at 24^3 particles, then a PCA+MLP boost emulator.",
    "cluster": {"local": {"workers": 2, "threads_per_worker": 1}},
    "simulate": {
        "parameters": {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8]},
        "fixed": {"h": 0.67, "wa": 0.0},
        "designs": {"train": {"n": 6, "seed": 3, "widen": 0.1}, "test": {"n": 2, "seed": 4}},
        "simulation": {"box": 128.0, "particles": 24, "steps": 8, "z_init": 9.0, "seed": 5,
                       "paired": True, "fixed_amplitude": True},
        "redshifts": [1.0, 0.0],
        "k": {"max": 0.35, "n": 8},          # h/Mpc; the particle Nyquist frequency is 0.59
        "retries": 1,
    },
    "train": {                               # small network, few epochs: a demonstration, not a model
        "network": {"hidden": [16], "epochs": 500},
        "validation_fraction": 0.2,          # 1 held-out cosmology: the repr's accuracy line
        "linear": {"n": 8, "seed": 3, "nz": 4, "nk": 60},   # CAMB at 8 cosmologies -> P_lin emulator
    },
    "validate": {"compare_ee2": False},      # error percentiles against the 2 test simulations
}


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "campaign.yaml"
    path.write_text(yaml.safe_dump({**WORKFLOW, "run_dir": str(out_dir / "run")}, sort_keys=False))
    print(f"workflow: {path}")

    handler = logging.StreamHandler(sys.stdout)        # the stage log, as `cosmopipe run` shows it
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("cosmopipe")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    start = time.perf_counter()
    workflow = load_workflow(path)                     # validated: every error names file and key
    run_workflow(workflow, progress=False)
    logger.removeHandler(handler)
    print(f"campaign finished in {time.perf_counter() - start:.0f} s; results in {workflow.run_dir}\n")

    print(f"$ cosmopipe status {workflow.run_dir}")
    code = cosmopipe(["status", str(workflow.run_dir)])
    if code:
        return code

    emu_path = workflow.run_dir / "emulators" / "boost.h5"
    print(f"\n>>> print(emulators.load({str(emu_path)!r}))")
    print(emulators.load(emu_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/examples/campaign")))
