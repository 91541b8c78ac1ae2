"""The sampler: priors, convergence diagnostics, the sample stage end to end on a known
Gaussian, GetDist output, killed-and-resumed chains, Dask vs in-process evaluation.

References are analytic: the 3-D correlated Gaussian of test_sampling_support (posterior
mean and covariance known), scipy.stats densities for the priors, an AR(1) process
(tau = (1 + phi) / (1 - phi)) for the autocorrelation estimator.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from scipy import stats

import test_sampling_support as support
from cosmopipe.likelihoods.priors import Prior, PriorSet, parse_prior, prior_from_default
from cosmopipe.likelihoods.sampling import (Convergence, autocorr_times, check_convergence, pooled_tau, choose_parallel, dask_tasks,
                                  gelman_rubin, read_chain)
from cosmopipe.pipeline.stages.posterior import parse, run
from cosmopipe.schema import ConfigError, Section
from cosmopipe.pipeline.workflow import RunContext, Workflow

TESTS = Path(__file__).parent


# -- helpers ---------------------------------------------------------------------------
def _settings(sample: dict, run_dir: Path, name: str = "g3"):
    info = {"name": name, "run_dir": run_dir, "source": "test.yaml", "data_dir": None}
    return parse(Section(sample, "sample", "test.yaml"), info)


def _ctx(run_dir: Path, resume: bool = False, client=None) -> RunContext:
    wf = Workflow(source="test.yaml", name="g3", run_dir=run_dir, data_dir=None, cluster=None, stages={})
    ctx = RunContext(wf, progress=False, resume=resume)
    if client is not None:
        ctx.client = lambda: client
    return ctx


def _sample_section(**sampler) -> dict:
    base = {"walkers": 16, "chains": 2, "seed": 5, "max_steps": 4000, "check_every": 100, "parallel": "vectorize"}
    base.update(sampler)
    return {"likelihoods": {"gauss3": {}},
            "params": {"x2": {"prior": {"min": -5.0, "max": 3.0}, "ref": -0.8, "proposal": 0.05, "latex": "x_2"},
                       "xsum": {"derived": True, "latex": "x_1+x_2+x_3"}},
            "sampler": base}


@pytest.fixture(autouse=True)
def _gauss3(monkeypatch):
    support.register(monkeypatch)


# -- priors ----------------------------------------------------------------------------------
def test_log_prior_matches_scipy_densities():
    flat = Prior("flat", 0.24, 0.40)
    gauss = Prior("gaussian", mean=0.0, sigma=0.002)
    trunc = Prior("gaussian", lower=0.0, upper=5.0, mean=0.5, sigma=0.3)
    ps = PriorSet(["Omega_m", "dz_1", "A_IA"], [flat, gauss, trunc])
    rng = np.random.default_rng(0)
    theta = np.stack([rng.uniform(0.2, 0.44, (4, 5)), rng.normal(0, 0.003, (4, 5)), rng.uniform(-0.2, 1.5, (4, 5))],
                     axis=-1)
    expected = (stats.uniform(0.24, 0.16).logpdf(theta[..., 0])
                + stats.norm(0.0, 0.002).logpdf(theta[..., 1])
                + stats.truncnorm((0 - 0.5) / 0.3, (5 - 0.5) / 0.3, loc=0.5, scale=0.3).logpdf(theta[..., 2]))
    got = ps.log_prior(theta)
    assert got.shape == (4, 5)
    inside = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), inside) and inside.any() and (~inside).any()
    np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-12, atol=1e-12)
    # Draws follow the prior: moments of the truncated Gaussian and the flat range.
    draws = ps.draw(rng, 40000)
    assert np.all(draws >= ps.lower) and np.all(draws <= ps.upper)
    ref = stats.truncnorm((0 - 0.5) / 0.3, (5 - 0.5) / 0.3, loc=0.5, scale=0.3)
    assert abs(draws[:, 2].mean() - ref.mean()) < 5 * ref.std() / math.sqrt(40000)
    assert abs(draws[:, 0].std() - 0.16 / math.sqrt(12)) < 0.02 * 0.16 / math.sqrt(12)


@pytest.mark.parametrize("data, key, text", [
    ({"min": 0.4, "max": 0.24}, "p.max", "must be above min"),
    ({"min": 0.1}, "p.max", "is required for a flat prior"),
    ({"dist": "gaussian", "mean": 0, "sigma": -1}, "p.sigma", "positive"),
    ({"dist": "gaussian", "mean": 0, "sigma": 1, "mu": 2}, "p.mu", "unknown key"),
    ({"dist": "cauchy", "min": 0, "max": 1}, "p.dist", "flat, gaussian"),
    ({"min": 0, "max": 1, "sigma": 1}, "p.sigma", "only a Gaussian prior"),
])
def test_prior_config_errors_name_the_key(data, key, text):
    with pytest.raises(ConfigError) as exc:
        parse_prior(Section(data, "p", "x.yaml"))
    assert exc.value.key == key and text in str(exc.value)


def test_likelihood_default_prior_formats():
    prior, extras = prior_from_default({"prior": "gaussian", "mean": 1, "sigma": 0.0025, "latex": "A"}, "planck")
    assert (prior.dist, prior.mean, prior.sigma, extras["latex"]) == ("gaussian", 1.0, 0.0025, "A")
    prior, _ = prior_from_default({"prior": {"min": -5, "max": 5}, "ref": 0.5}, "shear")
    assert (prior.dist, prior.lower, prior.upper) == ("flat", -5.0, 5.0)


# -- diagnostics ---------------------------------------------------------------------------
def test_autocorr_time_of_ar1_process():
    """AR(1) x_t = phi x_{t-1} + e_t has integrated autocorrelation time (1 + phi) / (1 - phi)."""
    rng = np.random.default_rng(1)
    phi, n, walkers = 0.9, 20000, 8
    x = np.zeros((n, walkers, 1))
    e = rng.standard_normal((n, walkers))
    for t in range(1, n):
        x[t, :, 0] = phi * x[t - 1, :, 0] + e[t]
    tau = autocorr_times(x)[0]
    assert abs(tau / ((1 + phi) / (1 - phi)) - 1) < 0.1


def test_gelman_rubin_against_analytic_values():
    rng = np.random.default_rng(2)
    same = [rng.standard_normal((200000, 2)) for _ in range(3)]
    r_multi, r_params = gelman_rubin(same)
    assert r_multi < 1e-4 and np.all(r_params < 1e-4)
    # Two unit-variance chains with means -d and +d: R-1 = var(means) / W = 2 d^2.
    d = 0.1
    shifted = [rng.standard_normal((400000, 1)) - d, rng.standard_normal((400000, 1)) + d]
    r_multi, r_params = gelman_rubin([s - s.mean(0) + m for s, m in zip(shifted, (-d, d))])
    assert abs(r_multi / (2 * d * d) - 1) < 0.01 and abs(r_params[0] / (2 * d * d) - 1) < 0.01


def test_pooled_tau_matches_the_ar1_value_and_is_steadier_than_the_per_chain_maximum():
    # AR(1) with phi = 0.8 has integrated autocorrelation time (1 + phi) / (1 - phi) = 9 steps.
    # The windowed estimator with per-walker means is low by about (2 M + 1) / n with M = 5 tau
    # (1.5 % for 6000 steps); the mean of 20 estimates scatters by < 1 %.
    from scipy.signal import lfilter

    rng = np.random.default_rng(11)
    phi, steps, walkers = 0.8, 6000, 10
    taus_pooled, taus_max = [], []
    for _ in range(20):
        e = rng.standard_normal((steps, 4 * walkers, 1))
        e[0] /= np.sqrt(1 - phi**2)                              # start in the stationary state
        x = lfilter([1.0], [1.0, -phi], e, axis=0)
        chains = [x[:, i * walkers:(i + 1) * walkers] for i in range(4)]
        taus_pooled.append(pooled_tau(chains)[0])
        taus_max.append(np.max([autocorr_times(c)[0] for c in chains]))
    assert abs(np.mean(taus_pooled) / (9.0 * (1 - 91 / steps)) - 1) < 0.02
    assert np.mean(taus_max) > np.mean(taus_pooled)          # the maximum of four estimates is biased high
    # One chain scatters by s, the pooled estimate by about s / 2, the maximum of four by about 0.7 s.
    assert np.std(taus_pooled) < 0.85 * np.std(taus_max)


def test_convergence_tests_report_which_failed():
    rng = np.random.default_rng(3)
    chains = [rng.standard_normal((400, 8, 2)) for _ in range(2)]      # independent draws: tau ~ 1
    conv = Convergence(tau_factor=50, tau_rtol=0.5, rminus1=0.01)
    first = check_convergence(chains, conv, None)
    assert first.tau_ok and not first.tau_stable and not first.converged     # no previous tau yet
    second = check_convergence(chains, conv, np.array(first.tau))
    assert second.converged and second.rminus1 < 0.01
    short = check_convergence([c[:20] for c in chains], conv, np.array(first.tau))
    assert not short.tau_ok and not short.converged
    apart = check_convergence([chains[0], chains[1] + 1.0], conv, np.array(first.tau))
    assert apart.tau_ok and not apart.rminus1_ok and not apart.converged


def test_choose_parallel_follows_the_cost():
    assert choose_parallel(3e-5, 19, None)[0] == "vectorize"          # cheap: no cluster started
    assert choose_parallel(5e-3, 19, None)[0] == "dask"               # worth starting one
    assert choose_parallel(5e-3, 19, 1)[0] == "vectorize"             # one thread gains nothing
    assert choose_parallel(2.0, 4, 2)[0] == "dask"
    assert dask_tasks(19, 64, 2.0) == 19 and dask_tasks(19, 2, None) == 2 and dask_tasks(3, 8, None) == 3


# -- the stage on a known Gaussian ----------------------------------------------------------
@pytest.fixture(scope="module")
def converged_run(tmp_path_factory):
    """One run of the stage to convergence: chains of 30 tau, tau stable to 5%, R-1 < 0.01
    (looser than the defaults of 50 tau and 1% to keep the test short; the Monte Carlo
    errors the checks use come from the measured tau either way)."""
    mp = pytest.MonkeyPatch()
    support.register(mp)
    run_dir = tmp_path_factory.mktemp("converged")
    sample = _sample_section()
    sample["sampler"]["convergence"] = {"tau_factor": 30, "tau_rtol": 0.05, "rminus1": 0.01}
    settings = _settings(sample, run_dir)
    t0 = time.perf_counter()
    run(settings, _ctx(run_dir))
    wall = time.perf_counter() - t0
    mp.undo()
    return run_dir, settings, wall


def test_gaussian_posterior_recovered(converged_run):
    run_dir, settings, wall = converged_run
    summary = json.loads((run_dir / "chains" / "summary.json").read_text())
    assert summary["status"] == "converged" and "convergence tests passed" in summary["stopped_because"]
    assert summary["tests"]["tau_long_enough"] and summary["tests"]["tau_stable"]
    assert summary["tests"]["rminus1"] < 0.01
    names = list(summary["tau"])
    assert names == ["x2", "x1", "x3"]                 # x1, x3 from the likelihood's default priors
    order = [1, 0, 2]
    burn, thin = summary["burn_in_steps"], summary["thin"]
    samples = np.concatenate([read_chain(run_dir / "chains" / f"chain_{i}.h5", burn)[0] for i in (1, 2)])
    mean, cov = support.MEAN[order], support.COV[np.ix_(order, order)]
    # Monte Carlo errors: N / tau effective samples.
    tau = np.array([summary["tau"][n] for n in names])
    n_eff = samples.shape[0] / tau
    err_mean = np.sqrt(np.diag(cov) / n_eff)
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * err_mean), (samples.mean(0), mean, err_mean)
    sd = np.sqrt(np.diag(cov))
    got_sd = samples.std(0, ddof=1)
    assert np.all(np.abs(got_sd / sd - 1) < 4 / np.sqrt(2 * n_eff)), (got_sd, sd)
    corr = np.corrcoef(samples, rowvar=False)
    want = cov / np.outer(sd, sd)
    assert np.all(np.abs(corr - want) < 4 * (1 - want**2) / np.sqrt(n_eff.min()) + 1e-12)
    print(f"converged Gaussian run: {summary['steps_per_chain']} steps x 2 chains, {wall:.1f} s")


def test_chain_samples_for_importance_reweighting(converged_run):
    """cosmopipe.likelihoods.sampling.read_chain_samples: burn-in and thinning from the summary, the
    sampled parameters in order, evenly subsampled on request."""
    from cosmopipe.likelihoods.sampling import read_chain_samples

    run_dir, _, _ = converged_run
    summary = json.loads((run_dir / "chains" / "summary.json").read_text())
    names, samples = read_chain_samples(run_dir / "chains")
    assert names == ["x2", "x1", "x3"] and samples.shape == (summary["samples"], 3)
    names, few = read_chain_samples(run_dir / "chains", max_samples=50)
    assert few.shape == (50, 3) and np.array_equal(few[0], samples[0]) and np.array_equal(few[-1], samples[-1])


def test_getdist_files_readable(converged_run):
    from getdist import loadMCSamples

    run_dir, settings, _ = converged_run
    root = run_dir / "chains" / "g3"
    names = (root.parent / "g3.paramnames").read_text().split("\n")
    assert names[:4] == ["x2\tx_2", "x1\tx_1", "x3\tx_3", "xsum*\tx_1+x_2+x_3"]
    ranges = dict(line.split(" ", 1) for line in (root.parent / "g3.ranges").read_text().strip().split("\n"))
    assert ranges["x2"] == "-5.0 3.0"
    samples = loadMCSamples(str(root), settings={"ignore_rows": 0})
    table = np.concatenate([np.loadtxt(root.parent / f"g3_{i}.txt") for i in (1, 2)])
    assert samples.numrows == table.shape[0]
    x = table[:, 2:5]
    # Derived columns from the blobs agree with the parameters they derive from.
    np.testing.assert_allclose(table[:, 5], x.sum(1), rtol=1e-10, atol=1e-10)
    d = x[:, [1, 0, 2]] - support.MEAN
    chi2 = np.einsum("ni,ij,nj->n", d, np.linalg.inv(support.COV), d)
    np.testing.assert_allclose(table[:, 6], chi2, rtol=1e-8, atol=1e-10)
    # -ln posterior column = chi2/2 - ln prior (flat priors: minus the log volume).
    log_volume = math.log(8.0) + math.log(16 * support.SIGMA[0]) + math.log(16 * support.SIGMA[2])
    np.testing.assert_allclose(table[:, 1], 0.5 * chi2 + log_volume, rtol=1e-10)
    stats_ = samples.getMargeStats()
    assert abs(stats_.parWithName("x1").mean - support.MEAN[0]) < 4 * support.SIGMA[0] / math.sqrt(
        samples.numrows / 20)


def test_budget_stop_and_existing_chains(tmp_path):
    settings = _settings(_sample_section(max_steps=100, check_every=50), tmp_path)
    run(settings, _ctx(tmp_path))
    summary = json.loads((tmp_path / "chains" / "summary.json").read_text())
    assert summary["status"] == "budget" and "budget of 100 steps" in summary["stopped_because"]
    assert "budget" in (tmp_path / "chains" / "summary.md").read_text().splitlines()[0]
    with pytest.raises(ConfigError, match="--resume"):
        run(settings, _ctx(tmp_path))
    # A resumed chain must match the configuration it was made with.
    changed = _sample_section(max_steps=100, check_every=50)
    changed["params"]["x2"]["prior"]["max"] = 2.5
    with pytest.raises(ConfigError, match="different configuration.*priors"):
        run(_settings(changed, tmp_path), _ctx(tmp_path, resume=True))
    # restart: true deletes and starts afresh.
    run(_settings(_sample_section(max_steps=50, check_every=50, restart=True), tmp_path), _ctx(tmp_path))
    assert json.loads((tmp_path / "chains" / "summary.json").read_text())["steps_per_chain"] == 50


def test_differential_evolution_moves(tmp_path):
    """moves: de samples the Gaussian too (mean within 4 standard errors after 600 steps),
    and a chain made with one move set cannot be continued with another."""
    settings = _settings(_sample_section(max_steps=600, check_every=600, moves="de", chains=1), tmp_path)
    run(settings, _ctx(tmp_path))
    samples = read_chain(tmp_path / "chains" / "chain_1.h5", discard=200)[0]
    chain = samples.reshape(400, 16, 3)
    tau = autocorr_times(chain)
    order = [1, 0, 2]                                   # x2 (listed), then x1, x3
    mean, sd = support.MEAN[order], support.SIGMA[order]
    err = sd * np.sqrt(tau / samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - mean) < 4 * err), (samples.mean(axis=0), mean, err)
    stretch = _sample_section(max_steps=700, check_every=700, chains=1)
    with pytest.raises(ConfigError, match="different configuration.*moves"):
        run(_settings(stretch, tmp_path), _ctx(tmp_path, resume=True))


# -- config errors of the stage ----------------------------------------------------------------
def _expect_error(sample: dict, key: str, text: str, tmp_path: Path, at_run: bool = False):
    with pytest.raises(ConfigError) as exc:
        settings = _settings(sample, tmp_path)
        if at_run:
            run(settings, _ctx(tmp_path))
    assert exc.value.key == key, str(exc.value)
    assert text in str(exc.value)


def test_config_errors(tmp_path):
    s = _sample_section()
    s["params"]["Omega_m"] = {"prior": {"min": 0.2, "max": 0.4}}
    _expect_error(s, "sample.params.Omega_m", "no likelihood or theory uses parameter 'Omega_m'", tmp_path, True)
    s = _sample_section()
    s["params"]["x2"]["prior"]["mu"] = 1
    _expect_error(s, "sample.params.x2.prior.mu", "unknown key", tmp_path)
    s = _sample_section()
    s["params"]["x2"]["prior"] = {"min": 3, "max": -5}
    _expect_error(s, "sample.params.x2.prior.max", "must be above min", tmp_path)
    s = _sample_section()
    s["params"]["x2"]["ref"] = 4.0
    _expect_error(s, "sample.params.x2.ref", "outside the prior", tmp_path)
    s = _sample_section()
    s["sampler"]["tau_factor"] = 50
    _expect_error(s, "sample.sampler.tau_factor", "unknown key", tmp_path)
    s = _sample_section(walkers=15)
    _expect_error(s, "sample.sampler.walkers", "must be even", tmp_path)
    s = _sample_section(parallel="mpi")
    _expect_error(s, "sample.sampler.parallel", "auto, vectorize, dask, chains, none", tmp_path)
    s = _sample_section(moves="walk")
    _expect_error(s, "sample.sampler.moves", "must be one of stretch, de", tmp_path)
    s = _sample_section()
    s["likelihoods"] = {"gauss4": {}}
    _expect_error(s, "sample.likelihoods.gauss4", "unknown likelihood", tmp_path)
    s = _sample_section()
    s["likelihoods"]["gauss3"] = {"slep": 1}
    _expect_error(s, "sample.likelihoods.gauss3.slep", "unknown key", tmp_path, True)
    s = _sample_section()
    s["theory"] = {"provider": "emulator"}
    _expect_error(s, "sample.theory.path", "is required", tmp_path)
    s = _sample_section()
    s["theory"] = {"provider": "emulator", "path": str(tmp_path / "none.h5")}
    _expect_error(s, "sample.theory.path", "not found", tmp_path)
    s = _sample_section()
    s["params"]["dz_9"] = {"ref": 0.0}
    _expect_error(s, "sample.params.dz_9", "no likelihood or theory uses", tmp_path, True)


# -- kill and resume ----------------------------------------------------------------------
def _workflow(tmp_path: Path, run_dir: Path, sleep: float, **sampler) -> Path:
    sample = _sample_section(**{"walkers": 8, "max_steps": 120, "check_every": 40, **sampler})
    sample["likelihoods"]["gauss3"] = {"sleep": sleep}
    path = tmp_path / f"wf_{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump({"name": "g3", "run_dir": str(run_dir), "sample": sample}))
    return path


def _cli_background(*args) -> subprocess.Popen:
    """``cosmopipe ARGS`` (with gauss3 registered) in a subprocess."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(TESTS / "test_sampling_support.py"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _steps(path: Path) -> int:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["mcmc"].attrs["iteration"])
    except (OSError, KeyError):
        return 0


