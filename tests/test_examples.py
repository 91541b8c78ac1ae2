"""Each script in examples/ runs to completion (< 2 min on 2 cores) and produces what it says."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
