"""LSST-Y1 posterior widths with a Gaussian vs a non-Gaussian covariance, per scale cut (Fisher).

For the cosmic-shear set-up of workflows/lsst_y1_cosmic_shear.yaml (its
``sample.likelihoods.lsst_y1_shear`` section: SRD survey, 26 theta bins, the mock
fiducial ``data.fiducial``; the power is EuclidEmulator2, ``power: {source: ee2}``,
so that no emulator is involved) this measures the 68 % marginalised Fisher widths

    sigma_i = sqrt((F^-1)_ii),   F = J^T C^-1 J + priors        over the points of each scale cut

of the 18 sampled parameters (Omega_m, Omega_b, h, A_s, n_s, w0; dz_1..5, m_1..5,
A_IA, eta_IA) and of the derived sigma8 and S8 = sigma8 sqrt(Omega_m / 0.3)
(sigma^2 = g^T F^-1 g with g their gradient), for two covariances at the fiducial:

* G:  ``covariance: {terms: [gaussian]}``
* NG: ``covariance: {terms: [gaussian, ssc, cng]}`` (the workflow's)

at the scale cuts l_max = 3000, 1500, 750, 375, 187.5 (likelihoods/shear/scalecuts.py,
the M1..M5 masks).  J is taken by central differences of the EE2 data vector with the
steps of the emulator-bias stage (pipeline/stages/emulator_bias.py: Omega_m 0.005,
Omega_b 0.001, h 0.01, A_s 5e-11, n_s 0.01, w0 0.03, A_IA 0.1, eta_IA 0.2, dz 0.002,
m 0.005): 24 CAMB runs, about 10 s each on a loaded core; sigma8 comes free with each.
The widths of the sampled parameters are those of
``likelihoods.shear.bias.fisher_shifts_many``; the derived ones use the same F
(checked: its diagonal reproduces fisher_shifts_many's widths).

Priors: the likelihood's Gaussian priors dz_i ~ N(0, 0.002), m_i ~ N(0, 0.005) always.
A flat prior (the workflow's ``params`` ranges for the cosmological parameters,
[-5, 5] for A_IA and eta_IA) is added only where the Fisher width would exceed it: as
a Gaussian of the same variance, sigma = (max - min) / sqrt(12), for every parameter
whose width under either covariance is larger than that (iterated until no new one
appears; the same set for G and NG at a cut, so the ratio compares like with like).
Such rows are marked ``prior``: their width is the prior's, not the data's.

The non-Gaussian covariance costs 2-5 minutes of CPU once and is cached on disk
(likelihoods/shear/covariance_cache.py); the default cache directory is the
workflow's own (out/lsst_y1_cosmic_shear/cache), so a rerun, or the workflow,
reads it.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_covariance_widths.py [--cache DIR] [--workflow FILE]

Prints, per scale cut, a table of sigma_G, sigma_NG and sigma_NG / sigma_G per
parameter, then a summary of the ratios (rows: parameters, columns: cuts), the same
without any flat prior (sigma_G and the ratio: what the data alone say), the
Gaussian-equivalent widths of the flat priors, and the total wall time (about 6 min
with the covariance to compute on a loaded 2-core machine, 1-2 min from the cache).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import copy
import logging
import math
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "workflows" / "lsst_y1_cosmic_shear.yaml"
DEFAULT_CACHE = ROOT / "out" / "lsst_y1_cosmic_shear" / "cache"
COSMO = ("Omega_m", "Omega_b", "h", "A_s", "n_s", "w0")
DERIVED = ("sigma8", "S8")


def _likelihoods(workflow: Path, cache: Path):
    """(Gaussian, non-Gaussian) likelihoods of the workflow's shear section, EE2 power; and its params."""
    from cosmopipe.likelihoods.shear.likelihood import from_config

    wf = yaml.safe_load(workflow.read_text())
    section = wf["sample"]["likelihoods"]["lsst_y1_shear"]
    base = copy.deepcopy(section)
    base["power"] = {"source": "ee2"}
    base["scale_cut"] = "none"
    out = []
    for terms in (["gaussian"], ["gaussian", "ssc", "cng"]):
        raw = copy.deepcopy(base)
        cov = {k: v for k, v in raw.get("covariance", {}).items() if k not in ("terms", "cache")}
        raw["covariance"] = {**cov, "terms": terms, **({"cache": str(cache)} if len(terms) > 1 else {})}
        out.append(from_config(raw, {}))
    return out[0], out[1], wf["sample"]["params"]


