"""Produce a posterior: sample stage -> triangle plot -> thinned chain with provenance.

The likelihood is a toy with a known answer (a correlated Gaussian in Omega_m, h, w0
around a fiducial cosmology, plus one nuisance amplitude), so this runs in well under a
minute on 2 cores; swap ``demo_gaussian`` for ``lsst_y1_shear`` and a theory provider for
a real analysis (workflows/lsst_y1_cosmic_shear.yaml).

    .venv/bin/python examples/produce_posterior.py [OUT_DIR]     (default out/examples/posterior)

Prints the constraints table and writes OUT_DIR/triangle.png and OUT_DIR/thinned/.
This is also how docs/demo_gaussian_triangle.png and docs/chains/demo_gaussian/ were made
(docs/FIGURES.md).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosmopipe.likelihoods import base
from cosmopipe.pipeline.cli import main as cosmopipe
from cosmopipe.pipeline.stages.posterior import parse, run
from cosmopipe.pipeline.workflow import RunContext, Workflow
from cosmopipe.schema import Section

FIDUCIAL = {"Omega_m": 0.3, "h": 0.7, "w0": -1.0, "A_nuis": 1.0}
SIGMA = np.array([0.02, 0.03, 0.1, 0.1])
CORR = np.array([[1.0, -0.6, 0.5, 0.0], [-0.6, 1.0, -0.3, 0.0], [0.5, -0.3, 1.0, 0.2], [0.0, 0.0, 0.2, 1.0]])


@dataclass
class DemoGaussian:
    """ln L = -1/2 (x - fid)^T C^-1 (x - fid) in (Omega_m, h, w0, A_nuis); derived H0 = 100 h."""

    name: str = "demo_gaussian"
    input_params: tuple = ("Omega_m", "h", "w0")
    fiducial: dict = field(default_factory=lambda: {**FIDUCIAL, "H0": 100.0 * FIDUCIAL["h"]})

    def __post_init__(self):
        self.inv = np.linalg.inv(CORR * np.outer(SIGMA, SIGMA))

    def requirements(self) -> dict:
        return {}

    def parameters(self) -> dict:      # the likelihood's own (nuisance) parameter
        return {"A_nuis": {"prior": "flat", "min": 0.0, "max": 2.0, "latex": "A_{\\rm nuis}"}}

    def loglike(self, theory, params) -> float:
        d = np.array([params[k] for k in FIDUCIAL]) - np.array(list(FIDUCIAL.values()))
        return float(-0.5 * d @ self.inv @ d)

    def derived(self, theory, params) -> dict:
        return {"H0": 100.0 * params["h"]}


def from_config(section, info) -> DemoGaussian:
    section.finish()
    return DemoGaussian()


SAMPLE = {
    "likelihoods": {"demo_gaussian": {}},
    "params": {"Omega_m": {"prior": {"min": 0.1, "max": 0.5}, "ref": 0.31, "proposal": 0.01},
               "h": {"prior": {"min": 0.55, "max": 0.85}, "ref": 0.69, "proposal": 0.01},
               "w0": {"prior": {"min": -1.6, "max": -0.4}, "ref": -0.95, "proposal": 0.05},
               "H0": {"derived": True}},
    "sampler": {"walkers": 32, "chains": 2, "seed": 11, "max_steps": 8000, "check_every": 200,
                "convergence": {"tau_rtol": 0.02}, "parallel": "vectorize"},
}


def main(out_dir: Path) -> int:
    base.LIKELIHOODS["demo_gaussian"] = f"{__name__}:from_config"
    info = {"name": "demo_gaussian", "run_dir": out_dir, "source": "examples/produce_posterior.py"}
    settings = parse(Section(SAMPLE, "sample", info["source"]), info)
    workflow = Workflow(source=info["source"], name="demo_gaussian", run_dir=out_dir, data_dir=None, cluster=None,
                        stages={"sample": settings})
    run(settings, RunContext(workflow, progress=False, resume=False))
    return cosmopipe(["plot", str(out_dir), "--out", str(out_dir / "triangle.png"),
                      "--thin-out", str(out_dir / "thinned")])


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/examples/posterior")
    if (out / "chains").exists():
        import shutil

        shutil.rmtree(out / "chains")     # a fresh run each time (the stage refuses to overwrite chains)
    sys.exit(main(out))