def _run_and_kill(wf: Path, chain: Path, steps: int, timeout: float) -> int:
    """Run the sample stage of ``wf`` in a subprocess, SIGKILL it once ``chain`` holds
    ``steps`` steps; returns the steps stored at the kill (checked to be mid-run)."""
    proc = _cli_background("run", str(wf), "--stage", "sample", "--no-progress")
    deadline = time.time() + timeout
    while _steps(chain) < steps and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = _steps(chain)
    assert steps <= before < 120, f"kill came too late or too early: {before} steps ({proc.stderr.read()[-2000:]})"
    return before


def test_killed_chain_resumes_without_losing_steps(tmp_path, capsys):
    """SIGKILL mid-run, then --resume: the stored steps are kept as they were and the
    finished chains equal those of an uninterrupted run with the same seed."""
    from cosmopipe.pipeline.cli import main

    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "reference"
    wf = _workflow(tmp_path, killed_dir, sleep=0.002)
    chain1 = killed_dir / "chains" / "chain_1.h5"
    before = _run_and_kill(wf, chain1, 15, timeout=60)
    kept = read_chain(chain1)

    assert main(["run", str(wf), "--stage", "sample", "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err

    assert main(["run", str(wf), "--stage", "sample", "--no-progress", "--resume"]) == 0
    summary = json.loads((killed_dir / "chains" / "summary.json").read_text())
    assert summary["resumed_from"][0] == before and summary["steps_per_chain"] == 120
    after = read_chain(chain1)
    n = kept[0].shape[0]
    assert after[0].shape[0] == 120 * 8
    for a, b in zip(kept, after):                       # samples, ln posterior, blobs of the stored steps
        np.testing.assert_array_equal(a, b[:n])

    assert main(["run", str(_workflow(tmp_path, ref_dir, sleep=0.0)), "--stage", "sample", "--no-progress"]) == 0
    for i in (1, 2):
        for a, b in zip(read_chain(killed_dir / "chains" / f"chain_{i}.h5"),
                        read_chain(ref_dir / "chains" / f"chain_{i}.h5")):
            np.testing.assert_array_equal(a, b)


def test_killed_chains_mode_run_resumes(tmp_path):
    """parallel: chains: the driver SIGKILLed while its Dask workers write the chains; the
    resumed run (which waits for any worker still finishing a segment) ends with chains
    equal to an uninterrupted in-process run."""
    pytest.importorskip("distributed")
    from cosmopipe.pipeline.cli import main

    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "reference"
    wf = _workflow(tmp_path, killed_dir, sleep=0.002, parallel="chains", check_every=20)
    _run_and_kill(wf, killed_dir / "chains" / "chain_1.h5", 20, timeout=120)
    assert main(["run", str(wf), "--stage", "sample", "--no-progress", "--resume"]) == 0
    summary = json.loads((killed_dir / "chains" / "summary.json").read_text())
    assert summary["steps_per_chain"] == 120 and summary["parallel"] == "chains"
    assert main(["run", str(_workflow(tmp_path, ref_dir, sleep=0.0)), "--stage", "sample", "--no-progress"]) == 0
    for i in (1, 2):
        for a, b in zip(read_chain(killed_dir / "chains" / f"chain_{i}.h5"),
                        read_chain(ref_dir / "chains" / f"chain_{i}.h5")):
            np.testing.assert_array_equal(a, b)


# -- Dask -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, workers, threads, steps, check", [
    ("dask", 1, 2, 30, 30),      # emcee's pool: each half-ensemble mapped over the workers
    ("chains", 2, 1, 60, 20),    # each chain a Dask task between checks, continued from its file
])
def test_dask_modes_give_the_same_chains(tmp_path, mode, workers, threads, steps, check):
    """Evaluated on Dask either way, emcee draws exactly the chains of one in-process run
    (for 'chains' across several checks)."""
    distributed = pytest.importorskip("distributed")
    sample = _sample_section(walkers=8, max_steps=steps, check_every=check, parallel=mode)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                  dashboard_address=None) as cl, distributed.Client(cl) as client:
        run(_settings(sample, tmp_path / mode), _ctx(tmp_path / mode, client=client))
    sample["sampler"]["parallel"] = "vectorize"
    run(_settings(sample, tmp_path / "vec"), _ctx(tmp_path / "vec"))
    assert json.loads((tmp_path / mode / "chains" / "summary.json").read_text())["parallel"] == mode
    for i in (1, 2):
        got = read_chain(tmp_path / mode / "chains" / f"chain_{i}.h5")
        assert got[0].shape == (steps * 8, 3)
        for a, b in zip(got, read_chain(tmp_path / "vec" / "chains" / f"chain_{i}.h5")):
            np.testing.assert_array_equal(a, b)


