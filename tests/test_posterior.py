"""``cosmopipe plot``: GetDist triangle plots and constraint tables of sample runs.

The chains are independent draws from known Gaussians (written here as GetDist text
files), so the table's means and 68% limits have analytic answers: mean mu and
mu -/+ sigma.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.pipeline.cli import main
from cosmopipe.pipeline.posterior import find_chains

N = 40000


def _write_run(run_dir: Path, mean, sigma, seed: int, summary: bool = True, fiducial=None) -> Path:
    """GetDist chains of x1, x2 ~ N(mean, sigma) independent, derived xsum, in two chain files."""
    chains = run_dir / "chains"
    chains.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in (1, 2):
        x = np.asarray(mean) + np.asarray(sigma) * rng.standard_normal((N // 2, 2))
        lnp = 0.5 * np.sum(((x - mean) / sigma) ** 2, axis=1)
        np.savetxt(chains / f"demo_{i}.txt", np.column_stack([np.ones(len(x)), lnp, x, x.sum(1), 2 * lnp]))
    (chains / "demo.paramnames").write_text("x1\t\\Omega_m\nx2\tw_0\nxsum*\tx_{\\rm sum}\nchi2__demo*\t\\chi^2\n")
    (chains / "demo.ranges").write_text("x1 N N\nx2 N N\n")
    if summary:
        (chains / "summary.json").write_text(json.dumps({"getdist_root": str(chains / "demo"),
                                                         "fiducial": fiducial or {}}))
    return run_dir


def _cells(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == f"${label}$":
            return cells[1:]
    raise AssertionError(f"no row {label} in\n{markdown}")


def _mean_err(cell: str) -> tuple[float, float]:
    m = re.fullmatch(r"\$(-?[\d.]+)\\pm ([\d.]+)\$", cell)
    assert m, cell
    return float(m.group(1)), float(m.group(2))


def test_plot_two_runs_with_tables(tmp_path, capsys):
    a = _write_run(tmp_path / "emu", [0.30, -1.0], [0.02, 0.1], seed=1, fiducial={"x1": 0.3, "Omega_b": 0.05})
    b = _write_run(tmp_path / "ee2", [0.32, -0.9], [0.03, 0.2], seed=2, summary=False)
    out = tmp_path / "figs" / "triangle.png"
    assert main(["plot", str(a), str(b), "--out", str(out), "--mark", "x2=-1"]) == 0
    printed = capsys.readouterr().out
    from matplotlib.image import imread

    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    md = (tmp_path / "figs" / "triangle.md").read_text()
    tex = (tmp_path / "figs" / "triangle.tex").read_text()
    assert md in printed
    header = md.splitlines()[0]
    assert "emu" in header and "ee2" in header and "fiducial" in header
    for label, mu_a, sd_a, mu_b, sd_b, fid in (("\\Omega_m", 0.30, 0.02, 0.32, 0.03, "0.3"),
                                               ("w_0", -1.0, 0.1, -0.9, 0.2, "-1")):
        cells = _cells(md, label)
        for cell, mu, sd in ((cells[0], mu_a, sd_a), (cells[1], mu_b, sd_b)):
            mean, err = _mean_err(cell)
            # GetDist rounds the error to 2 significant figures and the mean to match.
            assert abs(mean - mu) < 0.05 * sd + 4 * sd / np.sqrt(N)
            assert abs(err / sd - 1) < 0.04
        assert cells[2] == fid
    sum_cells = _cells(md, "x_{\\rm sum}")
    mean, err = _mean_err(sum_cells[0])
    assert abs(err / np.hypot(0.02, 0.1) - 1) < 0.04 and sum_cells[2] == ""
    assert "chi" not in md                                    # chi^2 columns are not plotted
    assert tex.startswith("\\begin{tabular}{lccc}") and "$\\Omega_m$ &" in tex and tex.rstrip().endswith(
        "\\end{tabular}")


def test_plot_defaults_and_stage_layout(tmp_path, capsys):
    """A chain directory from the sample stage (summary.json in <run>/chains) is found; the
    figure defaults to <RUN_DIR>/triangle.png."""
    run_dir = _write_run(tmp_path / "run", [0.0, 1.0], [1.0, 2.0], seed=3)
    found = find_chains(run_dir)
    assert found.root == run_dir / "chains" / "demo" and found.label == "run"
    assert main(["plot", str(run_dir), "--params", "x2", "--no-fiducial"]) == 0
    assert (run_dir / "triangle.png").stat().st_size > 1000
    md = (run_dir / "triangle.md").read_text()
    assert md.splitlines()[0] == "| Parameter | run |" and len(md.splitlines()) == 3


@pytest.mark.parametrize("args, text", [
    (["{missing}"], "not a directory"),
    (["{empty}"], "no GetDist chains"),
    (["{run}", "--params", "x9"], "has no parameter(s) x9"),
    (["{run}", "--mark", "x1"], "--mark expects NAME=VALUE"),
    (["{run}", "--mark", "x1=abc"], "expected a number"),
    (["{run}", "--labels", "a", "b"], "one label per RUN_DIR"),
    (["{run}", "--out", "{tmp}/t.txt"], "must be a .png or .pdf"),
])
def test_plot_errors(tmp_path, capsys, args, text):
    run_dir = _write_run(tmp_path / "run", [0.0, 1.0], [1.0, 2.0], seed=4)
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "run": run_dir, "tmp": tmp_path}
    assert main(["plot", *[a.format(**paths) for a in args]]) == 2
    err = capsys.readouterr().err
    assert "cosmopipe: error:" in err and text in err
