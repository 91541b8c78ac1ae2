"""Hostile input and a hostile machine (issue 16): full or read-only disks, damaged files,
memory guards, paths that leave the run directory, loose types, and two runs at once.

Every fault must end in one ``cosmopipe: error: ...`` line naming the file, exit code 2,
and no temp files left behind.
"""
import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import cosmopipe.pipeline.rundir as rundir
from cosmopipe.pipeline import cli
from cosmopipe.pipeline.rundir import RunDirError, remove_stale_temp_files, run_dir_lock
from cosmopipe.schema import ConfigError, inside_path
from cosmopipe.pipeline.campaign_task import _write_failure
from cosmopipe.pipeline.workflow import load_workflow, run_workflow
from cosmopipe.sims import Cosmology, SimConfig
from cosmopipe.sims.config import MemoryLimitError, available_memory_bytes

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run_cli(argv, capsys):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one error line; fails on a traceback or on several lines."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("cosmopipe: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def workflow(tmp_path: Path, name="faults", particles=8, cluster=None, **simulate) -> Path:
    wf = {
        "name": name,
        "run_dir": str(tmp_path / "run"),
        "cluster": cluster or {"local": {"workers": 1, "threads_per_worker": 1}},
        "simulate": {
            "parameters": {"Omega_m": [0.28, 0.34]},
            "designs": {"train": {"n": 2, "seed": 1}},
            "simulation": {"box": 128.0, "particles": particles, "steps": 2, "z_init": 9.0, "seed": 5},
            "k": {"max": 0.15, "n": 3},
            "retries": 0,
            **simulate,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


# -- full disk -------------------------------------------------------------------------
@pytest.fixture
def inprocess_cluster(monkeypatch):
    """`cosmopipe run` on a Dask cluster in this process, so the patches below reach the tasks."""
    from distributed import Client, LocalCluster

    import cosmopipe.pipeline.cluster as cluster_mod
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    client = Client(cluster)
    monkeypatch.setattr(cluster_mod, "start_cluster", lambda spec, log=None, **kw: (None, client))
    monkeypatch.setattr(cluster_mod, "stop_cluster", lambda *a, **kw: None)
    yield client
    client.close()
    cluster.close()


def test_full_disk_during_a_campaign_is_one_error(tmp_path, monkeypatch, capsys, inprocess_cluster, make_result):
    import cosmopipe.sims.io
    from cosmopipe import sims
    import cosmopipe.sims.run
    from cosmopipe import sims
    monkeypatch.setattr(sims.run, "run_simulation", lambda c, cfg, progress=True: make_result(c, cfg))

    def disk_full(f, result):
        f.create_dataset("partial", data=[1.0])  # the temp file exists when the disk fills
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sims.io, "_write_arrays", disk_full)
    real_write_text = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.endswith(".failed.tmp"):  # the failure record hits the full disk too
            real_write_text(self, "", *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    code, out, err = run_cli(["run", workflow(tmp_path), "--no-progress"], capsys)
    line = error_line(err)
    assert code == 2
    assert line.startswith(f"cosmopipe: error: {tmp_path / 'run' / 'sims' / 'train'}/train-000")
    assert "no space left on the device" in line and "other simulations were stopped" in line
    assert temp_files(tmp_path) == []
    assert list((tmp_path / "run" / "sims").rglob("*.failed")) == []


def test_failure_record_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch, caplog):
    def full(self, data, *a, **k):
        self.touch()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    _write_failure(tmp_path / "x.failed", "x", ValueError("boom"))  # never raises over the real error
    assert list(tmp_path.iterdir()) == []
    assert "cannot record the failure of x" in caplog.text


def test_full_disk_writing_a_simulation_names_the_file(tmp_path, monkeypatch, capsys, make_result):
    import cosmopipe.sims.io
    from cosmopipe import sims
    monkeypatch.setattr(cli, "_simulate", lambda c, cfg, progress, memory_limit=None: make_result(c, cfg))

    def disk_full(f, result):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sims.io, "_write_arrays", disk_full)
    out_file = tmp_path / "out" / "sim.h5"
    code, _, err = run_cli(["sim", "--particles", "8", "--no-progress", "--out", out_file], capsys)
    assert code == 2
    assert error_line(err) == (f"cosmopipe: error: {out_file}: no space left on the device; free some space "
                               f"or use another run directory")
    assert list(out_file.parent.iterdir()) == []


# -- read-only run directory -------------------------------------------------------------
def test_read_only_run_directory_is_one_error(tmp_path, monkeypatch, capsys):
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(rundir, "open", denied, raising=False)
    code, _, err = run_cli(["run", workflow(tmp_path)], capsys)
    assert code == 2
    assert error_line(err) == (f"cosmopipe: error: {tmp_path / 'run' / '.lock'}: permission denied; use a "
                               f"directory you can write to")


