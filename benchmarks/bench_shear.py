"""Cost of one LSST-Y1 cosmic-shear likelihood evaluation, against pyccl.

One evaluation = theory (background, growth, n(z) shifts, lensing and IA
kernels, Limber C_ell for 15 pairs, bin-averaged xi+- in 26 bins: 780 points)
plus chi^2 over the 705 points of the l_max = 3000 cut, on one core, at random
points of the prior.  The power spectrum comes from a fixed HMcode-2020 table
(the fast "table" source; its lookup is part of the timing) or, with
``--emulator PATH``, from ``emulators.load(PATH)`` evaluated at every point.
Target: under 5 ms (an emulated CosmoLike LSST-Y1 pipeline reports ~5 ms), and
at most 1.5 ms with the curved-sky transform (the default since issue 19): its
(ntheta, nnodes) matrices are precomputed, so it costs what the flat-sky one
does; both are timed.  With ``--emulator`` on a hybrid that carries a linear
emulator, the Delta chi^2 per scale cut between the two ``cola_response``
settings (COLA ratio held at its k_max value, or 1 above it) is printed at
w0 = -0.9.

In the same run pyccl computes the same xi+- from the same P(k, z) table and
n(z): Cosmology, tracers, Limber C_ell and FFTLog xi, once with CCL's default
settings at the bin centres and once with the settings the accuracy test
needs (16 angles per bin, denser FFTLog); and once from scratch with CAMB.

    python benchmarks/bench_shear.py [--evals 300] [--emulator PATH]

CCL is flat-sky, so the agreement check uses our flat-sky transform.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, as the target says

import argparse
import time

import numpy as np

TARGET_MS = 5.0
CURVED_TARGET_MS = 1.5


def _random_points(n, rng):
    pts = []
    for _ in range(n):
        p = {"Omega_m": rng.uniform(0.28, 0.36), "A_s": rng.uniform(1.9e-9, 2.3e-9), "h": rng.uniform(0.64, 0.70),
             "n_s": rng.uniform(0.94, 0.98), "Omega_b": rng.uniform(0.045, 0.052), "w0": rng.uniform(-1.2, -0.8),
             "A_IA": rng.uniform(-1, 1.5), "eta_IA": rng.uniform(-2, 2)}
        p.update({f"dz_{i}": rng.normal(0, 0.002) for i in range(1, 6)})
        p.update({f"m_{i}": rng.normal(0, 0.005) for i in range(1, 6)})
        pts.append(p)
    return pts


def _time_loglike(lk, points):
    lk.loglike(None, points[0])  # numba compilation / cache load
    t0 = time.perf_counter()
    for p in points:
        lk.loglike(None, p)
    per = (time.perf_counter() - t0) / len(points)
    t0 = time.perf_counter()
    for p in points:
        lk.model.data_vector(p, strict=False)
    theory = (time.perf_counter() - t0) / len(points)
    return per, theory


def _ccl_xi(model, lnp_table, k, z, cosmo, params, fine: bool):
    """CCL's xi+- for the same n(z), P(k, z) table and nuisances: (seconds, xi+, xi-)."""
    import pyccl as ccl

    from cosmopipe.likelihoods.shear.hankel import ARCMIN
    from cosmopipe.likelihoods.shear.limber import C1_RHO_CRIT

    t0 = time.perf_counter()
    saved = (ccl.spline_params.ELL_MIN_CORR, ccl.spline_params.ELL_MAX_CORR, ccl.spline_params.N_ELL_CORR)
    if fine:
        ccl.spline_params.ELL_MIN_CORR, ccl.spline_params.ELL_MAX_CORR, ccl.spline_params.N_ELL_CORR = 1e-3, 1e6, 100000
    try:
        h = cosmo.h
        cc = ccl.Cosmology(Omega_c=cosmo.Omega_c, Omega_b=cosmo.Omega_b, h=h, n_s=cosmo.n_s, A_s=cosmo.A_s,
                           w0=cosmo.w0, wa=cosmo.wa, m_nu=cosmo.m_nu, mass_split="equal", Neff=3.044, T_CMB=2.7255,
                           transfer_function="eisenstein_hu", matter_power_spectrum="linear")
    finally:
        ccl.spline_params.ELL_MIN_CORR, ccl.spline_params.ELL_MAX_CORR, ccl.spline_params.N_ELL_CORR = saved
    pk = ccl.Pk2D(a_arr=1 / (1 + z[::-1]), lk_arr=np.log(k * h), pk_arr=lnp_table[::-1] - 3 * np.log(h),
                  is_logp=True, extrap_order_lok=1, extrap_order_hik=1)
    _, nuis = model.split(params)
    zf = model.z_fine
    nz = model.shifted_nz(nuis.dz)
    amp = nuis.A_IA * ((1 + zf) / 1.62) ** nuis.eta_IA * C1_RHO_CRIT / (5e-14 * ccl.physical_constants.RHO_CRITICAL)
    tr = [ccl.WeakLensingTracer(cc, dndz=(zf, nz[i]), ia_bias=(zf, amp)) for i in range(model.nbins)]
    if fine:
        ell = np.concatenate([np.geomspace(1.001, 100, 150, endpoint=False), np.geomspace(100, 3e5, 230)])
    else:
        ell = np.unique(np.geomspace(2, 6e4, 200).round())
    cls = [ccl.angular_cl(cc, tr[i], tr[j], ell, p_of_k_a=pk) * (1 + nuis.m[i]) * (1 + nuis.m[j])
           for i, j in model.pairs]
    edges = model.theta_edges * ARCMIN
    if fine:
        x, w = np.polynomial.legendre.leggauss(16)
        theta = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in zip(edges[:-1], edges[1:])])
        wt = w * theta.reshape(-1, 16)
        wt /= wt.sum(1, keepdims=True)
        avg = lambda v: (v.reshape(-1, 16) * wt).sum(1)
    else:
        theta = model.theta * ARCMIN
        avg = lambda v: v
    xp = np.array([avg(ccl.correlation(cc, ell=ell, C_ell=c, theta=np.degrees(theta), type="GG+")) for c in cls])
    xm = np.array([avg(ccl.correlation(cc, ell=ell, C_ell=c, theta=np.degrees(theta), type="GG-")) for c in cls])
    return time.perf_counter() - t0, xp, xm


