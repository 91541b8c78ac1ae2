"""Every ```python block of README.md runs as written (in a scratch directory); the
emulator examples get a tiny boost emulator, trained here in seconds on EE2 boosts over
the quickstart box, in place of the quickstart's file."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
QUICKSTART_EMULATOR = "out/quickstart/emulators/hybrid.h5"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def tiny_emulator(tmp_path_factory) -> Path:
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.synthetic import ee2_dataset
    from cosmopipe.emulators.training import FitSettings

    box = {"Omega_m": (0.24, 0.40), "h": (0.61, 0.73), "w0": (-1.3, -0.7)}
    ds = ee2_dataset(24, [0.0, 0.5, 1.0, 2.0], np.geomspace(0.02, 0.6, 16), box, seed=1)
    emu = train_boost(ds, FitSettings(network=TrainConfig(hidden=(16,), epochs=300)))
    return emu.save(tmp_path_factory.mktemp("readme") / "boost.h5")


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_readme_example_runs(index, tiny_emulator, tmp_path):
    code = BLOCKS[index].replace(QUICKSTART_EMULATOR, str(tiny_emulator))
    (tmp_path / "out").mkdir()
    # A numba cache compiled before the package rename refers to the old module names ('sims'):
    # a cache of its own keeps the example independent of what else ran in this checkout.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path.parent / "numba_cache")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, f"README python block {index + 1} failed:\n{code}\n{done.stderr[-3000:]}"
