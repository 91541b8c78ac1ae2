"""Benchmark: one posterior sampled by Cobaya's mcmc and by the project's emcee sampler.

    python benchmarks/bench_cobaya_vs_emcee.py [--quick] [--posterior shear|bao_sn] [--emulator PATH|NAME]

Posteriors (both samplers see the same data and the same theory code):

* ``shear`` (default): the LSST-Y1 cosmic-shear likelihood (the project's default set-up: 5
  bins, xi+- in 26 angles, l_max = 3000) on an emulator, Omega_m, A_s and A_IA free (flat priors
  [0.28, 0.36], [1.8, 2.4] x 1e-9, [-5, 5]), the other nuisances fixed at the mock's values.
  Cobaya runs cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear on the emulator theory
  cosmopipe.likelihoods.cobaya_theory.EmulatedMatterPower; emcee the project's shear likelihood
  with the same emulator as its power source.  Without ``--emulator`` a small one is made
  first (EuclidEmulator2 boosts and an analytic linear spectrum; ~10 s), and the mock is made
  with the emulator itself.
* ``bao_sn``: BAO (6dF, SDSS MGS, DESI DR2) + Pantheon (binned), H0 and omch2 free, on CAMB's
  background (Cobaya's camb against the project's CAMB provider); about 0.1 s per evaluation
  here, so no --quick run fits in two minutes.

Samplers: Cobaya's ``mcmc`` (one chain, adaptive proposal, stops at R-1 < Rminus1_stop over
chain splits); the project's emcee (cosmopipe.likelihoods.sampling.run_chains: independent
affine-invariant ensembles, stops when every chain is tau_factor autocorrelation times long,
tau stable and Gelman-Rubin R-1 below rminus1).  Printed: evaluations, wall time, tau,
effective samples (Cobaya: its Markov chain, weights expanded into repeats, after 30 %
burn-in; emcee: walkers x steps after 2 tau of burn-in; both over the largest integrated
autocorrelation time, emcee's estimator) and wall time per effective sample; then the means
and standard deviations of both and their differences in units of the mean sigma.  BLAS and
CAMB on one thread (set before numpy loads).  ``--quick``: looser stopping rules and a
smaller budget, under two minutes for ``shear``.  Nothing is written outside a temporary
directory.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")   # small matrix products: threads only contend on a shared machine

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SHEAR = "cosmopipe.likelihoods.cobaya_shear.LSSTY1Shear"
THEORY = "cosmopipe.likelihoods.cobaya_theory.EmulatedMatterPower"
SETTINGS = {  # (quick, full)
    "cobaya": ({"Rminus1_stop": 0.05, "Rminus1_cl_stop": 0.5, "max_samples": 3000},
               {"Rminus1_stop": 0.005, "Rminus1_cl_stop": 0.1, "max_samples": 200000}),
    "emcee": ({"chains": 2, "max_steps": 600, "check_every": 100, "tau_factor": 20.0, "rminus1": 0.05},
              {"chains": 4, "max_steps": 20000, "check_every": 200, "tau_factor": 50.0, "rminus1": 0.01}),
}


# -- the posteriors -------------------------------------------------------------------------
def small_emulator(path: Path) -> str:
    """A boost emulator of EuclidEmulator2 boosts with an analytic linear-power emulator
    (as tests/test_cobaya_theory.py): box Omega_m [0.28, 0.36], Omega_b [0.045, 0.053],
    h [0.63, 0.72], A_s [1.8, 2.4] x 1e-9, n_s [0.93, 0.99]; k 0.0105-4.8 h/Mpc, z 0-3."""
    from cosmopipe.emulators.boost import train_boost
    from cosmopipe.emulators.linear import LinearDataset, analytic_log_pk, latin_hypercube, train_linear
    from cosmopipe.emulators.network import TrainConfig
    from cosmopipe.emulators.params import ParameterSpace
    from cosmopipe.emulators.synthetic import ee2_dataset
    from cosmopipe.emulators.training import FitSettings
    from cosmopipe.likelihoods.theory.background import background
    from cosmopipe.sims.cosmology import Cosmology

    box = {"Omega_m": (0.28, 0.36), "Omega_b": (0.045, 0.053), "h": (0.63, 0.72), "A_s": (1.8e-9, 2.4e-9),
           "n_s": (0.93, 0.99)}
    fixed = {"w0": -1.0, "wa": 0.0, "m_nu": 0.058}
    space = ParameterSpace(tuple(box), [v[0] for v in box.values()], [v[1] for v in box.values()], fixed)
    z, k = np.array([0.0, 0.5, 1.0, 2.0, 3.0]), np.geomspace(1.05e-3, 4.8, 150)
    design = latin_hypercube(24, space, seed=1)
    names = Cosmology.names()
    params = np.array([[d[n] for n in names] for d in design])
    col = {n: params[:, i] for i, n in enumerate(names)}
    growth = np.array([background(Cosmology.from_dict(d)).growth(z) for d in design])
    lnp = (analytic_log_pk(col["A_s"], col["n_s"], col["Omega_m"], col["Omega_b"], col["h"], k)
           + np.log(8 * np.pi**2 / 25 * 2997.92458**4 * 0.6 / col["Omega_m"] ** 2)[:, None, None]
           + 2 * np.log(growth)[:, :, None])
    linear = train_linear(LinearDataset(names, params, z, k, np.exp(lnp), "tot", np.zeros(len(design))), space,
                          FitSettings(network=TrainConfig(hidden=(16,), epochs=400), validation_fraction=0.0))
    boosts = ee2_dataset(40, z, np.geomspace(0.0105, 4.8, 30), box, fixed=fixed, seed=2)
    fit = FitSettings(network=TrainConfig(hidden=(16, 16), epochs=600), validation_fraction=0.0)
    return str(train_boost(boosts, fit, linear=linear).save(path))


class ShearCase:
    """LSST-Y1 shear on an emulator: Omega_m, A_s, A_IA free."""

    free = {"Omega_m": (0.28, 0.36, 0.319, 0.005), "A_s": (1.8e-9, 2.4e-9, 2.1e-9, 3e-11),
            "A_IA": (-5.0, 5.0, 0.5, 0.1)}   # min, max, ref, proposal

    def __init__(self, emulator: str):
        self.emulator = emulator
        self.fixed = {"Omega_b": 0.049, "h": 0.67, "n_s": 0.96}
        self.nuisances = {**{f"dz_{i}": 0.0 for i in range(1, 6)}, **{f"m_{i}": 0.0 for i in range(1, 6)},
                          "eta_IA": 0.0}
        self.data = {"power": {"source": "emulator", "path": emulator}}

    def cobaya_info(self) -> dict:
        return {"params": {**self.fixed, **self.nuisances, **_cobaya_free(self.free)},
                "theory": {THEORY: {"emulator": self.emulator}},
                "likelihood": {"lsst_y1_shear": {"class": SHEAR, "data": self.data}}}

    def posterior(self):
        from cosmopipe.likelihoods.sampling import Posterior
        from cosmopipe.likelihoods.shear.likelihood import from_config
        from cosmopipe.likelihoods.theory import make_theory
        from cosmopipe.schema import Section

        shear = from_config(Section({"power": {"source": "emulator", "path": self.emulator}, "data": self.data},
                                    "lsst_y1_shear"), {})
        theory = make_theory(Section({"provider": "none"}, "sample.theory"))
        return Posterior(_sampled(self.free), {**self.fixed, **self.nuisances}, [], [shear], theory)


class BaoSnCase:
    """BAO + Pantheon on CAMB's background: H0 and omch2 free."""

    free = {"H0": (55.0, 85.0, 68.0, 1.0), "omch2": (0.08, 0.16, 0.12, 0.002)}
    likes = {"bao": {"class": "cosmopipe.likelihoods.cobaya_interface.BAO",
                     "sets": ["sixdf_2011", "sdss_dr7_mgs", "desi_dr2"]},
             "pantheon": {"class": "cosmopipe.likelihoods.cobaya_interface.Pantheon", "sample": "binned"}}

    def __init__(self, data: Path):
        self.data_dir = str(data)
        self.fixed = {"ombh2": 0.02237, "As": 2.1e-9, "ns": 0.9649, "tau": 0.0544, "mnu": 0.06}

    def cobaya_info(self) -> dict:
        from cosmopipe.likelihoods import cobaya_interface as ci

        return {"params": {**self.fixed, **_cobaya_free(self.free)},
                "theory": {"camb": {"extra_args": dict(ci.CAMB_EXTRA_ARGS)}},
                "likelihood": {n: dict(spec, data_dir=self.data_dir) for n, spec in self.likes.items()}}

    def posterior(self):
        from cobaya.model import get_model

        from cosmopipe.likelihoods.sampling import Posterior
        from cosmopipe.likelihoods.theory import make_theory
        from cosmopipe.schema import Section

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # Pantheon's diagonal-covariance warning
            model = get_model(self.cobaya_info())
        projects = [model.likelihood[name].project for name in self.likes]   # the same data objects
        theory = make_theory(Section({"provider": "camb"}, "sample.theory"),
                             {"requirements": [p.requirements() for p in projects], "names": list(self.likes)})
        return Posterior(_sampled(self.free), self.fixed, [], projects, theory)