def test_resume_waits_for_a_chain_still_being_written(tmp_path, caplog):
    """A worker of a killed driver may still be writing a chain (it holds <chain>.lock):
    a resumed run waits for it, and gives up with a clear error after the timeout."""
    import fcntl

    from cosmopipe.likelihoods.sampling import backend as sampling

    (tmp_path / "chains").mkdir()
    path = tmp_path / "chains" / "chain_1.h5"
    holder = open(path.with_suffix(".lock"), "a+")
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    log = logging.getLogger("test.waiting")
    with caplog.at_level(logging.INFO, logger="test.waiting"), \
            pytest.raises(sampling.SamplingError, match="still being written by another process"):
        sampling._wait_for_chain_writers([path], 0.5, log)
    assert "waiting for another process to finish writing" in caplog.text
    holder.close()                                      # the writer finishes: no wait
    t0 = time.perf_counter()
    sampling._wait_for_chain_writers([path], 0.5, log)
    assert time.perf_counter() - t0 < 0.4


def test_dask_without_cluster_is_an_error(tmp_path):
    settings = _settings(_sample_section(parallel="dask", max_steps=10, check_every=10), tmp_path)
    ctx = _ctx(tmp_path)
    ctx.client = None
    with pytest.raises(ConfigError, match="needs a Dask cluster"):
        run(settings, ctx)
    settings = _settings(_sample_section(parallel="chains", max_steps=10, check_every=10), tmp_path / "c")
    ctx = _ctx(tmp_path / "c")
    ctx.client = None
    with pytest.raises(ConfigError, match="needs a Dask cluster"):
        run(settings, ctx)


