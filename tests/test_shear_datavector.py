"""``cosmopipe datavector`` and the modelvector format; the comparison with Cocoa's
public LSST-Y1 EE2 data vector when the shared data directory holds it."""
import os
from pathlib import Path

import numpy as np
import pytest

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.shear.hankel import theta_edges
from cosmopipe.likelihoods.shear.modelvector import (cosmolike_3x2pt_size, delta_chi2_by_cut, read_modelvector,
                                           write_modelvector)
from cosmopipe.pipeline.cli import main

SHARED_LSST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lsst_y1"
COCOA = Path(__file__).resolve().parent / "data" / "cocoa_lsst_y1"


def test_modelvector_round_trip_and_cosmolike_length(tmp_path):
    v = np.random.default_rng(1).normal(size=780) * 1e-5
    path = write_modelvector(tmp_path / "a.modelvector", v)
    assert path.read_text().splitlines()[1].split()[0] == "1"
    np.testing.assert_allclose(read_modelvector(path, 780), v, rtol=1e-10)
    assert cosmolike_3x2pt_size() == 1560
    full = write_modelvector(tmp_path / "full.modelvector", np.concatenate([v, np.ones(780)]))
    np.testing.assert_allclose(read_modelvector(full, 780, 1560), v, rtol=1e-10)


def test_modelvector_wrong_length_or_order(tmp_path):
    short = write_modelvector(tmp_path / "short.modelvector", np.ones(779))
    with pytest.raises(LikelihoodError, match=r"short.modelvector: expected length 780 \(or 1560.*found 779"):
        read_modelvector(short, 780, 1560)
    rows = np.column_stack([np.arange(780), np.ones(780)])
    rows[[3, 4]] = rows[[4, 3]]
    shuffled = tmp_path / "shuffled.modelvector"
    np.savetxt(shuffled, rows)
    with pytest.raises(LikelihoodError, match="shuffled.modelvector: rows must be numbered.*row 4 has index 4"):
        read_modelvector(shuffled, 780)


def test_delta_chi2_by_cut_counts_points():
    edges = theta_edges()
    cov = np.diag(np.full(780, 4.0))
    out = delta_chi2_by_cut(np.ones(780), np.zeros(780), cov, edges, 15)
    assert out["all"] == (780, pytest.approx(195.0))
    assert out["lmax=3000"][0] == 705   # the l_max = 3000 cut keeps 705 points (Cocoa's M1 mask on xi+-)
    assert out["lmax=3000"][1] == pytest.approx(705 / 4)


def _table_workflow(tmp_path):
    k = np.geomspace(1e-5, 1e3, 200)
    z = np.linspace(0, 4, 9)
    np.savez(tmp_path / "pk.npz", k=k, z=z, pk=np.outer(1 / (1 + z) ** 2, 2e4 * k / (1 + (k / 0.02) ** 2.6)))
    wf = tmp_path / "wf.yaml"
    wf.write_text(f"""name: dv
run_dir: {tmp_path}/out
sample:
  likelihoods:
    lsst_y1_shear:
      preset: cosmolike
      power: {{source: table, path: {tmp_path}/pk.npz}}
      data: {{power: {{source: table, path: {tmp_path}/pk.npz}}}}
""")
    return wf


def test_cli_writes_and_compares(tmp_path, capsys):
    wf = _table_workflow(tmp_path)
    out, cov = tmp_path / "a.modelvector", tmp_path / "a.cov"
    assert main(["datavector", str(wf), "--param", "A_IA=0.5", "--out", str(out), "--cov", str(cov)]) == 0
    assert main(["datavector", str(wf), "--param", "A_IA=0.6", "--out", str(tmp_path / "b.modelvector")]) == 0
    a = read_modelvector(out, 780)
    b = read_modelvector(tmp_path / "b.modelvector", 780)
    capsys.readouterr()
    assert main(["datavector", "--cov", str(cov), "--compare", str(out), str(tmp_path / "b.modelvector")]) == 0
    text = capsys.readouterr().out
    c = np.loadtxt(cov)
    d = a - b
    assert f"{d @ np.linalg.solve(c, d):.4g}" in text.splitlines()[1]
    assert "lmax=3000" in text and "705 points" in text


def test_cli_errors(tmp_path, capsys):
    wf = _table_workflow(tmp_path)
    assert main(["datavector", str(wf), "--param", "Omega_q=0.3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown cosmology parameter 'Omega_q'" in capsys.readouterr().err
    bad = write_modelvector(tmp_path / "bad.modelvector", np.ones(100))
    good = write_modelvector(tmp_path / "good.modelvector", np.ones(780))
    np.save(tmp_path / "c.npy", np.eye(780))
    assert main(["datavector", "--cov", str(tmp_path / "c.npy"), "--compare", str(good), str(bad)]) == 2
    assert "bad.modelvector: expected length 780 (or 1560" in capsys.readouterr().err
    assert main(["datavector", "--compare", str(good), str(good)]) == 2


def _cocoa_ee2_vector() -> Path | None:
    """Cocoa's EE2 fiducial xi+- vector (cocoa_lsst_y1, branch cola, data/EE2_FIDUCIAL_NO_NOISE.modelvector,
    MIT licence): $COSMOPIPE_COCOA_EE2_VECTOR, else the copy committed as test data
    (tests/data/cocoa_lsst_y1/, with its source, sha256 and licence)."""
    env = os.environ.get("COSMOPIPE_COCOA_EE2_VECTOR")
    for path in ([Path(env)] if env else []) + [COCOA / "EE2_FIDUCIAL_NO_NOISE.modelvector"]:
        if path.is_file():
            return path
    return None


def test_cosmolike_preset_matches_cocoa_ee2_vector():
    """workflows/lsst_y1_cosmolike.yaml (preset cosmolike, the parameter values of Cocoa's
    CREATE_EE2_FIDUCIAL_DATA_VECTOR.yaml) reproduces Cocoa's EE2 fiducial vector: Delta chi^2 < 0.05
    over all 780 points and each scale cut (0.006 measured, docs/lsst_y1_conventions.md)."""
    path = _cocoa_ee2_vector()
    if path is None:
        pytest.skip(f"Cocoa's EE2 data vector not present (set COSMOPIPE_COCOA_EE2_VECTOR; the committed copy is {COCOA})")
    if not (SHARED_LSST / "source_LSSTY1.nz").is_file():
        pytest.skip(f"the shared LSST-Y1 source n(z) is not present ({SHARED_LSST})")
    from cosmopipe.likelihoods.shear import from_config
    from cosmopipe.schema import Section, load_yaml

    wf = Path(__file__).resolve().parents[1] / "workflows" / "lsst_y1_cosmolike.yaml"
    sec = load_yaml(wf)["sample"]["likelihoods"]["lsst_y1_shear"]
    sec["covariance"] = {"terms": ["gaussian"]}   # a vector comparison: the cheap covariance weighs it alike
    lik = from_config(Section(sec, "lsst_y1_shear", str(wf)), {"data_dir": str(SHARED_LSST.parent)})
    ours = lik.model.data_vector({})
    theirs = read_modelvector(path, 780, 1560)
    chi2 = delta_chi2_by_cut(ours, theirs, lik.cov, lik.model.theta_edges, 15)
    print({cut: round(value, 4) for cut, (_, value) in chi2.items()})
    assert all(value < 0.05 for _, value in chi2.values()), chi2