def test_read_only_file_system_names_the_file(tmp_path, monkeypatch, capsys):
    def read_only(self, data, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")  # write() errors name no file

    path = workflow(tmp_path)
    monkeypatch.setattr(Path, "write_text", read_only)
    code, _, err = run_cli(["run", path], capsys)
    assert code == 2
    assert error_line(err) == (f"cosmopipe: error: {tmp_path / 'run' / 'workflow.yaml'}: read-only file system; "
                               f"use a writable run directory")
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions; covered by the monkeypatched tests")
def test_chmod_read_only_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o500)
    try:
        code, _, err = run_cli(["run", workflow(tmp_path)], capsys)
    finally:
        run.chmod(0o700)
    assert code == 2 and "permission denied" in error_line(err)


def test_other_os_errors_keep_their_traceback(monkeypatch):
    def bug(args):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(cli, "cmd_sim", bug)
    monkeypatch.setattr(cli, "_SUBCOMMANDS", {"sim": (cli._add_sim, bug)})
    with pytest.raises(OSError, match="Bad file descriptor"):
        cli.main(["sim", "--out", "x.h5"])


# -- damaged files ---------------------------------------------------------------------
def test_truncated_campaign_json_is_one_error_and_nothing_is_written(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "campaign.json").write_text('{"parameters": {"Omega_m": [0.2')
    code, _, err = run_cli(["run", workflow(tmp_path)], capsys)
    assert code == 2
    assert error_line(err).startswith(f"cosmopipe: error: {run / 'campaign.json'}: damaged campaign record "
                                      f"(JSONDecodeError at byte ")
    assert sorted(p.name for p in run.iterdir()) == ["campaign.json"]


def test_binary_design_table_in_a_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "designs").mkdir(parents=True)
    (run / "campaign.json").write_text("{}")
    (run / "designs" / "train.csv").write_bytes(b"id,Omega_m\n\xff\xfe\x00\x9c binary")
    code, _, err = run_cli(["status", run], capsys)
    assert code == 2
    assert error_line(err) == (f"cosmopipe: error: {run / 'designs' / 'train.csv'}: damaged design table "
                               f"(not text: undecodable byte at offset 11)")


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xd8\xff\xe0 JFIF", "not a text CSV file (undecodable byte at offset 0)"),
    (b"Omega_m\n0.3\x00\n", "line 2: expected numbers in columns Omega_m"),
    (b"SECRET_TOKEN=abc123,x\n1,2\n", "the header line lacks column(s) Omega_m; it must name Omega_m"),
    (b"Omega_m\nSECRET_TOKEN\n", "line 2: expected numbers in columns Omega_m"),
])
def test_damaged_design_table_names_file_not_content(tmp_path, capsys, content, problem):
    (tmp_path / "table.csv").write_bytes(content)
    path = workflow(tmp_path, designs={"train": {"table": "table.csv"}})
    code, _, err = run_cli(["run", path, "--dry-run"], capsys)
    assert code == 2
    assert error_line(err) == f"cosmopipe: error: {path}: simulate.designs.train.table: {tmp_path / 'table.csv'}: {problem}"
    assert "SECRET" not in err


# -- stale temp files ------------------------------------------------------------------
def test_stale_temp_files_are_removed_fresh_ones_kept(tmp_path):
    stale = [tmp_path / "sims" / "train" / ".train-0000.h5.tmp-4242-deadbeef",
             tmp_path / "sims" / "train" / "train-0001.failed.tmp", tmp_path / "campaign.json.tmp",
             tmp_path / "chains" / ".chain.h5.tmp-77"]
    fresh = tmp_path / "sims" / "train" / ".train-0002.h5.tmp-4243-cafe"
    keep = [tmp_path / "sims" / "train" / "train-0000.h5", tmp_path / "notes.tmpl", tmp_path / ".lock"]
    old = time.time() - 3600
    for p in stale + [fresh] + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
        os.utime(p, (old, old))
    os.utime(fresh, None)  # a writer that is still at work
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in keep + [fresh])


