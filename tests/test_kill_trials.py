"""SIGKILL at seeded random points of a campaign and of a chain (issue 16, fault injection).

Each trial starts ``cosmopipe run`` in a subprocess, kills its whole process group at a
random moment drawn from a seeded generator (anywhere from start-up to the end of a
reference run), reruns to completion and compares with an uninterrupted run: the
datasets and chains must be bit-identical, no finished simulation may be run again,
and no temp file may be left behind.  Three trials of each run by default; the full
ten-plus run with --runslow (COSMOPIPE_SLOW=1).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cosmopipe.likelihoods.sampling import read_chain
from cosmopipe.sims.dataset import read_dataset
from test_campaign import tiny_workflow

TESTS = Path(__file__).parent
REPO = TESTS.parent
DEFAULT_TRIALS, SLOW_TRIALS = 3, 12


def _trials(seed: int):
    """(trial, fraction of the reference wall time at which to kill), the first few by default."""
    fractions = np.random.default_rng(seed).uniform(0.05, 0.95, SLOW_TRIALS)
    return [pytest.param(i, float(f), marks=() if i < DEFAULT_TRIALS else pytest.mark.slow)
            for i, f in enumerate(fractions)]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), OMP_NUM_THREADS="1",
                PYTHONUNBUFFERED="1")


def _run(args: list[str], script: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *script, *args], env=_env(), capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def _run_killed(args: list[str], script: list[str], after: float) -> int:
    """Start a run, SIGKILL its process group after ``after`` seconds; returns its exit code
    (None-free: -9 when killed, 0 when it finished first)."""
    proc = subprocess.Popen([sys.executable, *script, *args], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
    try:
        proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.3)                          # let the killed Dask workers go
    return proc.returncode


def _no_temp_files(run_dir: Path) -> None:
    left = [p for p in run_dir.rglob("*") if ".tmp" in p.name and p.is_file()]
    assert not left, f"temp files left after the resumed run: {left}"


# -- campaigns --------------------------------------------------------------------------------
CAMPAIGN = ["-m", "cosmopipe"]


@pytest.fixture(scope="module")
def campaign_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("campaign_ref")
    path = tiny_workflow(tmp, name="ref", n_train=6, n_test=2, particles=16, steps=4)
    t0 = time.perf_counter()
    out = _run(["run", str(path), "--no-progress"], CAMPAIGN)
    assert out.returncode == 0, out.stderr[-3000:]
    wall = time.perf_counter() - t0
    datasets = {d: read_dataset(tmp / "ref" / "datasets" / f"{d}.h5") for d in ("train", "test")}
    return wall, datasets


@pytest.mark.parametrize("trial, fraction", _trials(16))
def test_campaign_killed_at_a_random_point_resumes_identically(tmp_path, campaign_reference, trial, fraction):
    wall, reference = campaign_reference
    path = tiny_workflow(tmp_path, name="killed", n_train=6, n_test=2, particles=16, steps=4)
    run_dir = tmp_path / "killed"
    _run_killed(["run", str(path), "--no-progress"], CAMPAIGN, after=fraction * wall)
    kept = {p: p.stat().st_mtime_ns for p in (run_dir / "sims").rglob("*.h5")} if (run_dir / "sims").is_dir() else {}
    out = _run(["run", str(path), "--no-progress"], CAMPAIGN)
    assert out.returncode == 0, f"trial {trial} (killed at {fraction:.2f} x {wall:.1f} s): {out.stderr[-3000:]}"
    for p, mtime in kept.items():
        assert p.stat().st_mtime_ns == mtime, f"trial {trial}: {p.name} was simulated again after the kill"
    for design, ref in reference.items():
        got = read_dataset(run_dir / "datasets" / f"{design}.h5")
        assert got.sim_ids == ref.sim_ids
        for name in ("params", "z", "k", "boost", "pk", "pk_lin", "pk_runs"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name),
                                          err_msg=f"trial {trial}: {design}.{name} differs from the uninterrupted run")
    _no_temp_files(run_dir)


# -- chains -----------------------------------------------------------------------------------
CHAIN = [str(TESTS / "test_sampling_support.py")]


def _chain_workflow(tmp_path: Path, name: str) -> Path:
    sample = {"likelihoods": {"gauss3": {"sleep": 0.001}},
              "params": {"x2": {"prior": {"min": -5.0, "max": 3.0}, "ref": -0.8, "proposal": 0.05}},
              "sampler": {"walkers": 8, "chains": 2, "seed": 5, "max_steps": 150, "check_every": 30,
                          "parallel": "vectorize",
                          "convergence": {"tau_factor": 5.0, "tau_rtol": 0.2, "rminus1": 0.5}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "run_dir": str(tmp_path / name), "sample": sample}))
    return path


@pytest.fixture(scope="module")
def chain_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain_ref")
    path = _chain_workflow(tmp, "ref")
    t0 = time.perf_counter()
    out = _run(["run", str(path), "--stage", "sample", "--no-progress"], CHAIN)
    assert out.returncode == 0, out.stderr[-3000:]
    wall = time.perf_counter() - t0
    summary = json.loads((tmp / "ref" / "chains" / "summary.json").read_text())
    chains = [read_chain(tmp / "ref" / "chains" / f"chain_{i}.h5") for i in (1, 2)]
    return wall, summary, chains


@pytest.mark.parametrize("trial, fraction", _trials(61))
def test_chain_killed_at_a_random_point_resumes_identically(tmp_path, chain_reference, trial, fraction):
    wall, ref_summary, ref_chains = chain_reference
    path = _chain_workflow(tmp_path, "killed")
    run_dir = tmp_path / "killed"
    rc = _run_killed(["run", str(path), "--stage", "sample", "--no-progress"], CHAIN, after=fraction * wall)
    args = ["run", str(path), "--stage", "sample", "--no-progress"]
    if (run_dir / "chains").is_dir() and rc != 0:
        args.append("--resume")
    out = _run(args, CHAIN)
    if rc == 0:                              # finished before the kill: nothing to resume
        assert "already exist" in out.stderr or out.returncode == 0
    else:
        assert out.returncode == 0, f"trial {trial} (killed at {fraction:.2f} x {wall:.1f} s): {out.stderr[-3000:]}"
    summary = json.loads((run_dir / "chains" / "summary.json").read_text())
    assert (summary["status"], summary["steps_per_chain"]) == (ref_summary["status"], ref_summary["steps_per_chain"]), \
        f"trial {trial}: resumed run stopped ({summary['status']}, {summary['steps_per_chain']} steps), " \
        f"uninterrupted ({ref_summary['status']}, {ref_summary['steps_per_chain']})"
    for i, expected in zip((1, 2), ref_chains):
        for a, b in zip(read_chain(run_dir / "chains" / f"chain_{i}.h5"), expected):
            np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}: chain {i} differs")
    _no_temp_files(run_dir)