def _steps(nbins: int) -> dict[str, float]:
    """The emulator-bias stage's central-difference steps (cosmology, IA; dz 0.002, m 0.005)."""
    from cosmopipe.likelihoods.shear.limber import nuisance_names
    from cosmopipe.pipeline.stages.emulator_bias import _DEFAULT_STEPS

    steps = {n: _DEFAULT_STEPS[n] for n in COSMO}
    for n in nuisance_names(nbins):
        steps[n] = _DEFAULT_STEPS[n] if n in _DEFAULT_STEPS else (0.002 if n.startswith("dz") else 0.005)
    return steps


def _flat_ranges(params: dict, lk) -> dict[str, float]:
    """Width (max - min) of every flat prior: the workflow's, then the likelihood's defaults."""
    out = {}
    for name, spec in lk.parameters().items():
        if spec.get("prior") == "flat":
            out[name] = float(spec["max"]) - float(spec["min"])
    for name, spec in params.items():
        if isinstance(spec, dict) and isinstance(spec.get("prior"), dict) and "min" in spec["prior"]:
            out[name] = float(spec["prior"]["max"]) - float(spec["prior"]["min"])
    return out


class _Memo:
    """Data vector and (sigma8, S8) of the model at a point, each point computed once."""

    def __init__(self, lk):
        self.lk, self.store, self.calls = lk, {}, 0

    def _get(self, params):
        key = tuple(sorted((k, float(v)) for k, v in params.items()))
        if key not in self.store:
            self.calls += 1
            vec = np.asarray(self.lk.model.data_vector(dict(params)), dtype=float)
            d = self.lk.derived(None, dict(params))   # sigma8 of the CAMB run just made
            self.store[key] = (vec, np.array([d[n] for n in DERIVED]))
        return self.store[key]

    def __call__(self, params):
        return self._get(params)[0]

    def derived(self, params):
        return self._get(params)[1]


def _jacobians(memo, fid, steps):
    """J (N, p) of the data vector and G (2, p) of (sigma8, S8), central differences as
    fisher_shifts_many takes them."""
    jac, grad = [], []
    for name, h in steps.items():
        up, down = {**fid, name: fid[name] + h}, {**fid, name: fid[name] - h}
        jac.append((memo(up) - memo(down)) / (2.0 * h))
        grad.append((memo.derived(up) - memo.derived(down)) / (2.0 * h))
    return np.array(jac).T, np.array(grad).T


