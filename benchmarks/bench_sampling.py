"""Benchmark: emcee with the likelihood evaluated in one process (vectorize) or on Dask (DaskPool).

    python benchmarks/bench_sampling.py [--workers 2] [--quick]

Measures, on this machine:

1. the Dask round trip of ``DaskPool.map`` (LocalCluster, single-thread worker
   processes) for a function that costs nothing: the latency and per-task
   overhead that ``cosmopipe.likelihoods.sampling.choose_parallel`` models;
2. wall time per emcee step, both ways, for
   - a real cheap likelihood: an 18-parameter correlated Gaussian (numpy, ~30 us),
   - a 5 ms likelihood (sleep, and a CPU-bound busy loop), 18 parameters, 38 walkers,
   - a 2 s likelihood (sleep), 3 parameters, 8 walkers, also on a simulated
     8-core cluster (8 threads in one worker: a sleeping likelihood releases the GIL,
     so threads stand in for cores),
   - the LSST-Y1 shear likelihood when ``cosmopipe.likelihoods.shear`` can build one;
3. which mode ``choose_parallel`` picks for each and whether that was the faster one.

The sleep cost models stand for likelihoods whose time goes elsewhere (and for a
cluster larger than this 2-core machine); the busy loop competes for the cores
like a real likelihood.  All figures are printed; nothing is written.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import emcee
import numpy as np

from cosmopipe.likelihoods.priors import Prior
from cosmopipe.likelihoods.sampling import DaskPool, DerivedParam, Posterior, SampledParam, choose_parallel
from cosmopipe.likelihoods.sampling.pool import _decide_parallel
from cosmopipe.likelihoods.sampling.run import _emcee_blobs


@dataclass
class CostModelGaussian:
    """ln L of a correlated Gaussian plus a fixed cost per call [s] (sleep or busy loop)."""

    ndim: int
    cost: float = 0.0
    busy: bool = False
    name: str = "bench"

    def __post_init__(self):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((self.ndim, self.ndim))
        self.inv = np.linalg.inv(a @ a.T / self.ndim + np.eye(self.ndim))

    def requirements(self):
        return {}

    def parameters(self):
        return {}

    def loglike(self, theory, params):
        if self.cost:
            if self.busy:
                end = time.perf_counter() + self.cost
                while time.perf_counter() < end:
                    pass
            else:
                time.sleep(self.cost)
        x = np.array([params[f"p{i}"] for i in range(self.ndim)])
        return float(-0.5 * x @ self.inv @ x)


def _posterior(lik, ndim: int) -> Posterior:
    sampled = [SampledParam(f"p{i}", Prior("flat", -10.0, 10.0), 0.0, 0.1) for i in range(ndim)]
    return Posterior(sampled, {}, [DerivedParam("p0")], [lik], lambda p: None)


def _step_time(posterior: Posterior, nwalkers: int, nsteps: int, mode: str, pool=None) -> float:
    """Mean wall time [s] of one emcee step (the start ensemble is evaluated beforehand)."""
    rng = np.random.default_rng(1)
    ref = np.array([p.ref for p in posterior.sampled])
    scale = np.array([p.proposal for p in posterior.sampled])
    p0 = ref + scale * rng.standard_normal((nwalkers, posterior.ndim))
    results = posterior.many(p0) if pool is None else pool.map(posterior, list(p0))
    state = emcee.State(p0, log_prob=np.array([r[0] for r in results]), blobs=_emcee_blobs([r[1] for r in results]),
                        random_state=np.random.RandomState(2).get_state())
    sampler = emcee.EnsembleSampler(nwalkers, posterior.ndim, posterior.many if mode == "vectorize" else posterior,
                                    vectorize=(mode == "vectorize"), pool=pool)
    t0 = time.perf_counter()
    sampler.run_mcmc(state, nsteps)
    return (time.perf_counter() - t0) / nsteps


def _overheads(pool: DaskPool, nthreads: int, repeat: int) -> dict[str, float]:
    """Round trip [s] of pool.map for a free function: 1 point, and one task per thread."""
    free = _posterior(CostModelGaussian(2), 2)
    out = {}
    for n in (1, nthreads, 19):
        pts = [np.zeros(2)] * n
        pool.map(free, pts)  # scatter + warm-up
        t0 = time.perf_counter()
        for _ in range(repeat):
            pool.map(free, pts)
        out[n] = (time.perf_counter() - t0) / repeat
    return out


def _case(label, post, nwalkers, nsteps, pools, results, client=None, budget_s=120.0):
    """Time one posterior both ways; stepping is skipped when it would take over budget_s."""
    ref = np.array([p.ref for p in post.sampled])
    scale = np.array([p.proposal for p in post.sampled])
    post.evaluate(ref)                  # first call: imports, caches
    t_eval = float(np.median([_timed(post, ref + scale * np.random.default_rng(i).standard_normal(post.ndim))
                              for i in range(5)]))
    row = {"case": label, "eval_ms": t_eval * 1e3, "walkers": nwalkers}
    stepping = 2 * t_eval * nwalkers * nsteps < budget_s
    try:
        if stepping:
            row["vectorize"] = _step_time(post, nwalkers, nsteps, "vectorize")
        for name, (pool, nthreads) in pools.items():
            row[f"choice_{name}"] = choose_parallel(t_eval, nwalkers // 2, nthreads)[0]
            if stepping:
                pool.cost_s = t_eval            # as the sample stage does: task count from the measured cost
                row[name] = _step_time(post, nwalkers, nsteps, "dask", pool)
                pool.cost_s = None
        if client is not None:
            # What the sample stage's parallel: auto does here (cost model, then a trial of both modes).
            import logging

            probe = ref + scale * np.random.default_rng(3).standard_normal((3, post.ndim))
            mode, reason, _ = _decide_parallel(post, "auto", t_eval, nwalkers // 2, lambda: client, probe,
                                               logging.getLogger("bench"))
            row["auto"] = (mode, reason)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"{label}: failed: {type(exc).__name__}: {str(exc)[:300]}")
        return
    results.append(row)
    cells = ("  ".join(f"{name} {row[name]:.4g} s/step" for name in ["vectorize", *pools]) if stepping
             else f"(stepping skipped: a step would take ~{2 * t_eval * nwalkers:.3g} s in one process)")
    print(f"{label:<38} eval {t_eval * 1e3:9.3f} ms  {cells}", flush=True)


def _timed(post, theta) -> float:
    t0 = time.perf_counter()
    post.evaluate(theta)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (1 thread each)")
    parser.add_argument("--quick", action="store_true", help="skip the 2 s likelihood")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    print(f"LocalCluster of {args.workers} single-thread worker processes started in "
          f"{time.perf_counter() - t0:.2f} s")
    pools = {f"dask{args.workers}": (DaskPool(client), args.workers)}
    sim = None
    try:
        over = _overheads(pools[f"dask{args.workers}"][0], args.workers, 50)
        print("DaskPool.map round trip for a free function: "
              + ", ".join(f"{n} point(s) {t * 1e3:.2f} ms" for n, t in over.items()))
        tasks = min(19, args.workers)
        per_task = (over[args.workers] - over[1]) / max(args.workers - 1, 1)
        print(f"  -> latency ~{over[1] * 1e3:.1f} ms per map, ~{per_task * 1e3:.2f} ms per extra task "
              f"(19 points in {tasks} tasks: {over[19] * 1e3:.1f} ms)")

        results = []
        print("\nwall time per emcee step (two half-ensemble evaluations)")
        gauss = lambda cost=0.0, busy=False: _posterior(CostModelGaussian(18, cost, busy), 18)  # noqa: E731
        _case("gaussian 18-D, real numpy (38 walkers)", gauss(), 38, 40, pools, results, client)
        _case("5 ms sleep, 18-D (38 walkers)", gauss(0.005), 38, 8, pools, results, client)
        _case("5 ms busy CPU, 18-D (38 walkers)", gauss(0.005, True), 38, 8, pools, results, client)
        shear = _shear_posterior()
        if shear is not None:
            _case(f"LSST-Y1 shear likelihood, {shear.ndim}-D", shear, 2 * shear.ndim + 2, 3, pools, results, client)
        if not args.quick:
            sim_cluster = LocalCluster(n_workers=1, threads_per_worker=8, processes=True, dashboard_address=None)
            sim = (sim_cluster, Client(sim_cluster))
            pools2 = dict(pools, sim8=(DaskPool(sim[1]), 8))
            _case("2 s sleep, 3-D (8 walkers)", _posterior(CostModelGaussian(3, 2.0), 3), 8, 1, pools2, results, client)

        nworkers = args.workers
        print("\nchoose_parallel (model constants in likelihoods/sampling/pool.py) vs the measured faster mode:")
        for row in results:
            for name in [k for k in row if (k.startswith("dask") or k == "sim8") and k in row]:
                faster = "dask" if row[name] < row["vectorize"] else "vectorize"
                pick = row[f"choice_{name}"]
                print(f"  {row['case']:<38} [{name}] picks {pick:<9} measured faster: {faster:<9} "
                      f"(speed-up of dask {row['vectorize'] / row[name]:.2f}x) {'OK' if pick == faster else 'MISS'}")
            if "auto" in row:
                print(f"  {row['case']}: parallel: auto on the {nworkers}-worker cluster -> {row['auto'][0]}: "
                      f"{row['auto'][1]}")
    finally:
        if sim is not None:
            sim[1].close()
            sim[0].close()
        client.close()
        cluster.close()


def _shear_posterior():
    """The LSST-Y1 shear posterior (wCDM + nuisances, default settings) when it can be built here."""
    import logging

    from cosmopipe.pipeline.stages.posterior import _build_likelihoods, build_posterior, parse
    from cosmopipe.schema import Section

    params = {"Omega_m": {"prior": {"min": 0.24, "max": 0.40}, "ref": 0.319, "proposal": 0.005},
              "Omega_b": {"prior": {"min": 0.04, "max": 0.06}, "ref": 0.049, "proposal": 0.001},
              "h": {"prior": {"min": 0.61, "max": 0.73}, "ref": 0.67, "proposal": 0.005},
              "A_s": {"prior": {"min": 1.7e-9, "max": 2.5e-9}, "ref": 2.1e-9, "proposal": 2e-11},
              "n_s": {"prior": {"min": 0.92, "max": 1.0}, "ref": 0.96, "proposal": 0.005},
              "w0": {"prior": {"min": -1.3, "max": -0.7}, "ref": -1.0, "proposal": 0.02}}
    raw = {"likelihoods": {"lsst_y1_shear": {}}, "params": params}
    try:
        settings = parse(Section(raw, "sample", "<bench>"), {"name": "bench", "run_dir": "."})
        from pathlib import Path

        return build_posterior(settings, _build_likelihoods(settings, Path(".")), logging.getLogger("bench"))
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"(LSST-Y1 shear likelihood not measured: {type(exc).__name__}: {exc})")
        return None


if __name__ == "__main__":
    main()
