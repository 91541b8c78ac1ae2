"""The emulator-bias machinery (likelihoods.shear.bias): Delta chi^2 against
hand-computed values, Fisher shifts against the exact answer of a linear
model, chain-based shifts, test cosmologies inside the EE2 box, the scale-cut
masks of the named cuts, the reports, and the workflow section's errors."""
import json

import numpy as np
import pytest

from cosmopipe.likelihoods.base import LikelihoodError
from cosmopipe.likelihoods.sampling import read_chain_samples
from cosmopipe.likelihoods.shear import bias
from cosmopipe.likelihoods.shear.hankel import theta_edges
from cosmopipe.sims.dataset import SimDataset, write_dataset
from cosmopipe.schema import ConfigError, Section
from cosmopipe.sims.cosmology import Cosmology


def test_delta_chi2_vanishes_when_emulator_equals_reference():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + 6 * np.eye(6)
    d = rng.normal(size=(3, 6))
    masks = [np.ones(6, bool), np.array([1, 1, 0, 0, 1, 0], bool)]
    np.testing.assert_array_equal(bias.delta_chi2(d, d, cov, masks), np.zeros((2, 3)))


def test_delta_chi2_hand_computed_offsets():
    # Diagonal covariance: sum of (offset / sigma)^2 over the kept points.
    sigma = np.array([1.0, 2.0, 0.5, 4.0])
    offset = np.array([0.5, 1.0, 0.25, 8.0])
    masks = [np.ones(4, bool), np.array([1, 1, 1, 0], bool)]
    got = bias.delta_chi2(offset, np.zeros(4), np.diag(sigma**2), masks)
    np.testing.assert_allclose(got, [0.25 + 0.25 + 0.25 + 4.0, 0.75], rtol=1e-12)
    # 2x2 with correlation rho: chi^2 = (x^2 - 2 rho x y + y^2) / (1 - rho^2) for unit variances.
    rho, x, y = 0.6, 1.0, -0.5
    got = bias.delta_chi2(np.array([x, y]), np.zeros(2), np.array([[1, rho], [rho, 1]]), [np.ones(2, bool)])
    assert got[0] == pytest.approx((x * x - 2 * rho * x * y + y * y) / (1 - rho**2), rel=1e-12)


def test_delta_chi2_bad_input():
    cov = np.eye(3)
    with pytest.raises(LikelihoodError, match="do not match"):
        bias.delta_chi2(np.zeros(4), np.zeros(4), cov, [np.ones(4, bool)])
    with pytest.raises(LikelihoodError, match="non-finite"):
        bias.delta_chi2(np.array([0, np.nan, 0]), np.zeros(3), cov, [np.ones(3, bool)])
    with pytest.raises(LikelihoodError, match="positive definite"):
        bias.delta_chi2(np.ones(3), np.zeros(3), np.diag([1.0, -1.0, 1.0]), [np.ones(3, bool)])
    with pytest.raises(LikelihoodError, match="non-empty"):
        bias.delta_chi2(np.ones(3), np.zeros(3), cov, [np.zeros(3, bool)])


def test_fisher_shift_of_a_linear_model_is_exact():
    # d(p) = A p: the Gaussian posterior is exact, so a data offset A delta shifts the
    # best fit by exactly delta, and sigma = sqrt(diag((A^T C^-1 A + priors)^-1)).
    rng = np.random.default_rng(3)
    n, names = 12, ("a", "b", "c")
    A = rng.normal(size=(n, 3))
    cov = np.diag(rng.uniform(0.5, 2.0, n))
    delta = np.array([0.1, -0.2, 0.05])

    def vector_of(p):
        return A @ np.array([p[k] for k in names])

    fid = {"a": 1.0, "b": 2.0, "c": -1.0}
    cuts = bias.scale_cuts(np.geomspace(1, 10, 7), 1, [None])   # 2 x 6 = 12 points, all kept
    [res] = bias.fisher_shifts(vector_of, fid, {k: 0.01 for k in names}, A @ delta, cov, cuts)
    np.testing.assert_allclose(res.shift, delta, rtol=1e-8)
    f_inv = np.linalg.inv(A.T @ np.linalg.inv(cov) @ A)
    np.testing.assert_allclose(res.sigma, np.sqrt(np.diag(f_inv)), rtol=1e-8)
    # A Gaussian prior on c pulls its shift towards zero.
    [tight] = bias.fisher_shifts(vector_of, fid, {k: 0.01 for k in names}, A @ delta, cov, cuts,
                                 prior_sigma={"c": 1e-4})
    assert abs(tight.shift[2]) < 1e-3 * abs(delta[2]) and tight.sigma[2] < 1e-4