def _ccl_with_camb(model, cosmo, nz):
    """CCL from scratch: CAMB linear + HMcode inside CCL, then the same xi+- (default settings)."""
    import pyccl as ccl

    t0 = time.perf_counter()
    cc = ccl.Cosmology(Omega_c=cosmo.Omega_c, Omega_b=cosmo.Omega_b, h=cosmo.h, n_s=cosmo.n_s, A_s=cosmo.A_s,
                       w0=cosmo.w0, wa=cosmo.wa, m_nu=cosmo.m_nu, mass_split="equal", Neff=3.044, T_CMB=2.7255,
                       transfer_function="boltzmann_camb", matter_power_spectrum="camb",
                       extra_parameters={"camb": {"halofit_version": "mead2020", "kmax": 20.0}})
    zf = model.z_fine
    tr = [ccl.WeakLensingTracer(cc, dndz=(zf, nz[i])) for i in range(model.nbins)]
    ell = np.unique(np.geomspace(2, 6e4, 200).round())
    from cosmopipe.likelihoods.shear.hankel import ARCMIN

    theta = np.degrees(model.theta * ARCMIN)
    for i, j in model.pairs:
        c = ccl.angular_cl(cc, tr[i], tr[j], ell)
        ccl.correlation(cc, ell=ell, C_ell=c, theta=theta, type="GG+")
        ccl.correlation(cc, ell=ell, C_ell=c, theta=theta, type="GG-")
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=300)
    ap.add_argument("--emulator", default=None, help="emulator file for the emulator power source")
    ap.add_argument("--no-camb", action="store_true", help="skip the CCL-with-CAMB timing")
    args = ap.parse_args(argv)

    from cosmopipe.likelihoods.shear.conventions import Conventions
    from cosmopipe.likelihoods.shear.covariance import gaussian_covariance
    from cosmopipe.likelihoods.shear.likelihood import ShearLikelihood
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.theory.matter_power import EmulatorPower, HMcodePower, TablePower
    from cosmopipe.likelihoods.shear.scalecuts import scale_cut_mask
    from cosmopipe.likelihoods.shear.survey import lsst_y1_survey
    from cosmopipe.sims.cosmology import Cosmology

    cosmo = Cosmology()
    survey = lsst_y1_survey()
    z = np.linspace(0.0, 4.0, 41)
    k = np.geomspace(1e-5, 1e4, 361)
    t0 = time.perf_counter()
    lnp = HMcodePower().log_pk(cosmo, k, z)
    t_camb = time.perf_counter() - t0
    table = TablePower(k=k, z=z, pk=np.exp(lnp), origin="HMcode-2020 at the EE2 reference cosmology")
    t0 = time.perf_counter()
    model = shear_model(survey, table, conventions=Conventions(xi_method="flat"))
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    curved = shear_model(survey, table)
    t_setup_curved = time.perf_counter() - t0
    t0 = time.perf_counter()
    cov = gaussian_covariance(model, {})
    t_cov = time.perf_counter() - t0
    data = model.data_vector({})
    lk = ShearLikelihood(model=model, data=data, cov=cov, mask=scale_cut_mask(model.theta_edges, 15, 3000.0))
    points = _random_points(args.evals, np.random.default_rng(1))

    per, theory = _time_loglike(lk, points)
    lk_curved = ShearLikelihood(model=curved, data=curved.data_vector({}), cov=cov, mask=lk.mask)
    per_c, theory_c = _time_loglike(lk_curved, points)
    print(f"LSST-Y1 cosmic shear: {model.size} xi+- points, {lk.n_points} after the l_max = 3000 cut, one core")
    print(f"  setup: CAMB HMcode table {t_camb:.2f} s, model {t_setup:.2f} s (flat sky), {t_setup_curved:.2f} s "
          f"(curved sky, Legendre weights to l = 1e5), Gaussian covariance {t_cov:.2f} s")
    print(f"  likelihood evaluation (table power, flat sky):   {per * 1e3:7.3f} ms   (target < {TARGET_MS:g} ms)"
          f"   [theory {theory * 1e3:.3f} ms, chi^2 {(per - theory) * 1e3:.3f} ms]")
    print(f"  likelihood evaluation (table power, curved sky): {per_c * 1e3:7.3f} ms   (target <= "
          f"{CURVED_TARGET_MS:g} ms)   [theory {theory_c * 1e3:.3f} ms]")

    if args.emulator:
        probe = EmulatorPower(path=args.emulator)
        modes = [probe.ee2_mode]
        if getattr(probe.emulator, "kind", None) == "hybrid" and probe.ee2_mode == "surrogate":
            modes.append("exact")
        vectors = {}
        for mode in modes:
            source = EmulatorPower(path=args.emulator, emulator=probe.emulator,
                                   **({"ee2": mode} if probe.emulator.kind == "hybrid" else {}))
            emu_model = shear_model(survey, source)
            emu_lk = ShearLikelihood(model=emu_model, data=data, cov=cov, mask=lk.mask)
            # vary only what the emulator varies (the rest must stay at its training values)
            varied = set(getattr(source.emulator, "params", cosmo.names())) | set(emu_model.parameter_names()[8:])
            emu_points = [{n: v for n, v in p.items() if n in varied} for p in points[: max(5, args.evals // 10)]]
            per_emu, theory_emu = _time_loglike(emu_lk, emu_points)
            label = f"emulator {args.emulator}" + (f", EE2 {mode}" if probe.emulator.kind == "hybrid" else "")
            print(f"  likelihood evaluation ({label}): {per_emu * 1e3:7.3f} ms   [theory {theory_emu * 1e3:.3f} ms]")
            vectors[mode] = np.array([emu_model.data_vector(p, strict=False) for p in emu_points])
        if getattr(probe.emulator, "kind", None) == "hybrid" and getattr(probe.emulator, "linear", None):
            _cola_response_impact(args.emulator, probe.emulator, survey, cov, model.theta_edges)
        if len(vectors) == 2:
            # the surrogate's cost in data units: Delta chi^2 between the two theory vectors
            d = (vectors["surrogate"] - vectors["exact"])[:, lk.mask]
            icov = np.linalg.inv(cov[np.ix_(lk.mask, lk.mask)])
            dchi2 = np.einsum("ni,ij,nj->n", d, icov, d)
            print(f"  EE2 surrogate vs exact EE2, Delta chi^2 at {len(d)} points (l_max = 3000 cut): "
                  f"median {np.median(dchi2):.3g}, max {dchi2.max():.3g}")

    # agreement at one representative point: a different cosmology from the table's, IA, shifts, biases
    params = {"Omega_m": 0.30, "h": 0.70, "A_IA": 0.5, "eta_IA": 1.0, "dz_2": 0.01, "dz_4": -0.02,
              "m_3": 0.02, "m_5": -0.01}
    xp, xm = model.xi(params)
    point_cosmo, _ = model.split(params)
    t_fast, _, _ = _ccl_xi(model, lnp, k, z, point_cosmo, params, fine=False)
    t_fine, fxp, fxm = _ccl_xi(model, lnp, k, z, point_cosmo, params, fine=True)
    print(f"  pyccl, same P(k) table, default settings, xi at bin centres: {t_fast * 1e3:8.1f} ms "
          f"({t_fast / per:.0f}x ours)")
    print(f"  pyccl, same P(k) table, 16 angles per bin, dense FFTLog:      {t_fine * 1e3:8.1f} ms "
          f"({t_fine / per:.0f}x ours)")
    if not args.no_camb:
        t_camb_ccl = _ccl_with_camb(model, cosmo, model.shifted_nz(np.zeros(model.nbins)))
        print(f"  pyccl from scratch (CAMB + HMcode inside CCL), default settings: {t_camb_ccl:8.2f} s")

    print("  agreement with pyccl (bin-averaged, dense settings), max |dxi/xi| per pair [%], points with |xi| >= sigma:")
    sigma = np.sqrt(np.diag(cov)).reshape(2, 15, 26)
    for name, ours, ref, sig in (("xi+", xp, fxp, sigma[0]), ("xi-", xm, fxm, sigma[1])):
        rel = np.abs(ours / ref - 1)
        signal = np.abs(ref) >= sig
        per_pair = np.where(signal, rel, 0).max(1) * 100
        print(f"    {name}: " + " ".join(f"{v:.3f}" for v in per_pair) + f"   (max {per_pair.max():.3f} %; "
              f"{(~signal).sum()} points below 1 sigma, there max |dxi|/sigma = "
              f"{(np.abs(ours - ref) / sig)[~signal].max() if (~signal).any() else 0:.1e})")
    print(f"  target (table power) {'met' if per * 1e3 < TARGET_MS else 'NOT MET'}; curved sky "
          f"{'met' if per_c * 1e3 <= CURVED_TARGET_MS else 'NOT MET'}")


def _cola_response_impact(path, emulator, survey, cov, edges):
    """Delta chi^2 per scale cut between cola_response 'constant' and 'unity' at w0 = -0.9."""
    from cosmopipe.likelihoods.shear.conventions import Conventions
    from cosmopipe.likelihoods.shear.limber import shear_model
    from cosmopipe.likelihoods.shear.modelvector import delta_chi2_by_cut
    from cosmopipe.likelihoods.theory.matter_power import EmulatorPower

    point = {"w0": -0.9}
    vec = {}
    for response in ("constant", "unity"):
        src = EmulatorPower(path=path, emulator=emulator, cola_response=response)
        vec[response] = shear_model(survey, src, conventions=Conventions(cola_response=response)).data_vector(
            point, strict=False)
    res = delta_chi2_by_cut(vec["constant"], vec["unity"], cov, edges, len(survey.pairs))
    print(f"  COLA response above k_max = {emulator.cola.k_range[1]:g} h/Mpc, constant vs 1, w0 = -0.9, "
          "Delta chi^2: " + ", ".join(f"{k} {v[1]:.3g}" for k, v in res.items()))


if __name__ == "__main__":
    main()