def _cobaya_free(free: dict) -> dict:
    return {n: {"prior": {"min": lo, "max": hi}, "ref": {"dist": "norm", "loc": ref, "scale": prop}, "proposal": prop}
            for n, (lo, hi, ref, prop) in free.items()}


def _sampled(free: dict) -> list:
    from cosmopipe.likelihoods.priors import Prior
    from cosmopipe.likelihoods.sampling import SampledParam

    return [SampledParam(n, Prior("flat", lo, hi), ref, prop) for n, (lo, hi, ref, prop) in free.items()]


# -- the samplers ------------------------------------------------------------------------------
def _tau(x: np.ndarray) -> float:
    """Integrated autocorrelation time [steps] of a 1-d chain (emcee's estimator)."""
    import emcee

    return float(emcee.autocorr.integrated_time(x, quiet=True)[0])


def run_cobaya(case, quick: bool, out: Path) -> dict:
    from cobaya.run import run

    info = {**case.cobaya_info(), "output": str(out / "cobaya" / "chain"), "force": True,
            "sampler": {"mcmc": {**SETTINGS["cobaya"][0 if quick else 1], "seed": 1}}}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, sampler = run(info)
    wall = time.perf_counter() - t0
    sample = sampler.products()["sample"]
    weights = np.asarray(sample["weight"], dtype=float)
    chain = np.column_stack([np.asarray(sample[name], dtype=float) for name in case.free])
    expanded = np.repeat(chain, weights.astype(int), axis=0)     # the Markov chain itself
    kept = expanded[int(0.3 * len(expanded)):]
    taus = [_tau(kept[:, i]) for i in range(kept.shape[1])]
    return {"sampler": "cobaya mcmc", "wall_s": wall, "evaluations": int(weights.sum()),
            "ess": kept.shape[0] / max(taus), "tau": taus, "mean": kept.mean(axis=0),
            "std": kept.std(axis=0, ddof=1), "status": f"R-1 = {sampler.Rminus1_last:.3g}"}


