"""Support for the sampling tests (no tests here): a correlated Gaussian likelihood with a
known answer, registered under the name ``gauss3``, and a runner for a workflow in a subprocess.

The likelihood is exact: ln L = -1/2 (x - mu)^T C^-1 (x - mu), so under wide flat priors
the posterior mean is mu and the posterior covariance is C.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAME = "gauss3"
FACTORY = "test_sampling_support:from_config"
MEAN = np.array([0.3, -1.0, 2.0])
SIGMA = np.array([0.05, 0.5, 1.5])
CORR = np.array([[1.0, 0.6, -0.3],
                 [0.6, 1.0, 0.2],
                 [-0.3, 0.2, 1.0]])
COV = CORR * np.outer(SIGMA, SIGMA)


@dataclass
class GaussLikelihood:
    """A Gaussian in x1, x2, x3 with default flat priors 8 sigma wide either side."""

    mean: np.ndarray = field(default_factory=lambda: MEAN.copy())
    cov: np.ndarray = field(default_factory=lambda: COV.copy())
    sleep: float = 0.0          # seconds per evaluation: a stand-in for an expensive likelihood
    name: str = NAME
    input_params: tuple = ()

    def __post_init__(self):
        self.inv = np.linalg.inv(self.cov)

    def requirements(self) -> dict:
        return {}

    def parameters(self) -> dict:
        sig = np.sqrt(np.diag(self.cov))
        return {f"x{i + 1}": {"prior": "flat", "min": float(m - 8 * s), "max": float(m + 8 * s),
                              "latex": f"x_{i + 1}"} for i, (m, s) in enumerate(zip(self.mean, sig))}

    def loglike(self, theory, params) -> float:
        if self.sleep:
            time.sleep(self.sleep)
        d = np.array([params["x1"], params["x2"], params["x3"]]) - self.mean
        return float(-0.5 * d @ self.inv @ d)

    def derived(self, theory, params) -> dict:
        return {"xsum": params["x1"] + params["x2"] + params["x3"]}


def from_config(section, info) -> GaussLikelihood:
    from cosmopipe.schema import nonnegative_number

    sleep = section.take("sleep", nonnegative_number, default=0.0)
    section.finish(allowed_hint=["sleep"])
    return GaussLikelihood(sleep=sleep)


def register(monkeypatch=None) -> None:
    """Add ``gauss3`` to the likelihood registry (undone by monkeypatch when given)."""
    from cosmopipe.likelihoods import base

    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    if monkeypatch is not None:
        monkeypatch.setitem(base.LIKELIHOODS, NAME, FACTORY)
    else:
        base.LIKELIHOODS[NAME] = FACTORY


if __name__ == "__main__":
    # python tests/test_sampling_support.py run WORKFLOW [options]: the cosmopipe CLI with gauss3 registered.
    register()
    from cosmopipe.pipeline.cli import main

    sys.exit(main(sys.argv[1:]))