def test_fisher_shift_errors():
    cuts = bias.scale_cuts(np.geomspace(1, 10, 3), 1, [None])
    with pytest.raises(LikelihoodError, match="no fiducial value for b"):
        bias.fisher_shifts(lambda p: np.zeros(4), {"a": 1.0}, {"a": 0.1, "b": 0.1}, np.zeros(4), np.eye(4), cuts)
    with pytest.raises(LikelihoodError, match="singular"):
        bias.fisher_shifts(lambda p: np.zeros(4), {"a": 1.0}, {"a": 0.1}, np.zeros(4), np.eye(4), cuts)


def test_posterior_shifts_from_summaries(tmp_path):
    for name, mean in (("emu", 0.33), ("ref", 0.32)):
        (tmp_path / name).mkdir()
        params = {"Omega_m": {"mean": mean, "std": 0.02}, "w0": {"mean": -1.0, "std": 0.2}}
        (tmp_path / name / "summary.json").write_text(json.dumps({"params": params}))
    shifts = bias.posterior_shifts(tmp_path / "emu", tmp_path / "ref")
    assert shifts["Omega_m"] == pytest.approx(0.5) and shifts["w0"] == 0.0
    with pytest.raises(LikelihoodError, match="no sample summary"):
        bias.posterior_shifts(tmp_path / "emu", tmp_path / "missing")


def test_importance_shifts_of_a_known_reweighting(tmp_path):
    """Samples of N(0, 1) (exact quantiles) reweighted to N(0.1, 1): the reference mean is
    0.1, so the shift (mean_emu - mean_ref) / std_ref is -0.1; the effective sample size of
    weights exp(0.1 x) is n exp(-0.01) for a unit normal."""
    from scipy import stats

    n = 20000
    x = stats.norm.ppf((np.arange(n) + 0.5) / n)
    samples = np.column_stack([x, 2.0 * x])             # a second, scaled copy: same shift in sigma
    shifts, ess = bias.importance_shifts(samples, -0.5 * x**2, -0.5 * (x - 0.1) ** 2, ["a", "b"])
    assert shifts["a"] == pytest.approx(-0.1, abs=1e-3) and shifts["b"] == pytest.approx(-0.1, abs=1e-3)
    assert ess == pytest.approx(n * np.exp(-0.01), rel=1e-3)
    with pytest.raises(LikelihoodError, match="finite ln L"):
        bias.importance_shifts(samples, -0.5 * x**2, np.full(n, np.nan), ["a", "b"])
    with pytest.raises(LikelihoodError, match="no sample summary"):
        read_chain_samples(tmp_path)


def _dataset(rows):
    names = Cosmology.names()
    params = np.array([[{**Cosmology().to_dict(), **r}[n] for n in names] for r in rows])
    z, k = np.array([1.0, 0.0]), np.array([0.1, 0.2])
    ones = np.ones((len(rows), 2, 2))
    return SimDataset(names=names, params=params, varied=("Omega_m", "w0"), lower=np.array([0.2, -1.4]),
                      upper=np.array([0.45, -0.6]), z=z, k=k, boost=ones, pk=ones, pk_lin=ones,
                      nmodes=np.ones(2, dtype=np.int64), sim_ids=tuple(f"test-{i:04d}" for i in range(len(rows))),
                      timings=np.zeros(len(rows)), attrs={"design": "test"})


def test_test_cosmologies_inside_the_ee2_box(tmp_path):
    rows = [{"Omega_m": 0.30, "w0": -0.9}, {"Omega_m": 0.43, "w0": -1.0}, {"Omega_m": 0.35, "w0": -1.35},
            {"Omega_m": 0.25, "w0": -1.2}]
    path = write_dataset(tmp_path / "test.h5", _dataset(rows))
    ids, cosmos, dropped = bias.read_test_cosmologies(path)
    assert ids == ["test-0000", "test-0003"] and dropped == ["test-0001", "test-0002"]
    assert cosmos[1] == Cosmology(Omega_m=0.25, w0=-1.2)
    ids, _, _ = bias.read_test_cosmologies(path, limit=1)
    assert ids == ["test-0000"]


def test_named_scale_cuts_keep_the_documented_bins():
    # Documented in likelihoods.shear.scalecuts: (xi+, xi-) bins kept per pair with 26 bins.
    expected = {3000: (26, 21), 1500: (23, 17), 750: (19, 14), 375: (16, 11), 187.5: (13, 8)}
    cuts = bias.scale_cuts(theta_edges(2.5, 900.0, 26), 15, list(expected))
    for cut, (plus, minus) in zip(cuts, expected.values()):
        assert cut.n_points == 15 * (plus + minus)
        assert cut.mask[:15 * 26].sum() == 15 * plus