def test_sampling_error_is_raised_for_nan_likelihood(tmp_path, monkeypatch):
    monkeypatch.setattr(support.GaussLikelihood, "loglike", lambda self, theory, params: float("nan"))
    settings = _settings(_sample_section(max_steps=10, check_every=10), tmp_path)
    with pytest.raises(ConfigError, match="likelihood gauss3 returned ln L = nan at x2="):
        run(settings, _ctx(tmp_path))


# -- theory providers ----------------------------------------------------------------------
def _fake_camb(monkeypatch, calls: list):
    """A stand-in for likelihoods.camb_theory: sigma8 = 0.8 (A / 2)^(1/2) (Omega_m / 0.3)^0.25."""
    import types

    from cosmopipe.likelihoods.base import TheoryResult

    module = types.ModuleType("cosmopipe.likelihoods.theory.camb_theory")

    def camb_theory(params, requirements, settings=None):
        calls.append((dict(params), dict(requirements), settings))
        sigma8 = 0.8 * math.sqrt(params["A"] / 2.0) * (params["Omega_m"] / 0.3) ** 0.25
        return TheoryResult(params=dict(params), sigma8=sigma8 if requirements.get("sigma8") else None)

    def settings_from_section(section):
        boost = section.take("accuracy_boost", float, default=1.0)
        section.finish()
        return {"accuracy_boost": boost}

    module.camb_theory = camb_theory
    module.settings_from_section = settings_from_section
    module.theory_params = lambda settings: ("Omega_m", "A")
    module.merge_requirements = lambda *reqs: {k: v for r in reqs for k, v in r.items()}
    monkeypatch.setitem(sys.modules, "cosmopipe.likelihoods.theory.camb_theory", module)


