"""Time per camb_theory call (LCDM, EDE, EDE + w bins) and the accuracy of the tabulated
EDE + w(z) component against CAMB's own EDE model.

    python benchmarks/bench_ede.py [--repeat 3] [--threads 1] [--lmax 2508]
    python benchmarks/bench_ede.py --accuracy [--data-dir ../shared/data]

Timing: one call with the requirements of Planck + BAO + SN (lensed C_ell to lmax with
lens_potential_accuracy 1, distances, r_drag, sigma8), the median wall and process-CPU
time of ``--repeat`` calls after one warm-up, for each model.

Accuracy (``--accuracy``): at three EDE points, with all w_i = -1, the tabulated component
(uncorrected and with the default C_ell correction) against CAMB's AxionEffectiveFluid:
max |dC/C| of TT and EE for 30 <= ell <= 2500, Delta chi^2 for a cosmic-variance-limited
full-sky TT/TE/EE measurement to ell = 2508, for a Planck-like one (f_sky 0.6, 33 / 70
muK-arcmin, 7.3' beam), and -- when the data are present -- the plik-lite band-power
distance (Delta C_b)^T Cov^-1 (Delta C_b); C_L^phiphi, P(k, z=0) (k < 5 h/Mpc), sigma8,
r_drag and theta_*.  Then the correction's transport away from w = -1, checked on a proxy
whose truth CAMB can compute: tabulated fluids with c_s^2 = 0.75 ("truth") and 1.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

PLANCK_BEST = dict(ombh2=0.02238, omch2=0.1201, H0=67.32, tau=0.0543, logA=3.0448, ns=0.9660)
EDE_POINTS = (
    dict(f_EDE=0.10, log10_z_c=3.5, theta_i=2.8),
    dict(f_EDE=0.07, log10_z_c=3.3, theta_i=2.8),
    dict(f_EDE=0.10, log10_z_c=4.0, theta_i=2.0),
)
PLANCK_LIKE = dict(fsky=0.6, noise_t=33.0, noise_p=70.0, beam_fwhm_arcmin=7.3)


def _wbins(n: int, value: float = -1.0) -> dict:
    return {f"w_{i}": value for i in range(1, n + 1)}


def timing(args) -> None:
    from cosmopipe.likelihoods.theory.camb_theory import CambSettings, camb_theory

    req = {"cls": {"lmax": args.lmax, "lensing": True}, "distances": True, "rdrag": True, "sigma8": True}
    ede = EDE_POINTS[0]
    wb = {"w_1": -0.9, "w_2": -0.95, "w_3": -1.0}
    cases = [
        ("LCDM", PLANCK_BEST, CambSettings()),
        ("w bins only (3, fluid)", {**PLANCK_BEST, **wb}, CambSettings()),
        ("EDE fluid (AxionEffectiveFluid)", {**PLANCK_BEST, **ede}, CambSettings()),
        ("EDE scalar (EarlyQuintessence)", {**PLANCK_BEST, **ede}, CambSettings(ede_model="scalar")),
        ("EDE + 3 w bins, corrected", {**PLANCK_BEST, **ede, **wb}, CambSettings()),
        ("EDE + 3 w bins, uncorrected", {**PLANCK_BEST, **ede, **wb}, CambSettings(ede_correction="none")),
        ("EDE + 10 w bins, corrected", {**PLANCK_BEST, **ede, **_wbins(10, -0.95)}, CambSettings()),
        ("LCDM background only (distances, rdrag)", PLANCK_BEST, CambSettings()),
        ("EDE + 3 w bins background only", {**PLANCK_BEST, **ede, **wb}, CambSettings()),
    ]
    print(f"camb_theory time per call: lensed C_ell to lmax={args.lmax} (lens_potential_accuracy 1), distances, "
          f"r_drag, sigma8; {args.threads} thread(s), median of {args.repeat}")
    for label, params, settings in cases:
        from dataclasses import replace

        settings = replace(settings, threads=args.threads)
        r = {"distances": True, "rdrag": True} if "background" in label else req
        camb_theory(params, r, settings)  # warm-up
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            camb_theory(params, r, settings)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"  {label:<42s} wall {statistics.median(times):7.3f} s (min {min(times):.3f})   "
              f"CPU {statistics.median(cpu):7.3f} s")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  (1-minute load average {load:.1f} on {os.cpu_count()} cores: on a shared machine the CPU time "
          f"is the steadier figure)")


def _plik(data_dir):
    try:
        from cosmopipe.likelihoods.planck import plik_lite

        return plik_lite(data_dir)
    except Exception as exc:  # data absent: report and go on with the Gaussian measures
        print(f"  (plik-lite band-power distance skipped: {exc})")
        return None


def _plik_distance(plik, a, b) -> float:
    from scipy.linalg import solve_triangular

    from cosmopipe.likelihoods.base import TheoryResult

    diff = plik.binned_model(TheoryResult(cls=a)) - plik.binned_model(TheoryResult(cls=b))
    y = solve_triangular(plik.cov_cho, diff, lower=True)
    return float(y @ y)


def _compare(label, test, ref, plik) -> None:
    import numpy as np

    from cosmopipe.likelihoods.theory.ede import cmb_chi2_cosmic_variance

    lmax = len(ref.cls["tt"]) - 1
    sl = slice(30, min(2501, lmax + 1))
    tt = np.max(np.abs(test.cls["tt"][sl] / ref.cls["tt"][sl] - 1))
    ee = np.max(np.abs(test.cls["ee"][sl] / ref.cls["ee"][sl] - 1))
    pp = np.max(np.abs(test.cls["pp"][2:sl.stop] / ref.cls["pp"][2:sl.stop] - 1))
    cv = cmb_chi2_cosmic_variance(test.cls, ref.cls)
    pl = cmb_chi2_cosmic_variance(test.cls, ref.cls, **PLANCK_LIKE)
    line = (f"    {label:<12s} TT {tt:.1e}  EE {ee:.1e}  dchi2 CV {cv:8.3f}  Planck-like {pl:7.3f}")
    if plik is not None:
        line += f"  plik-lite {_plik_distance(plik, test.cls, ref.cls):7.3f}"
    print(line + f"  phiphi {pp:.1e}")


def accuracy(args) -> None:
    import numpy as np

    from cosmopipe.likelihoods.theory.camb_theory import CambSettings, camb_theory

    plik = _plik(args.data_dir)
    req = {"cls": {"lmax": 2508, "lensing": True}, "pk_lin": {"kmax": 5.0, "z": [0.0]}, "rdrag": True}
    k = np.geomspace(1e-3, 5.0, 400)
    for point in EDE_POINTS:
        params = {**PLANCK_BEST, **point}
        native = camb_theory(params, req, CambSettings())
        print(f"EDE {point}, all w_i = -1, tabulated component vs CAMB AxionEffectiveFluid:")
        for label, correction in (("uncorrected", "none"), ("corrected", "difference")):
            t0 = time.perf_counter()
            tab = camb_theory({**params, **_wbins(3)}, req, CambSettings(ede_correction=correction))
            dt = time.perf_counter() - t0
            _compare(label, tab, native, plik)
        pk = np.max(np.abs(tab.pk_lin(k, 0.0) / native.pk_lin(k, 0.0) - 1))
        print(f"    P(k, z=0) max rel {pk:.1e}, sigma8 {tab.sigma8 / native.sigma8 - 1:+.1e}, r_drag "
              f"{tab.rdrag / native.rdrag - 1:+.1e}, theta_* {tab.theta_star / native.theta_star - 1:+.1e}; "
              f"last call {dt:.2f} s")
        ppf = camb_theory({**params, **_wbins(3)}, req, CambSettings(de_perturbations="ppf", ede_correction="none"))
        _compare("PPF uncorr.", ppf, native, plik)
        ppf = camb_theory({**params, **_wbins(3)}, req, CambSettings(de_perturbations="ppf"))
        _compare("PPF corr.", ppf, native, plik)
    print("Transport of the correction away from w = -1 (proxy: c_s^2 = 0.75 fluid as truth, c_s^2 = 1 fluid "
          "corrected with their difference at w = -1):")
    for w in ((-0.9, -0.95, -1.0), (-0.7, -0.8, -0.9), (-0.5, -0.7, -1.0)):
        truth, approx, corrected = proxy_transport({**PLANCK_BEST, **EDE_POINTS[0]}, w)
        print(f"  w = {w}")
        _compare("uncorrected", approx, truth, plik)
        _compare("corrected", corrected, truth, plik)


def proxy_transport(params: dict, w, lmax: int = 2508, cs2_truth: float = 0.75):
    """(truth, uncorrected, corrected) TheoryResults for the proxy test: the 'truth' is the
    tabulated EDE + w component with c_s^2 = cs2_truth, the approximation the same with
    c_s^2 = 1, corrected by ede's correction built from the two at w_i = -1."""
    import camb

    from cosmopipe.likelihoods.theory import ede
    from cosmopipe.likelihoods.base import TheoryResult
    from cosmopipe.likelihoods.theory.camb_theory import (
        CambSettings, _base_params, _camb_params, _cmb_spectra, _parse_requirements, _resolve_settings,
    )

    wp = {f"w_{i + 1}": v for i, v in enumerate(w)}
    settings = _resolve_settings({**params, **wp}, CambSettings())
    base = _base_params(params)
    needs = _parse_requirements({"cls": {"lmax": lmax}})
    model = ede.dark_energy_model({**params, **wp}, settings, base, _camb_params)
    lna, w_eff = model.table
    w_lcdm = model.correct_cls.table[1]

    def table(wtab, cs2):
        de = ede._table_de(lna, wtab, "fluid")
        de.cs2 = cs2
        return de

    def lensed(de):
        from cosmopipe.likelihoods.theory.camb_theory import _configure

        pars = _camb_params(base, settings, de)
        _configure(pars, needs, settings)
        res = camb.get_results(pars)
        return TheoryResult(cls=_cmb_spectra(res, lmax, True)), res

    truth, _ = lensed(table(w_eff, cs2_truth))
    approx, res = lensed(table(w_eff, 1.0))
    corr = ede._Correction(base=dict(base), settings=settings, native=table(w_lcdm, cs2_truth),
                           table=(lna, w_lcdm), make_pars=_camb_params)
    return truth, approx, TheoryResult(cls=corr(approx.cls, needs, res))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    ap.add_argument("--lmax", type=int, default=2508)
    ap.add_argument("--accuracy", action="store_true", help="measure the tabulated component's error instead")
    ap.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA",
                                                         os.path.join(os.path.dirname(__file__), "..", "..",
                                                                      "shared", "data")))
    args = ap.parse_args(argv)
    if args.accuracy:
        accuracy(args)
    else:
        timing(args)


if __name__ == "__main__":
    main()
