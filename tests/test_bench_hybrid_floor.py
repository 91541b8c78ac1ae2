"""The hybrid-floor benchmark: its error measure, its resumable runs and its design reader."""

import numpy as np
import pytest


def test_hybrid_error_is_the_error_of_the_response(load_benchmark):
    """COLA boosts off from EE2 by any factor common to theta and theta_LCDM give the exact
    hybrid; a response 1.5 % off above k = 0.8 shows only when k_max reaches it."""
    bench = load_benchmark("bench_hybrid_floor")
    k = np.linspace(0.05, 1.2, 24)
    rng = np.random.default_rng(3)
    ee2_t, ee2_l = 1.0 + rng.random((9, k.size)), 1.0 + rng.random((9, k.size))
    bias = 0.9 + 0.2 * rng.random((9, k.size))
    np.testing.assert_allclose(bench.hybrid_error(k, ee2_t * bias, ee2_l * bias, ee2_t, ee2_l), 0.0, atol=1e-12)
    off = ee2_t * bias * np.where(k > 0.8, 1.015, 1.0)
    np.testing.assert_allclose(bench.hybrid_error(k, off, ee2_l * bias, ee2_t, ee2_l), 0.015, rtol=1e-12)
    np.testing.assert_allclose(bench.hybrid_error(k, off, ee2_l * bias, ee2_t, ee2_l, k_max=0.5), 0.0, atol=1e-12)


def test_runs_resume_and_lcdm_rows_are_exact(load_benchmark, tmp_path, capsys):
    """Tiny simulations: each cosmology is written once (a rerun skips it), and at w0 = -1 the
    simulation-built hybrid is EE2 itself."""
    bench = load_benchmark("bench_hybrid_floor")
    design = tmp_path / "test.csv"
    design.write_text("id,Omega_m,Omega_b,h,A_s,n_s,w0\n"
                      "a,0.31,0.049,0.67,2.1e-9,0.966,-1.0\n"
                      "b,0.31,0.049,0.67,2.1e-9,0.966,-0.8\n")
    out = tmp_path / "out"
    bench.main([str(design), str(out), "--setup", "16,160,32,3"])
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    assert sorted(first) == ["a.npz", "b.npz"]
    with np.load(out / "a.npz") as f:
        np.testing.assert_array_equal(f["boost"], f["boost_lcdm"])
        assert '"steps": 3' in str(f["setup"]) and float(f["wall_s"]) > 0
    bench.main([str(design), str(out), "--setup", "16,160,32,3"])
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == first
    summary = bench.report(bench.read_design(design), out, versus_hmcode=True)
    assert summary["n"] == 2 and 0.5 <= summary["within_1pct"] <= 1.0
    assert summary["versus_hmcode"]["n"] == 2 and summary["versus_hmcode"]["within_1pct"] >= 0.5
    assert "2 cosmologies" in capsys.readouterr().out


def test_design_reader_and_shard_errors(load_benchmark, tmp_path):
    bench = load_benchmark("bench_hybrid_floor")
    bad = tmp_path / "bad.csv"
    bad.write_text("Omega_m,w0\n0.3,-1\n")
    with pytest.raises(ValueError, match="needs an 'id' column"):
        bench.read_design(bad)
    good = tmp_path / "good.csv"
    good.write_text("id,Omega_m,w0\nx,0.3,-1\n")
    with pytest.raises(SystemExit):
        bench.main([str(good), str(tmp_path / "o"), "--shard", "2/2"])


def test_hmcode_yardstick(load_benchmark, capsys):
    """HMcode-2020's response in the hybrid: EE2 itself at w0 = -1; at w0 = -0.8 the two codes'
    independent w0 responses differ by 0.86 % (k <= 1, z <= 2; CAMB 2.0, euclidemu2 1.4)."""
    bench = load_benchmark("bench_hybrid_floor")
    design = [{"id": "a", "Omega_m": 0.31, "Omega_b": 0.049, "h": 0.67, "A_s": 2.1e-9, "n_s": 0.966, "w0": w0}
              for w0 in (-1.0, -0.8)]
    summary = bench.yardstick(design, k=np.linspace(0.05, 1.0, 12))
    lcdm, wcdm = summary["worst"]
    assert lcdm < 1e-10
    assert 0.5 < wcdm < 1.5
    assert "2 cosmologies of the design" in capsys.readouterr().out