class _Sigma8Likelihood:
    """ln L = -(sigma8 - 0.8)^2 / (2 * 0.02^2): needs sigma8 from the theory provider."""

    name = "s8like"

    def requirements(self):
        return {"sigma8": True}

    def parameters(self):
        return {}

    def loglike(self, theory, params):
        return -0.5 * ((theory.sigma8 - 0.8) / 0.02) ** 2


def test_camb_provider_with_a_fake_module(tmp_path, monkeypatch):
    from cosmopipe.pipeline.stages.posterior import _build_likelihoods, build_posterior
    from cosmopipe.likelihoods.theory import make_theory

    calls = []
    _fake_camb(monkeypatch, calls)
    monkeypatch.setitem(sys.modules, "fake_s8", type(sys)("fake_s8"))
    sys.modules["fake_s8"].from_config = lambda section, info: _Sigma8Likelihood()
    from cosmopipe.likelihoods import base

    monkeypatch.setitem(base.LIKELIHOODS, "s8like", "fake_s8:from_config")
    sample = {"likelihoods": {"s8like": {}}, "theory": {"provider": "camb", "accuracy_boost": 2.0},
              "params": {"Omega_m": {"prior": {"min": 0.2, "max": 0.4}}, "A": 2.0,
                         "S8": {"derived": True, "latex": "S_8"}}}
    settings = _settings(sample, tmp_path)
    posterior = build_posterior(settings, _build_likelihoods(settings, tmp_path), logging.getLogger("test"))
    lnp, blob = posterior.evaluate([0.33])
    params, requirements, camb_settings = calls[-1]
    # The likelihood's requirement plus the derived S8 the run asks the provider for.
    assert params == {"Omega_m": 0.33, "A": 2.0} and requirements == {"sigma8": True, "S8": True}
    assert camb_settings == {"accuracy_boost": 2.0}
    sigma8 = 0.8 * (0.33 / 0.3) ** 0.25
    # The fake gives no S8: derived from sigma8 by S8 = sigma8 sqrt(Omega_m / 0.3).
    assert blob[1] == pytest.approx(sigma8 * math.sqrt(0.33 / 0.3), rel=1e-12)
    assert lnp == pytest.approx(-0.5 * ((sigma8 - 0.8) / 0.02) ** 2 - math.log(0.2), rel=1e-12)
    # A parameter the fake CAMB does not read; a likelihood needing theory with provider none.
    sample["params"]["tau"] = 0.05
    with pytest.raises(ConfigError, match="no likelihood or theory uses parameter 'tau'"):
        s = _settings(sample, tmp_path)
        build_posterior(s, _build_likelihoods(s, tmp_path), logging.getLogger("test"))
    del sample["params"]["tau"]
    sample["theory"] = {"provider": "none"}
    with pytest.raises(ConfigError, match="s8like need a theory provider"):
        s = _settings(sample, tmp_path)
        build_posterior(s, _build_likelihoods(s, tmp_path), logging.getLogger("test"))
    theory = make_theory(Section({"provider": "none"}, "sample.theory", "x.yaml"))
    assert theory({"a": 1.0}).params == {"a": 1.0} and theory.params() == ()


