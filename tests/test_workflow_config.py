"""Workflow validation: every error names the file, the key path and what was expected."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cosmopipe.pipeline.cluster import parse_cluster, start_cluster, stop_cluster
from cosmopipe.schema import ConfigError
from cosmopipe.pipeline.workflow import load_workflow, run_workflow

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "name": "cfg",
    "simulate": {
        "parameters": {"Omega_m": [0.24, 0.40], "w0": [-1.3, -0.7]},
        "designs": {"train": {"n": 4, "seed": 1}},
        "simulation": {"box": 256.0, "particles": 32, "steps": 10},
        "redshifts": [1.0, 0.0],
    },
}


def write(tmp_path, data, name="wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def with_change(path_keys, value):
    import copy

    data = copy.deepcopy(BASE)
    node = data
    for key in path_keys[:-1]:
        node = node[key]
    node[path_keys[-1]] = value
    return data


def error_of(tmp_path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_workflow(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message[len(str(path)) + 2:]


def test_valid_workflow_loads(tmp_path):
    wf = load_workflow(write(tmp_path, BASE))
    sim = wf.stages["simulate"]
    assert sim.box.names == ("Omega_m", "w0") and sim.sim.particles == 32 and sim.sim.z_out == (1.0, 0.0)
    assert wf.run_dir == Path("out/cfg") and wf.cluster.kind == "local"


@pytest.mark.parametrize("keys, value, expected", [
    (("simulate", "designs", "train", "n"), -3, "simulate.designs.train.n: must be a positive integer, got -3"),
    (("simulate", "designs", "train", "n"), "many", "simulate.designs.train.n: must be a positive integer, got 'many'"),
    (("simulate", "parameters", "Omega_m"), [0.4, 0.24], "simulate.parameters.Omega_m: must be a range [min, max] with min < max, got [0.4, 0.24]"),
    (("simulate", "parameters", "Omega_x"), [0.1, 0.2], "simulate.parameters.Omega_x: unknown cosmology parameter"),
    (("simulate", "simulation", "particels"), 32, "simulate.simulation.particels: unknown simulation setting"),
    (("simulate", "simulation", "steps"), 0, "simulate.simulation.steps: must be an integer in [1, 10000], got 0"),
    (("simulate", "designs", "train", "sed"), 1, "simulate.designs.train.sed: unknown key; allowed keys here:"),
    (("simulate", "redshifts"), [0.0, -1.0], "simulate.redshifts: redshifts must be >= 0"),
    (("simulate", "designs", "train", "widen"), 2.0, "simulate.designs.train.widen: must be a fraction in [0, 1]"),
    (("simulate", "k"), {"max": 99.0}, "simulate.k.max: must be a number in (0, 0.785398]"),
    (("simulate", "parameters", "h"), [0.1, 0.7], "simulate.parameters.h: range [0.1, 0.7] leaves the physical range [0.4, 1]"),
    (("simulate", "memory_per_task"), "lots", "simulate.memory_per_task: must be auto or a size such as 2GB"),
    (("cluster",), "pbz", "cluster: must be local, slurm, pbs, a scheduler address"),
    (("cluster",), {"slurm": {"cores": 8}}, "cluster.slurm.memory: is required"),
    (("cluster",), {"slurm": {"cores": 8, "memory": "16GB", "processes": 3}}, "cluster.slurm.processes: must divide cores (8), got 3"),
    (("cluster",), {"local": {"workers": 0}}, "cluster.local.workers: must be a positive integer, got 0"),
    (("simulaet",), {}, "simulaet: unknown key; allowed keys here:"),
])
def test_errors_name_key_path(tmp_path, keys, value, expected):
    message = error_of(tmp_path, with_change(keys, value))
    assert message.startswith(expected), message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: workflow file not found"):
        load_workflow(tmp_path / "nope.yaml")
    bad = write(tmp_path, "simulate:\n  parameters: {Omega_m: [0.2, 0.3]\n  designs: x\n", "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml: malformed YAML: line \d+, column \d+"):
        load_workflow(bad)
    listy = write(tmp_path, "- simulate\n", "list.yaml")
    with pytest.raises(ConfigError, match="must be a mapping of stage names"):
        load_workflow(listy)
    table = with_change(("simulate", "designs", "test"), {"table": "missing.csv"})
    message = error_of(tmp_path, table)
    assert message.startswith("simulate.designs.test.table:") and "missing.csv: design table not found" in message


def test_table_design(tmp_path):
    (tmp_path / "pts.csv").write_text("# two points\nOmega_m,w0,h\n0.3,-1.0,0.7\n0.32,-0.9,0.7\n")
    wf = load_workflow(write(tmp_path, with_change(("simulate", "designs", "test"), {"table": "pts.csv"})))
    design = {d.name: d for d in wf.stages["simulate"].designs}["test"]
    assert design.table == ((0.3, -1.0), (0.32, -0.9))
    bad = tmp_path / "pts2.csv"
    bad.write_text("Omega_m\n0.3\n")
    message = error_of(tmp_path, with_change(("simulate", "designs", "test"), {"table": "pts2.csv"}))
    assert "lacks column(s) w0" in message


def test_unreachable_scheduler_fails_fast(tmp_path):
    spec = parse_cluster("tcp://127.0.0.1:9", "wf.yaml")
    spec = type(spec)(**{**spec.__dict__, "timeout": 3.0})
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cannot reach a Dask scheduler at tcp://127\.0\.0\.1:9 within 3 s"):
        start_cluster(spec)
    assert time.perf_counter() - t0 < 15


def test_cli_reports_config_errors(tmp_path):
    path = write(tmp_path, with_change(("simulate", "designs", "train", "n"), -3))
    out = subprocess.run([sys.executable, "-m", "cosmopipe", "run", str(path), "--dry-run"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().endswith(f"cosmopipe: error: {path}: simulate.designs.train.n: must be a positive integer, got -3")
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "cosmopipe", "run", str(write(tmp_path, BASE)), "--cluster",
                          "tcp://127.0.0.1:9", "--stage", "simulate", "--run-dir", str(tmp_path / "r")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cannot reach a Dask scheduler" in out.stderr and "Traceback" not in out.stderr


def test_unknown_stage_and_dry_run(tmp_path, capsys):
    wf = load_workflow(write(tmp_path, BASE))
    with pytest.raises(ConfigError, match="--stage: unknown stage 'simulat'"):
        run_workflow(wf, only="simulat", dry_run=True)
    run_workflow(wf, dry_run=True)
    text = capsys.readouterr().out
    assert "design train: 4 cosmologies" in text and "core-seconds per task" in text
    assert not (tmp_path / "out").exists()


def test_paper_scale_plan():
    """workflows/lsst_y1_wcdm.yaml validates and prints a plan extrapolated from the measured cost."""
    out = subprocess.run([sys.executable, "-m", "cosmopipe", "run", "workflows/lsst_y1_wcdm.yaml", "--dry-run"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "design train: 500 cosmologies" in text and "design test: 100 cosmologies" in text
    assert "1024^3 particles, 2048^3 mesh, 51 steps from z=19, 40 output redshifts in [0, 3], paired" in text
    assert "tasks: 600" in text and "core-hours in all" in text
    # 10% widened training box: Omega_m [0.24, 0.40] -> [0.232, 0.408]
    assert "Omega_m [0.232, 0.408]" in text


def test_slurm_job_script_has_directives():
    spec = parse_cluster({"slurm": {"cores": 8, "memory": "32GB", "processes": 2, "walltime": "02:00:00",
                                    "queue": "regular", "account": "m1234", "job_directives": ["--constraint=cpu"],
                                    "worker_lifetime": "1h50m", "jobs": 0}}, "wf.yaml")
    cluster, client = start_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        stop_cluster(cluster, client)
    for needle in ("#SBATCH -A m1234", "#SBATCH -p regular", "#SBATCH -t 02:00:00", "#SBATCH --constraint=cpu",
                   "--lifetime 1h50m", "--resources memory=16000000000,cores=4", "--nworkers 2"):
        assert needle in script, (needle, script)
    assert "127.0.0.1" in cluster.scheduler_address  # loopback unless configured otherwise