def test_reports(tmp_path):
    cuts = bias.scale_cuts(theta_edges(2.5, 900.0, 26), 15, [3000, 375])
    dchi2 = np.array([np.linspace(0.05, 1.95, 20), np.linspace(0.01, 0.2, 20)])
    table = bias.chi2_table(cuts, dchi2)
    rows = table.strip().splitlines()
    assert len(rows) == 4 and rows[2].startswith("| lmax3000 | 3000 | 705 |")
    # 1.05, 1.15, ..., 1.95: 10 of the 20 values exceed 1; percentiles by linear interpolation at
    # positions 19 q: median 1.0, 68th 0.05 + 1.292, 95th 0.05 + 1.805
    assert rows[2].endswith("| 1 | 1.34 | 1.85 | 1.95 | 0.50 |"), rows[2]
    assert rows[3].endswith("| 0.2 | 0.00 |")
    shift = bias.FisherShift("lmax3000", ("Omega_m", "w0"), np.array([0.01, -0.1]), np.array([0.02, 0.2]))
    assert "| lmax3000 | +0.500 | -0.500 |" in bias.shift_table([shift])
    png = bias.plot_delta_chi2(cuts, dchi2, tmp_path / "d.png")
    assert png.stat().st_size > 1000


def test_workflow_section_errors(tmp_path):
    from cosmopipe.pipeline.stages.emulator_bias import parse_bias

    base = {"emulator": "e.h5", "test": "t.h5"}
    s = parse_bias(Section(dict(base), "emulator_bias", "w.yaml"), {})
    assert s.scale_cuts == (3000.0, 1500.0, 750.0, 375.0, 187.5) and s.method == "fisher" and len(s.steps) == 18
    cases = [({"scale_cuts": [3000, -1]}, "emulator_bias.scale_cuts[1]"),
             ({"shear": {"power": {"source": "ee2"}}}, "emulator_bias.shear.power"),
             ({"shifts": {"steps": {"Omega_k": 0.1}}}, "emulator_bias.shifts.steps.Omega_k"),
             ({"shifts": {"method": "chains"}}, "emulator_bias.shifts.chains"),
             ({"shifts": {"method": "importance"}}, "emulator_bias.shifts.chains"),
             ({"shifts": {"scale_cut": -5}}, "emulator_bias.shifts.scale_cut"),
             ({"reference": "camb"}, "emulator_bias.reference"),
             ({"colour": 1}, "emulator_bias.colour")]
    for extra, where in cases:
        with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
            parse_bias(Section({**base, **extra}, "emulator_bias", "w.yaml"), {})