def test_plot_of_a_stage_run(converged_run, capsys):
    """cosmopipe plot reads the stage's GetDist files; the table holds the known means."""
    from cosmopipe.pipeline.cli import main

    run_dir, _, _ = converged_run
    out = run_dir / "plot" / "tri.png"
    assert main(["plot", str(run_dir), "--out", str(out), "--params", "x1", "x3", "--mark", "x1=0.3"]) == 0
    md = out.with_suffix(".md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| $x_1$"))
    mean, err = (float(v) for v in row.split("|")[2].strip().strip("$").split("\\pm"))
    assert abs(mean - support.MEAN[0]) < 0.2 * support.SIGMA[0] and abs(err / support.SIGMA[0] - 1) < 0.1
    assert out.stat().st_size > 1000


# -- a resumed run decides as an uninterrupted one (issue 16, item 2) -------------------
class _Killed(BaseException):
    """Raised inside a step's write: the run dies as under SIGKILL, that step unsaved."""


def _run_killed_after(monkeypatch, settings, run_dir: Path, saves: int) -> None:
    """Run until ``saves`` steps (all chains together) are stored, then die mid-write."""
    from cosmopipe.likelihoods.sampling import ChainBackend

    count = {"n": 0}
    original = ChainBackend.save_step

    def save_step(self, state, accepted):
        if count["n"] == saves:
            raise _Killed()
        count["n"] += 1
        return original(self, state, accepted)

    with monkeypatch.context() as m:
        m.setattr(ChainBackend, "save_step", save_step)
        with pytest.raises(_Killed):
            run(settings, _ctx(run_dir))