def _widths(memo, fid, steps, cov, cut, prior_sigma, jac, grad):
    """Marginalised widths {name: sigma} (sampled from fisher_shifts_many, derived from the same F)."""
    from cosmopipe.likelihoods.shear import bias

    names = tuple(steps)
    shift = bias.fisher_shifts_many(memo, fid, steps, {"": np.zeros(cov.shape[0])}, cov, [cut],
                                    prior_sigma=prior_sigma)[""][0]
    inv = bias._cut_inverse(np.asarray(cov, float), cut.mask)
    j = jac[cut.mask]
    prior = np.array([prior_sigma.get(n, np.inf) for n in names])
    f_inv = np.linalg.inv(j.T @ inv @ j + np.diag(1.0 / prior**2))
    mine = np.sqrt(np.diag(f_inv))
    if not np.allclose(mine, shift.sigma, rtol=1e-6, atol=0.0):
        raise RuntimeError(f"cut {cut.name}: Fisher widths differ from fisher_shifts_many's: "
                           f"{np.max(np.abs(mine / shift.sigma - 1)):.2e}")
    out = dict(zip(names, shift.sigma))
    for i, n in enumerate(DERIVED):
        out[n] = float(np.sqrt(grad[i] @ f_inv @ grad[i]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workflow", type=Path, default=WORKFLOW, help="workflow with sample.likelihoods.lsst_y1_shear")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="non-Gaussian covariance cache directory")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from cosmopipe.likelihoods.shear import bias
    from cosmopipe.likelihoods.shear.likelihood import default_priors
    from cosmopipe.likelihoods.shear.scalecuts import NAMED_LMAX

    t_start = time.perf_counter()
    lk_g, lk_ng, params = _likelihoods(args.workflow, args.cache)
    t_cov = time.perf_counter() - t_start
    if not np.array_equal(lk_g.data, lk_ng.data):
        raise RuntimeError("the two likelihoods' mocks differ")
    model = lk_g.model
    fid = {k: float(v) for k, v in model.fiducial.items()}
    steps = _steps(model.nbins)
    gauss_prior = {n: float(s["sigma"]) for n, s in default_priors(model.nbins).items() if s.get("prior") == "gaussian"}
    flat = {n: w for n, w in _flat_ranges(params, lk_g).items() if n in steps}
    cuts = bias.scale_cuts(model.theta_edges, len(model.survey.pairs), NAMED_LMAX)

    t0 = time.perf_counter()
    memo = _Memo(lk_g)
    jac, grad = _jacobians(memo, fid, steps)
    t_jac = time.perf_counter() - t0
    fid_derived = dict(zip(DERIVED, memo.derived(fid)))
    print(f"\nfiducial: {', '.join(f'{k}={v:g}' for k, v in fid.items())}; sigma8={fid_derived['sigma8']:.4f}, "
          f"S8={fid_derived['S8']:.4f}")
    print(f"set-up {t_cov:.0f} s (mock, covariances: NG cache {args.cache}), Jacobian {t_jac:.0f} s "
          f"({memo.calls} data vectors)")

    names = list(steps) + list(DERIVED)
    results, free = [], []
    for cut in cuts:
        priors, flagged = dict(gauss_prior), set()
        while True:
            wg = _widths(memo, fid, steps, lk_g.cov, cut, priors, jac, grad)
            wn = _widths(memo, fid, steps, lk_ng.cov, cut, priors, jac, grad)
            new = {n for n, w in flat.items() if n not in flagged
                   and max(wg[n], wn[n]) > w / math.sqrt(12.0)}
            if not new:
                break
            flagged |= new
            priors.update({n: flat[n] / math.sqrt(12.0) for n in new})
        results.append((cut, wg, wn, flagged))
        free.append((_widths(memo, fid, steps, lk_g.cov, cut, gauss_prior, jac, grad),
                     _widths(memo, fid, steps, lk_ng.cov, cut, gauss_prior, jac, grad)))

    for cut, wg, wn, flagged in results:
        print(f"\n### l_max = {cut.lmax:g} ({cut.n_points} points)\n")
        print("| parameter | sigma_G | sigma_NG | sigma_NG / sigma_G | |")
        print("|---|---|---|---|---|")
        for n in names:
            mark = "prior" if n in flagged else ""
            print(f"| {n} | {wg[n]:.4g} | {wn[n]:.4g} | {wn[n] / wg[n]:.3f} | {mark} |")

    print("\n### sigma_NG / sigma_G (rows: parameters, columns: l_max; * = flat prior applied)\n")
    print("| parameter | " + " | ".join(f"{c.lmax:g}" for c, *_ in results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for n in names:
        print(f"| {n} | " + " | ".join(f"{wn[n] / wg[n]:.3f}" + ("*" if n in fl else "")
                                       for _, wg, wn, fl in results) + " |")
    print("\n### without the flat priors (Gaussian nuisance priors only): sigma_G and sigma_NG / sigma_G\n")
    print("| parameter | " + " | ".join(f"{c.lmax:g}" for c, *_ in results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for n in names:
        print(f"| {n} | " + " | ".join(f"{wg[n]:.4g}, {wn[n] / wg[n]:.3f}" for wg, wn in free) + " |")
    print("\nflat priors as Gaussians, sigma = (max - min) / sqrt(12): "
          + ", ".join(f"{n} {w / math.sqrt(12.0):.4g}" for n, w in flat.items()))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
