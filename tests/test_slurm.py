"""Simulation campaigns on a real SLURM (start one on this machine with `sudo .ci/slurm`).

Jobs are really submitted; the tests then cancel jobs, let workers retire and
kill the driver, and check that every simulation ends up done exactly once.
Skipped, with the reason, when no SLURM node is up.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COSMOPIPE = [sys.executable, "-m", "cosmopipe"]
_UP_STATES = ("idle", "mixed", "allocated", "completing")


def _slurm_missing() -> str | None:
    if shutil.which("sinfo") is None:
        return "SLURM not installed (sinfo not found); start a local one with `sudo .ci/slurm`"
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if out.returncode:
        return f"SLURM not answering (sinfo: {out.stderr.strip()}); start it with `sudo .ci/slurm`"
    if not any(s.strip().rstrip("*~#") in _UP_STATES for s in out.stdout.split()):
        return f"no SLURM node is up (sinfo states: {out.stdout.split()}); run `sudo .ci/slurm`"
    return None


_REASON = _slurm_missing()
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


def slurm_workflow(tmp_path: Path, name: str, n: int, simulation: dict | None = None, **slurm) -> Path:
    """A tiny campaign (16^3 particles, 4 steps unless ``simulation`` says otherwise) on
    1-core SLURM jobs named cp-<name>."""
    cluster = {"cores": 1, "memory": "1500MB", "walltime": "00:15:00", "log_directory": str(tmp_path / "logs"),
               "job_name": f"cp-{name}", "death_timeout": 10, "adaptive": {"minimum": 1, "maximum": 2}}
    cluster.update(slurm)
    wf = {
        "name": name, "run_dir": str(tmp_path / name), "cluster": {"slurm": cluster},
        "simulate": {
            "parameters": {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8]},
            "fixed": {"h": 0.67, "wa": 0.0},
            "designs": {"train": {"n": n, "seed": 3}},
            "simulation": {"box": 128.0, "particles": 16, "steps": 4, "z_init": 9.0, "seed": 5, **(simulation or {})},
            "redshifts": [0.0], "k": {"max": 0.35, "n": 6}, "retries": 3,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


def queued(job_name: str) -> dict[str, str]:
    """job id -> state of this test's jobs still known to SLURM."""
    out = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def start_driver(wf: Path, tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / "driver.out", "w")
    return subprocess.Popen([*COSMOPIPE, "run", str(wf), "--no-progress"], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    t_end = time.time() + timeout
    while time.time() < t_end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def running_jobs(name: str) -> list[str]:
    return sorted(i for i, s in queued(f"cp-{name}").items() if s == "RUNNING")


def done_counts(run_dir: Path) -> dict[str, int]:
    """sim id -> how many times a task reported it finished, over all drivers.

    'skipped' counts too: a task moved off a retiring or cancelled worker after its
    file was written finds that file complete and keeps it instead of simulating again.
    """
    text = (run_dir / "run.log").read_text()
    ids = re.findall(r"(train-\d{4}) (?:done|skipped) on ", text)
    return {i: ids.count(i) for i in set(ids)}


def assert_complete_once(run_dir: Path, n: int) -> None:
    from cosmopipe.sims.io import is_complete, read_result

    files = sorted((run_dir / "sims" / "train").glob("*.h5"))
    assert [f.stem for f in files] == [f"train-{i:04d}" for i in range(n)]
    assert all(is_complete(f) for f in files)
    assert [read_result(f).extra["sim_id"] for f in files] == [f.stem for f in files]
    assert not list((run_dir / "sims").rglob("*.failed"))
    assert not [p for p in (run_dir / "sims").rglob("*") if p.is_file() and p.suffix != ".h5"]


@pytest.fixture
def name(request):
    """This test's campaign name; its jobs are named cp-<name>."""
    tag = request.node.name[5:25]
    yield tag
    # A failing test must not leave its jobs to the next one.
    subprocess.run(["scancel", "-n", f"cp-{tag}"], capture_output=True, timeout=30)


def test_campaign_submits_jobs_and_runs_each_simulation_once(tmp_path, name):
    wf = slurm_workflow(tmp_path, name, n=4)
    driver = start_driver(wf, tmp_path)
    seen = wait_for(lambda: queued(f"cp-{name}"), 60, "squeue to list the campaign's jobs")
    assert driver.wait(timeout=180) == 0, (tmp_path / "driver.out").read_text()
    run_dir = tmp_path / name
    assert_complete_once(run_dir, 4)
    assert done_counts(run_dir) == {f"train-{i:04d}": 1 for i in range(4)}
    recorded = {j["id"] for j in json.loads((run_dir / "jobs.json").read_text())["jobs"]}
    assert set(seen) <= recorded
    log = (run_dir / "run.log").read_text()
    assert "#SBATCH -t 00:15:00" in log and "worker(s) connected" in log
    # The workers leave with the driver: nothing of this campaign stays queued.
    wait_for(lambda: not queued(f"cp-{name}"), 40, "the jobs to end after the campaign")


def test_scancel_mid_campaign_is_replaced(tmp_path, name):
    wf = slurm_workflow(tmp_path, name, n=6)
    driver = start_driver(wf, tmp_path)
    run_dir = tmp_path / name
    # Cancel a job while it is running a simulation (some work done, some left).
    wait_for(lambda: (run_dir / "run.log").is_file() and "done on" in (run_dir / "run.log").read_text(),
             120, "a first simulation")
    victim = running_jobs(name)[0]
    subprocess.run(["scancel", victim], check=True, timeout=30)
    assert driver.wait(timeout=240) == 0, (tmp_path / "driver.out").read_text()
    assert_complete_once(run_dir, 6)
    assert done_counts(run_dir) == {f"train-{i:04d}": 1 for i in range(6)}
    jobs = [j["id"] for j in json.loads((run_dir / "jobs.json").read_text())["jobs"]]
    assert victim in jobs and len(jobs) >= 2


def test_worker_lifetime_shorter_than_campaign(tmp_path, name):
    # One job at a time, and more work than one worker lifetime holds (6 simulations of
    # ~2 s each on one core against an 8 s lifetime): only a replacement job can finish it.
    wf = slurm_workflow(tmp_path, name, n=6, simulation={"particles": 32, "steps": 8}, worker_lifetime="8s",
                        worker_lifetime_stagger="1s", adaptive={"minimum": 1, "maximum": 1})
    driver = start_driver(wf, tmp_path)
    assert driver.wait(timeout=300) == 0, (tmp_path / "driver.out").read_text()
    run_dir = tmp_path / name
    assert_complete_once(run_dir, 6)
    assert done_counts(run_dir) == {f"train-{i:04d}": 1 for i in range(6)}
    jobs = json.loads((run_dir / "jobs.json").read_text())["jobs"]
    assert len(jobs) >= 2, jobs


def test_killed_driver_leaves_no_job_and_rerun_resumes(tmp_path, name):
    wf = slurm_workflow(tmp_path, name, n=6)
    driver = start_driver(wf, tmp_path)
    run_dir = tmp_path / name
    wait_for(lambda: running_jobs(name), 60, "a running job")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    t_kill = time.time()
    # Workers stop death_timeout (10 s) after losing the scheduler, ending their jobs.
    wait_for(lambda: not queued(f"cp-{name}"), 60, "the jobs to end after the driver was killed")
    print(f"jobs gone {time.time() - t_kill:.1f} s after the driver was killed")
    out = subprocess.run([*COSMOPIPE, "cancel", str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("cancelled 0 job(s)"), out
    # A rerun resumes: what was finished is kept, the rest is simulated.
    before = {p.name for p in (run_dir / "sims" / "train").glob("*.h5")}
    rerun = subprocess.run([*COSMOPIPE, "run", str(wf), "--no-progress"], cwd=REPO, capture_output=True,
                           text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_complete_once(run_dir, 6)
    assert f"{len(before)} already complete, {6 - len(before)} to run" in (run_dir / "run.log").read_text()


def test_cancel_ends_pending_jobs(tmp_path):
    """`cosmopipe cancel` reaches recorded jobs that are still queued (held here so they never start)."""
    from cosmopipe.pipeline.cluster_jobs import cancel_jobs

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    out = subprocess.run(["sbatch", "--hold", "-J", "cp-cancel", "-o", "/dev/null", "--wrap", "sleep 300"],
                         capture_output=True, text=True, timeout=30, check=True)
    job = out.stdout.split()[-1]
    (run_dir / "jobs.json").write_text(json.dumps({"kind": "slurm", "jobs": [{"id": job}]}))
    assert queued("cp-cancel") == {job: "PENDING"}
    assert cancel_jobs(run_dir) == [job]
    wait_for(lambda: not queued("cp-cancel"), 30, "the held job to leave the queue")