# -- memory guards ---------------------------------------------------------------------
def test_sim_refuses_a_run_that_cannot_fit(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_simulate", lambda *a, **k: pytest.fail("the engine must not start"))
    code, _, err = run_cli(["sim", "--particles", "4096", "--out", tmp_path / "x.h5"], capsys)
    assert code == 2
    assert error_line(err).startswith("cosmopipe: error: simulation with 4096^3 particles and a 8192^3 mesh "
                                      "needs about 15.9 TB (engine estimate) but available memory "
                                      "(MemAvailable in /proc/meminfo) is ")
    assert not (tmp_path / "x.h5").exists()


def test_sim_memory_override(capsys, tmp_path, monkeypatch, make_result):
    seen = []

    def fake(c, cfg, progress, memory_limit=None):
        seen.append(memory_limit)
        return make_result(c, cfg)

    monkeypatch.setattr(cli, "_simulate", fake)
    code, _, err = run_cli(["sim", "--particles", "32", "--max-memory", "1MB", "--out", tmp_path / "a.h5"], capsys)
    assert code == 2 and "but the given memory limit is 1 MB" in error_line(err)
    code, _, _ = run_cli(["sim", "--particles", "32", "--max-memory", "2GB", "--no-progress",
                          "--out", tmp_path / "b.h5"], capsys)
    assert code == 0 and seen == [2_000_000_000]
    code, _, err = run_cli(["sim", "--max-memory", "lots", "--out", tmp_path / "c.h5"], capsys)
    assert code == 2 and error_line(err) == ("cosmopipe: error: --max-memory: expected a positive size such as "
                                             "64GB or 512MiB, got 'lots'")


def test_run_simulation_refuses_before_any_work():
    from cosmopipe.sims.run import run_simulation

    with pytest.raises(MemoryLimitError, match=r"^simulation with 64\^3 particles and a 128\^3 mesh needs about "
                                               r"60\.8 MB \(engine estimate\) but the given memory limit is 1 MB;"):
        run_simulation(Cosmology(), SimConfig(particles=64), progress=False, memory_limit=1_000_000)
    with pytest.raises(ValueError, match="memory_limit: expected a positive number of bytes"):
        run_simulation(Cosmology(), SimConfig(particles=64), progress=False, memory_limit="8GB")


def test_available_memory_reads_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")
    assert available_memory_bytes(str(meminfo)) == 8_000_000 * 1024
    assert available_memory_bytes(str(tmp_path / "absent")) is None


def test_workflow_refused_for_memory_writes_nothing(tmp_path, capsys):
    small = {"local": {"workers": 1, "threads_per_worker": 1, "memory_limit": "200MB"}}
    code, _, err = run_cli(["run", workflow(tmp_path, particles=64, cluster=small)], capsys)
    assert code == 2
    assert error_line(err).startswith(f"cosmopipe: error: {tmp_path / 'faults.yaml'}: simulate.simulation: each "
                                      f"simulation needs about 0.59 GB but a worker of the local cluster has "
                                      f"0.20 GB")
    assert not (tmp_path / "run").exists()


def test_predict_refuses_huge_grids(capsys, monkeypatch):
    import cosmopipe.pipeline.cli_emulators as ce
    emu = SimpleNamespace(kind="boost", params=("Omega_m",), k_range=(0.01, 1.0),
                          boost=lambda *a, **k: pytest.fail("must refuse before evaluating"))
    monkeypatch.setattr(ce, "_load", lambda path: emu)
    code, _, err = run_cli(["predict", "emu.h5", "--nk", "100000000"], capsys)
    assert code == 2
    assert error_line(err) == ("cosmopipe: error: --nk 100000000 with 1 redshift(s) asks for 100,000,000 (k, z) "
                               "points; at most 1,000,000 are allowed (nk x number of redshifts)")
    code, _, err = run_cli(["predict", "emu.h5", "--nk", "100000", "--z", "0", "1", "2", "3", "4", "5", "6", "7",
                            "8", "9", "10"], capsys)
    assert code == 2 and "asks for 1,100,000 (k, z) points" in error_line(err)
    code, out, _ = run_cli(["predict", "--help"], capsys)
    assert "at most 1,000,000 points" in " ".join(out.split())


# -- paths and names -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "a/b", "x.y", "", "é", "a" * 65, 12])
def test_workflow_name_is_a_file_name(tmp_path, name):
    path = workflow(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["name"] = name
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r": name: must be letters, digits and underscores \(at most 64\), got "):
        load_workflow(path)


def test_default_name_from_an_odd_file_name(tmp_path):
    path = workflow(tmp_path)
    raw = yaml.safe_load(path.read_text())
    del raw["name"]
    odd = tmp_path / "my run.v2.yaml"
    odd.write_text(yaml.safe_dump(raw))
    assert load_workflow(odd).name == "my_run_v2"


@pytest.mark.parametrize("design", ["a-b", "../x", "tr.ain"])
def test_design_names_follow_the_same_rule(tmp_path, design):
    path = workflow(tmp_path, designs={design: {"n": 2, "seed": 1}})
    with pytest.raises(ConfigError, match=rf"simulate\.designs\.{__import__('re').escape(design)}: design names "
                                          r"must be letters, digits and underscores \(at most 64\)"):
        load_workflow(path)


@pytest.mark.parametrize("table", ["/etc/passwd", "../outside.csv"])
def test_design_table_only_from_the_workflow_or_run_directory(tmp_path, table):
    (tmp_path / "outside.csv").write_text("Omega_m\n0.3\n")
    sub = tmp_path / "wf"
    sub.mkdir()
    path = workflow(sub, designs={"train": {"table": table}})
    with pytest.raises(ConfigError) as info:
        load_workflow(path)
    assert str(info.value) == (f"{path}: simulate.designs.train.table: must be a file inside the workflow file's "
                               f"directory or the run directory, got {table!r}")


def test_design_table_from_the_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "extra.csv").write_text("Omega_m\n0.30\n0.31\n")
    wf_dir = tmp_path / "wf"
    wf_dir.mkdir()
    path = workflow(wf_dir, designs={"extra": {"table": str(run / "extra.csv")}})
    raw = yaml.safe_load(path.read_text())
    raw["run_dir"] = str(run)
    path.write_text(yaml.safe_dump(raw))
    spec = load_workflow(path).settings("simulate").designs[0]
    assert spec.table == ((0.30,), (0.31,))


