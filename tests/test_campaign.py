"""Simulation campaigns on Dask: resume, killed workers, a killed driver, refusal to mix physics."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cosmopipe.sims.dataset import read_dataset
from cosmopipe.schema import ConfigError
from cosmopipe.pipeline.simulate import campaign_status, design_points, simulate_task
from cosmopipe.pipeline.workflow import load_workflow, run_workflow

REPO = Path(__file__).resolve().parents[1]
COSMOPIPE = [sys.executable, "-m", "cosmopipe"]


def tiny_workflow(tmp_path: Path, name="camp", n_train=4, n_test=2, particles=16, steps=4, **over) -> Path:
    wf = {
        "name": name,
        "run_dir": str(tmp_path / name),
        "cluster": {"local": {"workers": 2, "threads_per_worker": 1}},
        "simulate": {
            "parameters": {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8]},
            "fixed": {"h": 0.67, "wa": 0.0},
            "designs": {"train": {"n": n_train, "seed": 3, "widen": 0.1}, "test": {"n": n_test, "seed": 4}},
            "simulation": {"box": 128.0, "particles": particles, "steps": steps, "z_init": 9.0, "seed": 5,
                           "paired": True, "fixed_amplitude": True},
            "redshifts": [1.0, 0.0],
            "k": {"max": 0.35, "n": 6},
            "retries": 1,
        },
    }
    for key, value in over.items():
        wf["simulate"][key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="4GB",
                           resources={"memory": 4e9, "cores": 1}, dashboard_address="127.0.0.1:0",
                           host="127.0.0.1")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _dataset_arrays(path):
    ds = read_dataset(path)
    return {name: getattr(ds, name) for name in ("params", "z", "k", "boost", "pk", "pk_lin")} | {"ids": ds.sim_ids}


def test_campaign_runs_resumes_and_consolidates(tmp_path, client, caplog):
    wf = load_workflow(tiny_workflow(tmp_path))
    run_workflow(wf, progress=False, client=client)
    run_dir = wf.run_dir
    status = campaign_status(run_dir)
    assert {d: len(s["done"]) for d, s in status.items()} == {"train": 4, "test": 2}
    train = read_dataset(run_dir / "datasets" / "train.h5")
    assert train.boost.shape == (4, 2, 6)
    assert train.varied == ("Omega_m", "w0")
    # the design was drawn from the box widened by 10% (5% of the width on each side)
    assert np.allclose(train.lower, [0.255, -1.22]) and np.allclose(train.upper, [0.365, -0.78])
    ids, values, _ = design_points(wf.stages["simulate"])["train"]
    assert np.allclose(train.varied_params(), values)
    assert np.all(np.isfinite(train.boost))
    # provenance travels with every file and with the dataset
    assert train.attrs["code_version"] and "simulation" not in train.attrs and "sim_config" in train.attrs
    assert (run_dir / "workflow.yaml").is_file() and (run_dir / "designs" / "train.csv").is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in (run_dir / "sims").rglob("*.h5")}

    caplog.set_level("INFO", logger="cosmopipe")
    run_workflow(load_workflow(tiny_workflow(tmp_path)), progress=False, client=client)
    assert "6 already complete, 0 to run" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "sims").rglob("*.h5")} == mtimes


def test_changed_physics_is_refused(tmp_path, client):
    run_workflow(load_workflow(tiny_workflow(tmp_path, n_train=1, n_test=1)), progress=False, client=client)
    changed = load_workflow(tiny_workflow(tmp_path, n_train=1, n_test=1, steps=5))
    with pytest.raises(ConfigError, match=r"other physics settings.*simulation\.steps: 4 -> 5"):
        run_workflow(changed, progress=False, client=client)


def test_run_dir_older_than_a_setting_resumes(tmp_path, client, caplog):
    # A run directory written before `simulation.noise` existed was made with lattice noise:
    # it must resume under a workflow that leaves noise at its default, and be refused under 'nested'.
    import json
    wf = load_workflow(tiny_workflow(tmp_path, n_train=1, n_test=1))
    run_workflow(wf, progress=False, client=client)
    record = wf.run_dir / "campaign.json"
    old = json.loads(record.read_text())
    del old["simulation"]["noise"]
    record.write_text(json.dumps(old))
    caplog.set_level("INFO", logger="cosmopipe")
    run_workflow(load_workflow(tiny_workflow(tmp_path, n_train=1, n_test=1)), progress=False, client=client)
    assert "2 already complete, 0 to run" in caplog.text
    nested = tiny_workflow(tmp_path, n_train=1, n_test=1)
    wf_dict = yaml.safe_load(nested.read_text())
    wf_dict["simulate"]["simulation"]["noise"] = "nested"
    nested.write_text(yaml.safe_dump(wf_dict))
    with pytest.raises(ConfigError, match=r'simulation\.noise: "lattice" -> "nested"'):
        run_workflow(load_workflow(nested), progress=False, client=client)


def test_failure_is_recorded_and_others_finish(tmp_path, client, monkeypatch):
    # A table design whose second point cannot be simulated (CAMB rejects h far out of its grid
    # only at run time would be slow to provoke, so break that one task's config instead).
    wf = load_workflow(tiny_workflow(tmp_path, n_train=3, n_test=1))
    real_submit = type(client).submit

    def submit(self, func, sim_id, cosmo, config, *args, **kwargs):
        if sim_id == "train-0001":
            config = {**config, "particles": -1}   # fails inside the task, like a crashed run
        return real_submit(self, func, sim_id, cosmo, config, *args, **kwargs)

    monkeypatch.setattr(type(client), "submit", submit)
    with pytest.raises(RuntimeError, match="1 simulation"):
        run_workflow(wf, progress=False, client=client)
    status = campaign_status(wf.run_dir)
    assert status["train"]["failed"] == ["train-0001"]
    assert sorted(status["train"]["done"]) == ["train-0000", "train-0002"] and status["test"]["done"] == ["test-0000"]
    record = (wf.run_dir / "sims" / "train" / "train-0001.failed").read_text()
    assert "particles" in record and "Traceback" in record
    log_text = (wf.run_dir / "run.log").read_text()
    assert "train-0001 failed" in log_text and "Traceback" in log_text
    out = subprocess.run([*COSMOPIPE, "status", str(wf.run_dir)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0
    assert "train" in out.stdout and "failed train-0001" in out.stdout
    monkeypatch.undo()
    # a rerun retries only the failed one and clears its record
    run_workflow(load_workflow(tiny_workflow(tmp_path, n_train=3, n_test=1)), progress=False, client=client)
    assert campaign_status(wf.run_dir)["train"]["failed"] == []
    assert len(read_dataset(wf.run_dir / "datasets" / "train.h5")) == 3


def test_killed_worker_loses_nothing(tmp_path, client):
    wf = load_workflow(tiny_workflow(tmp_path, name="killw", n_train=8, n_test=1, particles=32, steps=10))
    pids = list(client.run(os.getpid).values())
    killed = {}

    def killer():
        sims = wf.run_dir / "sims" / "train"
        deadline = time.time() + 120
        while time.time() < deadline:
            if sims.is_dir() and len(list(sims.glob("*.h5"))) >= 2:
                os.kill(pids[0], signal.SIGKILL)
                killed["pid"] = pids[0]
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    run_workflow(wf, progress=False, client=client)
    t.join()
    assert killed, "no worker was killed (the campaign finished too fast?)"
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it; keep the fixture healthy
    status = campaign_status(wf.run_dir)
    assert len(status["train"]["done"]) == 8 and not status["train"]["missing"] and not status["train"]["failed"]
    files = sorted((wf.run_dir / "sims" / "train").glob("*"))
    assert [f.name for f in files] == [f"train-{i:04d}.h5" for i in range(8)]  # no temp files left
    ds = read_dataset(wf.run_dir / "datasets" / "train.h5")
    assert ds.sim_ids == tuple(f"train-{i:04d}" for i in range(8))
    from cosmopipe.sims.io import read_result

    for f in files:
        assert np.all(np.isfinite(read_result(f).boost))


def _wait_for_files(directory: Path, n: int, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if directory.is_dir() and len(list(directory.glob("*.h5"))) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def test_killed_driver_resumes_exactly(tmp_path):
    path = tiny_workflow(tmp_path, name="killd", n_train=8, n_test=1, particles=32, steps=10)
    wf = load_workflow(path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*COSMOPIPE, "run", str(path), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    sims = wf.run_dir / "sims" / "train"
    reached = _wait_for_files(sims, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert reached, "the run finished or failed before it could be killed"
    time.sleep(0.5)
    before = {p.name: p.stat().st_mtime_ns for p in sims.glob("*.h5")}
    assert 2 <= len(before) < 8
    assert not (wf.run_dir / "datasets" / "train.h5").exists()
    n_done = len(list((wf.run_dir / "sims").rglob("*.h5")))  # test-design files may be done too

    out = subprocess.run([*COSMOPIPE, "run", str(path), "--no-progress"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in sims.glob("*.h5")}
    assert len(after) == 8
    assert all(after[name] == mtime for name, mtime in before.items()), "finished simulations were rerun"
    assert f"{n_done} already complete, {9 - n_done} to run" in out.stderr

    # the same workflow, uninterrupted, in another run directory
    ref = subprocess.run([*COSMOPIPE, "run", str(path), "--no-progress", "--run-dir", str(tmp_path / "ref")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    for design in ("train", "test"):
        a = _dataset_arrays(wf.run_dir / "datasets" / f"{design}.h5")
        b = _dataset_arrays(tmp_path / "ref" / "datasets" / f"{design}.h5")
        for key in a:
            assert np.array_equal(a[key], b[key]), f"{design}.{key} differs from the uninterrupted run"


def test_simulate_task_is_idempotent(tmp_path):
    from cosmopipe.sims.config import SimConfig
    from cosmopipe.sims.cosmology import Cosmology

    cosmo = Cosmology()
    config = SimConfig(box=128.0, particles=16, steps=3, z_init=9.0, z_out=(0.0,), threads=1)
    out = tmp_path / "s.h5"
    first = simulate_task("x", cosmo.to_dict(), config.to_dict(), str(out), {"design": "t"})
    assert first["status"] == "done"
    again = simulate_task("x", cosmo.to_dict(), config.to_dict(), str(out), {"design": "t"})
    assert again["status"] == "skipped"
    # a different cosmology at the same path is recomputed, never silently kept
    third = simulate_task("x", cosmo.replace(Omega_m=0.3).to_dict(), config.to_dict(), str(out), {})
    assert third["status"] == "done"
