"""--cluster merging, honest dry runs, scheduler exposure and TLS (no SLURM needed)."""
import json
import logging
from pathlib import Path

import pytest
import yaml

from cosmopipe.pipeline.cli import main
from cosmopipe.pipeline.cluster import (cluster_plan, exposed_without_tls, job_script, merge_cluster, parse_cluster,
                              start_cluster, stop_cluster, walltime_seconds)
from cosmopipe.schema import ConfigError

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted(p for p in (REPO / "workflows").glob("*.yaml") if not p.name.startswith("cobaya_"))  # Cobaya inputs
SLURM = {"cores": 8, "memory": "32GB", "walltime": "02:00:00", "queue": "regular", "account": "m1234"}


def run_cli(args, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cluster_override_keeps_the_files_slurm_settings():
    file_value = {"slurm": SLURM}
    assert merge_cluster(file_value, "slurm") is file_value
    assert merge_cluster(file_value, "local") == "local"
    assert merge_cluster(file_value, "tcp://h:1") == "tcp://h:1"
    assert merge_cluster("local", None) == "local"
    spec = parse_cluster(merge_cluster(file_value, "slurm"), "wf.yaml")
    assert spec.kind == "slurm" and spec.jobqueue["queue"] == "regular" and spec.jobqueue["cores"] == 8
    with pytest.raises(ConfigError, match=r"wf\.yaml: cluster\.slurm: slurm needs settings \(at least cores and "
                                          r"memory\)"):
        parse_cluster(merge_cluster("local", "slurm"), "wf.yaml")


@pytest.mark.parametrize("cluster", ["local", "slurm", "tcp://127.0.0.1:1"])
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_dry_run_cluster_override_on_every_workflow(workflow, cluster, capsys, monkeypatch):
    """The override never trips over the file's cluster section; what can fail is named in one line."""
    has_slurm = "slurm" in (yaml.safe_load(workflow.read_text()).get("cluster") or {})
    rc, out, err = run_cli(["run", str(workflow), "--dry-run", "--cluster", cluster], capsys, monkeypatch)
    assert "unknown key" not in err and "Traceback" not in err
    if rc == 0:
        assert out.startswith("[cluster]\n")
        return
    assert rc == 2 and err.count("\n") == 1 and err.startswith("cosmopipe: error: "), err
    if cluster == "slurm" and not has_slurm:
        assert "cluster.slurm: slurm needs settings" in err
    else:
        assert "cannot reach a Dask scheduler" not in err   # a dry run connects to nothing
        # Inputs this checkout lacks (emulators built by other workflows), or a paper-scale
        # simulation that this machine's memory cannot hold: refusals the real run gives too.
        assert any(s in err for s in ("not found", "leaves the run directory", "each simulation needs about")), err


def test_dry_run_shows_job_script_size_and_placeholders(capsys, monkeypatch):
    rc, out, err = run_cli(["run", "workflows/lsst_y1_wcdm.yaml", "--dry-run", "--cluster", "slurm"], capsys,
                           monkeypatch)
    assert rc == 0, err
    assert "jobs: adaptive 1 to 40 x 128 cores x 465.66 GiB x walltime 12:00:00" in out
    assert "#SBATCH -A your_account" in out and "#SBATCH -t 12:00:00" in out and "--lifetime 11h45m" in out
    assert "warning: cluster.slurm.account: 'your_account' looks like a placeholder" in out
    assert "warning: the scheduler listens beyond loopback (interface ib0) without TLS" in out
    assert "estimated wall time" in out and "core-hours allocated" in out


def test_job_script_needs_no_scheduler():
    spec = parse_cluster({"slurm": {**SLURM, "processes": 2, "job_script_prologue": ["module load python"],
                                    "death_timeout": 30}}, "wf.yaml")
    script = job_script(spec)
    for needle in ("#SBATCH -A m1234", "#SBATCH -p regular", "module load python", "--death-timeout 30",
                   "--resources memory=16000000000,cores=4"):
        assert needle in script, (needle, script)
    assert walltime_seconds("1-02:00:00") == 93600 and walltime_seconds("30:00") == 1800


def write_sample_workflow(tmp_path, power, sampled="Omega_m"):
    wf = {"name": "s", "run_dir": str(tmp_path / "s"), "cluster": "local",
          "sample": {"likelihoods": {"lsst_y1_shear": {"power": power}},
                     "params": {sampled: {"prior": {"min": 0.24, "max": 0.40}}}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


def test_dry_run_refuses_a_missing_emulator_and_an_unknown_parameter(tmp_path, capsys, monkeypatch):
    missing = write_sample_workflow(tmp_path, {"source": "emulator", "path": str(tmp_path / "none.h5")})
    rc, out, err = run_cli(["run", str(missing), "--dry-run"], capsys, monkeypatch)
    assert rc == 2 and f"{tmp_path / 'none.h5'} not found" in err and err.count("\n") == 1, err
    misspelled = write_sample_workflow(tmp_path, {"source": "ee2"}, sampled="Omega_M")
    rc, out, err = run_cli(["run", str(misspelled), "--dry-run"], capsys, monkeypatch)
    assert rc == 2 and "sample.params.Omega_M: no likelihood or theory uses parameter 'Omega_M'" in err, err


def test_dry_run_refuses_changed_physics_like_the_real_run(tmp_path, capsys, monkeypatch):
    from tests.test_campaign import tiny_workflow

    path = tiny_workflow(tmp_path, n_train=1, n_test=1)
    run_dir = tmp_path / "camp"
    run_dir.mkdir()
    from cosmopipe.pipeline.simulate import check_run_dir
    from cosmopipe.pipeline.workflow import load_workflow

    check_run_dir(load_workflow(path).stages["simulate"], run_dir)  # what a first run records
    changed = tiny_workflow(tmp_path, n_train=1, n_test=1, steps=5)
    rc, out, err = run_cli(["run", str(changed), "--dry-run"], capsys, monkeypatch)
    assert rc == 2 and "other physics settings" in err and "simulation.steps: 4 -> 5" in err
    assert "already complete" not in out


def test_exposed_scheduler_warns_without_tls(caplog):
    assert exposed_without_tls(parse_cluster("local", "wf.yaml")) is None
    spec = parse_cluster({"local": {"workers": 1, "threads_per_worker": 1, "memory_limit": "1GB",
                                    "host": "0.0.0.0"}}, "wf.yaml")
    assert exposed_without_tls(spec) == "host 0.0.0.0"
    assert exposed_without_tls(parse_cluster({"slurm": {**SLURM, "interface": "ib0"}}, "wf.yaml")) == "interface ib0"
    assert exposed_without_tls(parse_cluster({"slurm": {**SLURM, "interface": "ib0", "security": "temporary"}},
                                             "wf.yaml")) is None
    caplog.set_level(logging.WARNING, logger="cosmopipe")
    cluster, client = start_cluster(spec, logging.getLogger("cosmopipe.cluster"))
    try:
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        stop_cluster(cluster, client)
    assert "listens beyond loopback (host 0.0.0.0) without TLS" in caplog.text


def test_temporary_security_gives_a_tls_scheduler(caplog):
    spec = parse_cluster({"local": {"workers": 1, "threads_per_worker": 1, "memory_limit": "1GB",
                                    "security": "temporary"}}, "wf.yaml")
    caplog.set_level(logging.WARNING, logger="cosmopipe")
    cluster, client = start_cluster(spec, logging.getLogger("cosmopipe.cluster"))
    try:
        assert cluster.scheduler_address.startswith("tls://")
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        stop_cluster(cluster, client)
    assert "without TLS" not in caplog.text


def test_security_files_must_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"cluster\.local\.security\.tls_ca_file: file .*ca\.pem not found"):
        parse_cluster({"local": {"security": {"tls_ca_file": str(tmp_path / "ca.pem"), "tls_cert": "c",
                                              "tls_key": "k"}}}, "wf.yaml")
    with pytest.raises(ConfigError, match=r"wf\.yaml: cluster\.local\.security: must be temporary or a mapping"):
        parse_cluster({"local": {"security": "yes"}}, "wf.yaml")


def test_cancel_without_jobs_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    rc, out, err = run_cli(["cancel", str(tmp_path)], capsys, monkeypatch)
    assert rc == 2 and err == f"cosmopipe: error: {tmp_path}: no jobs.json (this run submitted no SLURM/PBS jobs)\n"


def test_cluster_plan_for_local_and_address():
    assert cluster_plan(parse_cluster("local", "wf.yaml")).startswith("local cluster")
    assert "existing scheduler at tcp://h:1" in cluster_plan(parse_cluster("tcp://h:1", "wf.yaml"))
    assert json.dumps(parse_cluster("tcp://h:1", "wf.yaml").jobqueue) == "{}"


def test_dashboard_serves_its_status_page():
    """bokeh is a declared dependency: the dashboard whose link is printed answers."""
    import urllib.request

    spec = parse_cluster({"local": {"workers": 1, "threads_per_worker": 1, "memory_limit": "1GB"}}, "wf.yaml")
    cluster, client = start_cluster(spec)
    try:
        with urllib.request.urlopen(client.dashboard_link, timeout=30) as page:
            assert page.status == 200 and b"bokeh" in page.read().lower()
    finally:
        stop_cluster(cluster, client)
