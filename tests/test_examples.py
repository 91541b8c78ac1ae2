"""Each script in examples/ runs to completion (< 2 min on 2 cores) and produces what it says."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_produce_posterior(tmp_path):
    out = tmp_path / "posterior"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "produce_posterior.py"), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    summary = json.loads((out / "chains" / "summary.json").read_text())
    assert summary["status"] == "converged"
    # The toy's answer is known: Omega_m = 0.30 +- 0.02, w0 = -1.0 +- 0.1 (the fiducial and sigmas).
    assert abs(summary["params"]["Omega_m"]["mean"] - 0.30) < 0.2 * 0.02
    assert abs(summary["params"]["w0"]["mean"] + 1.0) < 0.2 * 0.1
    assert "A_nuis" not in (out / "triangle.md").read_text()        # nuisance hidden without --all
    assert (out / "triangle.png").stat().st_size > 10_000
    assert (out / "thinned" / "demo_gaussian" / "thinned.json").is_file()
    assert "WARNING" not in done.stdout


def _run_example(script: str, args: list[str], tmp_path: Path, cwd: Path = ROOT) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout)
    return done.stdout


def _repr_block(stdout: str) -> list[str]:
    """The lines print(emu) wrote: from the line after the '>>> ...print(...' echo to the next blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(">>>") and "print(" in line) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """examples/run_a_campaign.py run once (about 80 s on 2 cores): (its output directory, its stdout)."""
    tmp = tmp_path_factory.mktemp("campaign")
    return tmp / "out", _run_example("run_a_campaign.py", [str(tmp / "out")], tmp)


# The campaign example takes ~70 s on 2 cores: with the slow physics runs (--runslow).
@pytest.mark.slow
def test_run_a_campaign(campaign):
    out, stdout = campaign
    run = out / "run"
    assert (out / "campaign.yaml").is_file()
    assert re.search(r"^train\s+6\s+6\s+0\s+0\s+0$", stdout, re.M)      # the `cosmopipe status` table
    assert re.search(r"^test\s+2\s+2\s+0\s+0\s+0$", stdout, re.M)
    for name in ("datasets/train.h5", "datasets/test.h5", "datasets/linear.h5", "emulators/boost.h5",
                 "validation/validation.json"):
        assert (run / name).is_file(), name
    shown = _repr_block(stdout)
    assert 4 <= len(shown) < 15 and shown[0] == "boost emulator", shown
    assert any(line.strip().startswith("box") and "Omega_m" in line and "w0" in line for line in shown)
    assert any(line.strip().startswith("k ") and "z 0 - 1" in line for line in shown)
    assert any("accuracy" in line and "%" in line for line in shown)
    assert "Traceback" not in stdout


def _check_query_output(stdout: str, png: Path) -> None:
    shown = _repr_block(stdout)
    assert len(shown) < 15 and shown[0] == "boost emulator", shown
    # The one-cosmology table: 8 rows of k, B(z=0), B(z=1), P_nl(z=0), P_nl(z=1).
    assert re.search(r"^\s+k \[h/Mpc\]\s+B\(z=0\)\s+B\(z=1\)\s+P_nl\(z=0\)\s+P_nl\(z=1\)$", stdout, re.M)
    rows = [[float(x) for x in line.split()] for line in stdout.splitlines()
            if re.fullmatch(r"\s*(\d+\.\d+\s+){4}\d+\.\d+\s*", line)]
    table = np.array(rows)
    assert table.shape == (8, 5)
    assert np.all(np.isfinite(table)) and np.all(np.diff(table[:, 0]) > 0)
    assert np.all(table[:, 1:3] > 0.5) and np.all(table[:, 3:] > 0)
    assert np.all(table[:, 3] > table[:, 4])                     # P_nl grows from z = 1 to z = 0
    assert "emu.boost(k, z, batch).shape = (5, 2, 8)" in stdout
    assert "emu.pnl(k, z, batch).shape   = (5, 2, 8)" in stdout
    b_lo, b_hi = map(float, re.search(r"B in \[([\d.]+), ([\d.]+)\], all finite: True", stdout).groups())
    assert 0.5 < b_lo <= b_hi < 20
    assert "P_nl in" in stdout and stdout.count("all finite: True") == 2
    assert f"wrote {png}" in stdout and png.stat().st_size > 10_000


@pytest.mark.slow
def test_query_predictions_on_the_campaign_emulator(campaign, tmp_path):
    out, _ = campaign
    emu = out / "run" / "emulators" / "boost.h5"
    stdout = _run_example("query_predictions.py", [str(emu), "--out", str(tmp_path / "query")], tmp_path)
    assert f"emulators.load({str(emu)!r})" in stdout and "training a tiny emulator" not in stdout
    _check_query_output(stdout, tmp_path / "query" / "boost.png")


def test_query_predictions_standalone(tmp_path):
    # Run from an empty directory: no campaign emulator at the default path, so it trains a tiny one.
    stdout = _run_example("query_predictions.py", ["--out", str(tmp_path / "query")], tmp_path, cwd=tmp_path)
    assert "training a tiny emulator" in stdout
    assert (tmp_path / "query" / "tiny" / "emulators" / "boost.h5").is_file()
    _check_query_output(stdout, tmp_path / "query" / "boost.png")
