"""The cosmopipe command line: input errors and a `sim` run with a stand-in engine."""
import subprocess
import sys

import pytest

from cosmopipe.pipeline import cli
from cosmopipe.sims import Cosmology, SimConfig
from cosmopipe.sims.io import read_result


def run_cli(argv):
    """main() exit code, whether it returns or raises SystemExit (argparse errors)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def fake_engine(monkeypatch, make_result):
    """Replace the simulation engine; record what the CLI asked for."""
    calls = []

    def fake(cosmology, config, progress, memory_limit=None):
        calls.append((cosmology, config, progress))
        return make_result(cosmology, config)

    monkeypatch.setattr(cli, "_simulate", fake)
    return calls


@pytest.mark.parametrize("param, message", [
    ("x", "--param expects NAME=VALUE, got 'x'"),
    ("Omega_m", "--param expects NAME=VALUE, got 'Omega_m'"),
    ("=0.3", "--param expects NAME=VALUE, got '=0.3'"),
    ("Omega_m=", "--param expects NAME=VALUE, got 'Omega_m='"),
    ("omega_m=0.3", "--param: unknown cosmology parameter 'omega_m'"),
    ("Omega_m=abc", "--param Omega_m: expected a number, got 'abc'"),
    ("w0=nan", "--param w0: expected a finite number"),
])
def test_bad_param(param, message, tmp_path, capsys, fake_engine):
    assert run_cli(["sim", "--param", param, "--out", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cosmopipe: error: ")
    assert message in err
    assert "Traceback" not in err
    assert not fake_engine


def test_param_given_twice(tmp_path, capsys, fake_engine):
    code = run_cli(["sim", "--param", "h=0.7", "--param", "h=0.6", "--out", str(tmp_path / "a.h5")])
    assert code == 2
    assert "--param: h given more than once" in capsys.readouterr().err


def test_out_of_range_omega_m(tmp_path, capsys, fake_engine):
    assert run_cli(["sim", "--param", "Omega_m=0.99", "--out", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err
    assert "cosmopipe: error: cosmology parameter Omega_m=0.99 is outside the allowed range [0.05, 0.95]" in err


def test_mesh_smaller_than_particles(tmp_path, capsys, fake_engine):
    assert run_cli(["sim", "--particles", "64", "--mesh", "32", "--out", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err
    assert "cosmopipe: error: simulation setting mesh" in err
    assert "at least as many cells per side as particles" in err


@pytest.mark.parametrize("zs, message", [
    (["0", "1", "0.5"], "--z: redshifts must be given in increasing or decreasing order, got 0 1 0.5"),
    (["1", "0.5", "1"], "--z: redshift 1 is given twice"),
    (["0.5", "0.5"], "--z: redshift 0.5 is given twice"),
])
def test_bad_redshift_order(zs, message, tmp_path, capsys, fake_engine):
    assert run_cli(["sim", "--z", *zs, "--out", str(tmp_path / "a.h5")]) == 2
    assert f"cosmopipe: error: {message}" in capsys.readouterr().err


def test_redshift_above_z_init(tmp_path, capsys, fake_engine):
    assert run_cli(["sim", "--z", "25", "0", "--out", str(tmp_path / "a.h5")]) == 2
    assert "below z_init=19" in capsys.readouterr().err


def test_argparse_errors_exit_2(tmp_path, capsys):
    assert run_cli(["sim", "--box", "big", "--out", str(tmp_path / "a.h5")]) == 2
    assert run_cli(["sim"]) == 2  # --out is required
    assert run_cli([]) == 2  # a subcommand is required
    capsys.readouterr()


def test_sim_run(tmp_path, capsys, fake_engine):
    out = tmp_path / "deep" / "sim.h5"
    plot = tmp_path / "plots" / "boost.png"
    code = run_cli([
        "sim", "--param", "Omega_m=0.3", "--param", "w0=-0.9", "--box", "128", "--particles", "32",
        "--mesh", "64", "--steps", "10", "--z-init", "29", "--z", "0", "0.5", "1", "--seed", "3",
        "--paired", "--assignment", "tsc", "--step-spacing", "log", "--threads", "2",
        "--plot", str(plot), "--no-progress", "--out", str(out),
    ])
    assert code == 0
    (cosmology, config, progress), = fake_engine
    assert cosmology == Cosmology(Omega_m=0.3, w0=-0.9)
    assert config == SimConfig(box=128, particles=32, mesh=64, steps=10, z_init=29, z_out=(1.0, 0.5, 0.0),
                               seed=3, paired=True, assignment="tsc", step_spacing="log", threads=2)
    assert progress is False
    stdout = capsys.readouterr().out
    assert str(out) in stdout and str(plot) in stdout
    assert read_result(out).config == config
    assert plot.stat().st_size > 10_000


def test_sim_defaults(tmp_path, fake_engine):
    assert run_cli(["sim", "--out", str(tmp_path / "a.h5")]) == 0
    (cosmology, config, progress), = fake_engine
    assert cosmology == Cosmology()
    assert config == SimConfig()
    assert progress is True


def test_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cosmopipe", "sim", "--param", "x", "--out", "unused.h5"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cosmopipe: error: --param expects NAME=VALUE, got 'x'"
    assert proc.stdout == ""