@pytest.mark.parametrize("value", ["/tmp/x", "../x", "a/../../x"])
def test_output_paths_stay_inside(value):
    with pytest.raises(ValueError, match="must be a relative path inside the run directory"):
        inside_path(value)
    assert inside_path("chains/sub") == "chains/sub"


def test_context_path_refuses_to_leave(tmp_path):
    from cosmopipe.pipeline.workflow import RunContext

    ctx = RunContext(load_workflow(workflow(tmp_path)))
    assert ctx.path("sims", "a.h5") == tmp_path / "run" / "sims" / "a.h5"
    with pytest.raises(ConfigError, match="leaves the run directory"):
        ctx.path("..", "x")


# -- types -----------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("particles", "32", "simulate.simulation.particles: expected an integer, got '32'"),
    ("particles", 32.0, "simulate.simulation.particles: expected an integer, got 32.0"),
    ("box", "128", "simulate.simulation.box: expected a number, got '128'"),
    ("seed", True, "simulate.simulation.seed: expected an integer, got True"),
])
def test_yaml_simulation_settings_are_typed(tmp_path, key, value, message):
    path = workflow(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["simulate"]["simulation"][key] = value
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_workflow(path)
    assert str(info.value) == f"{path}: {message}"


def test_yaml_and_python_cosmology_agree(tmp_path):
    path = workflow(tmp_path, fixed={"Omega_b": "0.049"})
    with pytest.raises(ConfigError, match=r"simulate\.fixed\.Omega_b: must be a finite number, got '0.049'"):
        load_workflow(path)
    with pytest.raises(ValueError, match=r"^cosmology parameter h: expected a number, got '0.7'$"):
        Cosmology(h="0.7")


def test_binary_workflow_file(tmp_path, capsys):
    path = tmp_path / "wf.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, _, err = run_cli(["run", path], capsys)
    assert code == 2
    assert error_line(err) == f"cosmopipe: error: {path}: not a text (UTF-8) file: undecodable byte at offset 0"


# -- the run-directory lock ------------------------------------------------------------
def test_lock_refuses_a_second_holder(tmp_path):
    with run_dir_lock(tmp_path / "run"):
        with pytest.raises(RunDirError) as info:
            with run_dir_lock(tmp_path / "run"):
                pass
    assert str(info.value) == (f"run directory {tmp_path / 'run'} is in use by process {os.getpid()} on "
                               f"{socket.gethostname()}; wait for that run to finish or stop it (the lock is "
                               f"released when it exits)")
    with run_dir_lock(tmp_path / "run"):  # released on exit
        pass


def test_two_runs_on_one_directory(tmp_path):
    path = workflow(tmp_path)
    run = tmp_path / "run"
    stale = run / "sims" / "train" / ".train-0000.h5.tmp-99999-0bad"
    stale.parent.mkdir(parents=True)
    stale.write_text("left by a killed writer")
    os.utime(stale, (time.time() - 3600,) * 2)
    cmd = [sys.executable, "-m", "cosmopipe", "run", str(path), "--no-progress"]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while f"process {first.pid} " not in ((run / ".lock").read_text() if (run / ".lock").exists() else ""):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        t0 = time.monotonic()
        second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2, second.stderr
    assert error_line(second.stderr) == (f"cosmopipe: error: run directory {run} is in use by process {first.pid} "
                                         f"on {socket.gethostname()}; wait for that run to finish or stop it "
                                         f"(the lock is released when it exits)")
    assert took < 30  # refused at once, not after waiting for the first run
    assert first.returncode == 0, err
    log = (run / "run.log").read_text()
    assert log.count("stage simulate: starting") == 1
    assert sum(f"train-000{i} done" in log for i in range(2)) == 2
    assert not stale.exists()
    assert json.loads((run / "campaign.json").read_text())["designs"]["train"]["n"] == 2