@pytest.mark.slow
def test_bias_stage_end_to_end(tmp_path):
    """A tiny hybrid emulator (EE2-trained COLA stand-in over Omega_m, A_s, w0 with a
    CAMB-trained linear emulator) against EE2 on 3 test cosmologies: outputs written,
    Delta chi^2 finite and shrinking with the scale cut (a sub-vector's chi^2 never exceeds
    the full one's), Fisher shifts finite.  About a minute on one core."""
    import yaml

    from cosmopipe import emulators
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.ee2 import EE2_BOX
    from cosmopipe.emulators.hybrid import make_hybrid
    from cosmopipe.emulators.linear import camb_linear_dataset, latin_hypercube, train_linear
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.params import ParameterSpace
    from cosmopipe.emulators.synthetic import ee2_dataset
    from cosmopipe.emulators.training import FitSettings
    from cosmopipe.pipeline.workflow import load_workflow, run_workflow

    varied = ("Omega_m", "A_s", "w0")
    box = {n: EE2_BOX[n] for n in varied}
    z = [0.0, 0.5, 1.0, 2.0, 3.0]
    fixed = {"Omega_b": 0.049, "h": 0.67, "n_s": 0.96, "wa": 0.0, "m_nu": 0.058}
    space = ParameterSpace(("Omega_m", "A_s"), [box["Omega_m"][0], box["A_s"][0]],
                           [box["Omega_m"][1], box["A_s"][1]], {**fixed, "w0": -1.0})
    lin_data = camb_linear_dataset(latin_hypercube(8, space, seed=1), z, np.geomspace(1e-4, 10.0, 161))
    lin = train_linear(lin_data, space, FitSettings(network=TrainConfig(hidden=(16,), epochs=1500),
                                                    validation_fraction=0.0))
    # the linear emulator must accept w0: give it the boost's parameters
    lin = dataclasses_replace_space(lin, varied, box, fixed)
    boost = train_boost(ee2_dataset(30, z, np.geomspace(0.02, 1.0, 25), box, fixed=fixed, seed=1),
                        FitSettings(network=TrainConfig(hidden=(16, 16), epochs=1500), validation_fraction=0.0),
                        linear=lin)
    emu_path = make_hybrid(boost).save(tmp_path / "hybrid.h5")
    assert emulators.load(emu_path).kind == "hybrid"
    write_dataset(tmp_path / "test.h5", ee2_dataset(3, z, np.geomspace(0.02, 1.0, 5), box, fixed=fixed, seed=2))
    wf = {"name": "bias", "run_dir": str(tmp_path / "run"), "cluster": "local",
          "emulator_bias": {"emulator": str(emu_path), "test": str(tmp_path / "test.h5"),
                            "methods": ["emulator", "ee2_lcdm", "hmcode_hybrid"],
                            "scale_cuts": [3000, 750, 187.5],
                            "shifts": {"steps": {"Omega_m": 0.005, "w0": 0.03, "A_IA": 0.1},
                                       "fiducials": {"reference": {}, "w0 = -0.8": {"w0": -0.8}}}}}
    (tmp_path / "bias.yaml").write_text(yaml.safe_dump(wf))
    run_workflow(load_workflow(tmp_path / "bias.yaml"), progress=False)
    out = tmp_path / "run" / "emulator_bias"
    import h5py

    with h5py.File(out / "delta_chi2.h5", "r") as f:
        assert "code_version" in f.attrs and "settings" in f.attrs
        tables = {m: f[m]["delta_chi2"][()] for m in ("emulator", "ee2_lcdm", "hmcode_hybrid")}
    for dchi2 in tables.values():
        assert dchi2.shape == (3, 3) and np.all(np.isfinite(dchi2)) and np.all(dchi2 >= 0)
        assert np.all(np.diff(dchi2, axis=0) <= 1e-9 * dchi2[:-1])
    shifts = json.loads((out / "shifts.json").read_text())["fiducials"]
    assert list(shifts) == ["reference", "w0 = -0.8"]
    for fid in shifts.values():
        assert set(fid["models"]) == {"emulator", "ee2_lcdm", "hmcode_hybrid"}
        assert all(len(rows) == 3 and all(np.isfinite(list(r["in_sigma"].values())).all() for r in rows)
                   for rows in fid["models"].values())
    # at the LCDM fiducial both LCDM-anchored shortcuts are EE2 itself: no shift at all
    for m in ("ee2_lcdm", "hmcode_hybrid"):
        assert all(abs(v) < 1e-6 for r in shifts["reference"]["models"][m] for v in r["in_sigma"].values())
    md = (out / "emulator_bias.md").read_text()
    assert (out / "delta_chi2.png").is_file() and (out / "shifts.png").is_file() and "| lmax750 |" in md
    assert "HMcode hybrid" in md and "### w0 = -0.8" in md
    # --resume reuses every CAMB-based vector (test and Fisher): identical tables, no CAMB run
    import camb

    from cosmopipe.likelihoods.theory import matter_power

    calls = []
    real = camb.get_results
    matter_power._CAMB_CACHE.clear()
    try:
        camb.get_results = lambda *a, **k: calls.append(a) or real(*a, **k)
        run_workflow(load_workflow(tmp_path / "bias.yaml"), progress=False, resume=True)
    finally:
        camb.get_results = real
    with h5py.File(out / "delta_chi2.h5", "r") as f:
        for m, table in tables.items():
            np.testing.assert_array_equal(f[m]["delta_chi2"][()], table)
    assert json.loads((out / "shifts.json").read_text())["fiducials"] == shifts
    assert len(calls) <= 1   # at most the mock's own fiducial spectrum


def dataclasses_replace_space(lin, varied, box, fixed):
    """The linear emulator with the boost's parameter space (w0 enters the linear power
    only through the growth, which this tiny test ignores: the emulator then holds the
    w0 = -1 spectrum, fine for exercising the machinery)."""
    import dataclasses

    from cosmopipe.emulators.params import ParameterSpace

    space = ParameterSpace(tuple(varied), [box[n][0] for n in varied], [box[n][1] for n in varied], fixed)
    return dataclasses.replace(lin, space=space)


def test_vector_caches_are_keyed_on_the_code_through_the_mock():
    """The cached CAMB-based vectors are reused by --resume only while the reference's
    mock at its fiducial is the same to the bit: a code change that moves the data
    vectors (a convention, the power source) invalidates them instead of mixing old
    vectors with new ones."""
    from types import SimpleNamespace

    from cosmopipe.pipeline.stages.emulator_bias import _vector_settings

    settings = SimpleNamespace(shear={"survey": {"nbins": 5}, "covariance": {"terms": ["gaussian"]}})
    d = np.linspace(1e-6, 1e-4, 20)
    same = _vector_settings(settings, SimpleNamespace(data=d.copy()))
    assert same == _vector_settings(settings, SimpleNamespace(data=d))
    assert "covariance" not in same and same["survey"] == {"nbins": 5}
    moved = d.copy()
    moved[7] *= 1 + 1e-12
    assert _vector_settings(settings, SimpleNamespace(data=moved)) != same