def run_emcee(case, quick: bool, out: Path) -> dict:
    from cosmopipe.likelihoods.sampling import Convergence, SamplerSettings, run_chains
    from cosmopipe.likelihoods.sampling.backend import ChainBackend
    from cosmopipe.likelihoods.sampling.convergence import autocorr_times

    s = SETTINGS["emcee"][0 if quick else 1]
    posterior = case.posterior()
    settings = SamplerSettings(chains=s["chains"], max_steps=s["max_steps"], check_every=s["check_every"],
                               parallel="vectorize", seed=1, restart=True,
                               convergence=Convergence(tau_factor=s["tau_factor"], rminus1=s["rminus1"]))
    t0 = time.perf_counter()
    result = run_chains(posterior, settings, out / "emcee", fingerprint={"bench": "cobaya_vs_emcee"},
                        progress=False)
    wall = time.perf_counter() - t0
    chains = [ChainBackend(str(path), read_only=True).read_steps(0)[0]["chain"] for path in result.chain_files]
    tau = np.max([autocorr_times(c) for c in chains], axis=0)                # per parameter [steps]
    burn = int(math.ceil(2 * tau.max()))
    flat = np.concatenate([c[burn:].reshape(-1, c.shape[-1]) for c in chains])
    ess = sum(c[burn:].shape[0] * c.shape[1] for c in chains) / tau.max()
    return {"sampler": f"emcee ({result.nwalkers} walkers x {len(chains)})", "wall_s": wall,
            "evaluations": int(sum(c.shape[0] * c.shape[1] for c in chains)), "ess": ess, "tau": list(tau),
            "mean": flat.mean(axis=0), "std": flat.std(axis=0, ddof=1), "status": result.status}