@pytest.mark.parametrize("tau_rtol, kills", [
    # Never stable (tau always moves by more than 1e-9): the uninterrupted run uses its whole
    # budget.  A resume that re-checked against the check it repeats saw a 0 % change.
    (1e-9, [20, 40, 46, 60, 86, 100, 140, 166, 200]),
    # Loose: the uninterrupted run stops early, and every resume stops at the same step.
    (0.5, [10, 20, 26, 40, 53]),
])
def test_resumed_chain_takes_the_steps_and_decision_of_an_uninterrupted_one(tmp_path, monkeypatch, tau_rtol,
                                                                          kills):
    sample = _sample_section(max_steps=120, check_every=20, walkers=8)
    sample["sampler"]["convergence"] = {"tau_factor": 1.0, "tau_rtol": tau_rtol, "rminus1": 10.0}
    ref_dir = tmp_path / "reference"
    run(_settings(sample, ref_dir), _ctx(ref_dir))
    ref = json.loads((ref_dir / "chains" / "summary.json").read_text())
    assert ref["status"] == ("budget" if tau_rtol < 1e-6 else "converged")
    ref_chains = [read_chain(ref_dir / "chains" / f"chain_{i}.h5") for i in (1, 2)]
    tried = 0
    for saves in kills:                      # steps stored over both chains when the run dies
        if saves >= 2 * ref["steps_per_chain"]:
            continue                         # the uninterrupted run stopped before this point
        killed = tmp_path / f"killed_{saves}"
        _run_killed_after(monkeypatch, _settings(sample, killed), killed, saves)
        run(_settings(sample, killed), _ctx(killed, resume=True))
        got = json.loads((killed / "chains" / "summary.json").read_text())
        assert (got["status"], got["steps_per_chain"]) == (ref["status"], ref["steps_per_chain"]), \
            f"killed after {saves} stored steps: the resumed run stopped ({got['status']}, " \
            f"{got['steps_per_chain']} steps), the uninterrupted one ({ref['status']}, {ref['steps_per_chain']})"
        for i, expected in zip((1, 2), ref_chains):
            for a, b in zip(read_chain(killed / "chains" / f"chain_{i}.h5"), expected):
                np.testing.assert_array_equal(a, b)
        tried += 1
    assert tried >= 3
