"""Every posterior figure listed in docs/FIGURES.md has its committed thinned chain and
replots from it with the documented command (to a temporary file: docs/ is not touched)."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from cosmopipe.pipeline.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROOT = DOCS.parent


def _entries():
    rows = []
    for line in (DOCS / "FIGURES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("docs/") and cells[0].endswith(".png"):
            command = re.fullmatch(r"`(.+)`", cells[2])
            assert command, f"FIGURES.md: no command in backticks for {cells[0]}"
            rows.append((cells[0], cells[1], command.group(1)))
    return rows


ENTRIES = _entries()


def test_figures_md_lists_the_committed_posterior_figures():
    listed = {figure for figure, _, _ in ENTRIES}
    for name in ("demo_gaussian_triangle.png", "lsst_y1_cosmic_shear_triangle.png", "ede_wbins_triangle.png"):
        assert f"docs/{name}" in listed and (DOCS / name).is_file()


@pytest.mark.parametrize("figure,chains,command", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_figure_replots_from_its_committed_chain(figure, chains, command, tmp_path, monkeypatch, capsys):
    chain_dir = ROOT / chains
    assert (chain_dir / "thinned.json").is_file(), f"{figure}: its chain {chains} is not committed"
    args = shlex.split(command)
    assert args[:2] == ["cosmopipe", "plot"] and args[args.index("--out") + 1] == figure
    out = tmp_path / Path(figure).name
    args[args.index("--out") + 1] = str(out)
    monkeypatch.chdir(ROOT)
    assert main(args[1:]) == 0
    from matplotlib.image import imread

    new, committed = imread(out), imread(ROOT / figure)
    assert new.shape == committed.shape                       # same panels at the same size
    assert abs(float(new.mean()) - float(committed.mean())) < 0.01
    meta = json.loads((chain_dir / "thinned.json").read_text())
    txt = next(chain_dir.glob("*.txt"))
    assert txt.stat().st_size <= 5_000_000 and meta["provenance"]["source_files"]
    # The committed table agrees with the replot's.
    committed_md = (ROOT / figure).with_suffix(".md")
    if committed_md.is_file():
        assert out.with_suffix(".md").read_text() == committed_md.read_text()