def _data_dir() -> Path:
    from cosmopipe.likelihoods import data_registry as reg

    for candidate in (os.environ.get(reg.ENV_VAR), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SystemExit("BAO / SN data not found: set COSMOPIPE_DATA")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="looser stopping rules, smaller budget")
    parser.add_argument("--posterior", choices=("shear", "bao_sn"), default="shear")
    parser.add_argument("--emulator", default=None, help="emulator file or shipped model name (shear)")
    args = parser.parse_args(argv)
    import camb

    camb.config.ThreadNum = 1
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if args.posterior == "shear":
            emulator = args.emulator or small_emulator(out / "emulator.h5")
            case, what = ShearCase(emulator), f"LSST-Y1 shear on the emulator {args.emulator or '(made here)'}"
        else:
            case, what = BaoSnCase(_data_dir()), "BAO + Pantheon on CAMB's background"
        t_setup = time.perf_counter() - t_start
        rows = [run_cobaya(case, args.quick, out), run_emcee(case, args.quick, out)]
    print(f"\n{what}; free {', '.join(case.free)}; {'quick' if args.quick else 'full'} settings; "
          f"set-up {t_setup:.0f} s")
    print(f"{'sampler':<24}{'evals':>8}{'ms/eval':>9}{'wall [s]':>10}{'tau':>20}{'ESS':>8}{'ms/eff. sample':>16}  stop")
    for r in rows:
        taus = "/".join(f"{t:.1f}" for t in r["tau"])
        print(f"{r['sampler']:<24}{r['evaluations']:>8}{1e3 * r['wall_s'] / r['evaluations']:>9.2f}"
              f"{r['wall_s']:>10.1f}{taus:>20}{r['ess']:>8.0f}{1e3 * r['wall_s'] / r['ess']:>16.1f}  {r['status']}")
    c, e = rows
    print(f"\n{'parameter':<10}{'cobaya mean +- sd':>26}{'emcee mean +- sd':>26}{'diff/sigma':>12}{'sd ratio':>10}")
    for i, name in enumerate(case.free):
        sigma = 0.5 * (c["std"][i] + e["std"][i])
        print(f"{name:<10}{c['mean'][i]:>15.6g} +- {c['std'][i]:<7.3g}{e['mean'][i]:>15.6g} +- {e['std'][i]:<7.3g}"
              f"{(c['mean'][i] - e['mean'][i]) / sigma:>12.3f}{c['std'][i] / e['std'][i]:>10.3f}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
