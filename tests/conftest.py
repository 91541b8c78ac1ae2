"""Shared test setup: the opt-in for slow tests and a synthetic SimResult."""
import os

import numpy as np
import pytest

from cosmopipe.sims import Cosmology, SimConfig, SimResult


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (same as COSMOPIPE_SLOW=1)")


def _slow_enabled(config) -> bool:
    return config.getoption("--runslow") or os.environ.get("COSMOPIPE_SLOW", "") == "1"


def pytest_collection_modifyitems(config, items):
    if _slow_enabled(config):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or COSMOPIPE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def synthetic_result(cosmology: Cosmology | None = None, config: SimConfig | None = None) -> SimResult:
    """A SimResult with plausible shapes and values, built without the engine."""
    cosmology = cosmology if cosmology is not None else Cosmology()
    config = config if config is not None else SimConfig(z_out=(1.0, 0.5, 0.0), paired=True, cola_nlpt=None)
    edges = config.k_bins()
    k = 0.5 * (edges[1:] + edges[:-1])
    z = np.asarray(config.z_out)
    growth = 1.0 / (1.0 + z)  # a crude D(z), enough for test data
    shape = 2.0e4 * k / (1.0 + (k / 0.02) ** 2.5)
    pk_lin = growth[:, None] ** 2 * shape[None, :]
    # Grows with k and towards low z, like a real nonlinear boost.
    boost = 1.0 + (k[None, :] / (0.25 / growth[:, None] ** 1.5)) ** 1.5
    nruns = 2 if config.paired else 1
    wiggle = 1.0 + 0.01 * np.sin(np.arange(nruns)[:, None, None] + 3.0 * k[None, None, :])
    pk_runs = (boost * pk_lin)[None] * wiggle
    pk = pk_runs.mean(axis=0)
    nmodes = np.rint(4.0 * np.pi * (k / config.k_fundamental) ** 2).astype(np.int64)
    return SimResult(
        k=k, z=z, pk=pk, pk_lin=pk_lin, boost=pk / pk_lin, nmodes=nmodes, pk_runs=pk_runs,
        cosmology=cosmology, config=config,
        timings={"linear": 0.5, "ic": 1.25, "evolve": 10.0, "power": 0.75, "total": 12.5},
        version="0.1.0+gtest",
        extra={"host": {"hostname": "testhost", "cpu_count": 2}, "threads": 2, "note": "synthetic"},
    )


@pytest.fixture
def make_result():
    """Factory fixture: make_result(cosmology=None, config=None) -> SimResult."""
    return synthetic_result


@pytest.fixture
def load_benchmark():
    """Import a script of benchmarks/ (not a package) as a module: ``load_benchmark("bench_w_response")``."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def one_thread():
    """CAMB on one thread for the module's tests: the test machines are shared."""
    import camb

    saved = camb.config.ThreadNum
    camb.config.ThreadNum = 1
    yield
    camb.config.ThreadNum = saved
