"""Time per theory call: the observables emulator (fully emulated from theta_*, and with
CAMB's background from H0) against camb_theory (EDE + 3 w bins), and the time of the six
likelihoods (plik-lite, low-ell TT, lowE, lensing, BAO, Pantheon).

    OMP_NUM_THREADS=1 python benchmarks/bench_ede_emulator.py --emulator obs.h5 [--camb-calls 2]

One thread.  The emulator file comes from ``python -m cosmopipe.likelihoods.theory.observables train``.
"""
import argparse
import os
import time

import numpy as np

from cosmopipe.likelihoods.theory import observables as ob


def _timeit(fn, repeat: int) -> tuple[float, float]:
    """(median, min) seconds per call over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", default=os.environ.get("COSMOPIPE_OBS_EMULATOR", "/work/runs/ede_obs/observables.h5"))
    ap.add_argument("--data-dir", default=os.environ.get("COSMOPIPE_DATA"))
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--camb-calls", type=int, default=2)
    args = ap.parse_args(argv)

    emu = ob.load_observables(args.emulator)
    centre = {k: 0.5 * (lo + hi) for k, lo, hi in zip(emu.names, emu.lower, emu.upper)}
    centre.update(f_EDE=0.08, w_1=-0.95, w_2=-1.05, w_3=-1.0)
    params = {k: v for k, v in centre.items() if k != "theta_star_100"}
    params["H0"] = ob.solve_h0(centre, emu.settings())
    req = ob.likelihood_requirements(emu.lmax)
    likes = ob.planck_bao_sn_likelihoods(args.data_dir)
    nuis = {"A_planck": 1.0}

    emu.theory(params, req)  # warm-up (imports, CAMB library load)
    t_emu, t_emu_min = _timeit(lambda: emu.theory(centre, req), args.repeat)
    theory = emu.theory(centre, req)
    t_h0, _ = _timeit(lambda: emu.theory(params, req), max(args.repeat // 4, 5))
    bg = ob.background(params, emu.settings())
    t_net, _ = _timeit(lambda: emu.theory(params, req, bg=bg), args.repeat)
    t_bg, _ = _timeit(lambda: ob.background(params, emu.settings()), max(args.repeat // 4, 5))
    per_like = {name: _timeit(lambda lk=lk: lk.loglike(theory, nuis), max(args.repeat // 4, 5))[0]
                for name, lk in likes.items()}
    t_like = sum(per_like.values())
    print(f"theory call, fully emulated (theta_* given): median {1e3 * t_emu:.2f} ms (min {1e3 * t_emu_min:.2f} ms)")
    print(f"theory call from H0 (CAMB background + emulated C_ell, sigma8): {1e3 * t_h0:.2f} ms "
          f"(CAMB background {1e3 * t_bg:.2f} ms, emulated part {1e3 * t_net:.2f} ms)")
    for name, t in per_like.items():
        print(f"  loglike {name:28s} {1e3 * t:.3f} ms")
    print(f"six likelihoods: {1e3 * t_like:.2f} ms; emulator + likelihoods: {1e3 * (t_emu + t_like):.2f} ms per point")
    if args.camb_calls:
        from cosmopipe.likelihoods.theory.camb_theory import CambSettings, camb_theory

        settings = CambSettings(**{**ob.DEFAULT_CAMB, **emu.camb})
        full = {"mnu": ob.MNU, **params}
        t_camb, _ = _timeit(lambda: camb_theory(full, req, settings), args.camb_calls)
        cpu0 = time.process_time()
        camb_theory(full, req, settings)
        cpu = time.process_time() - cpu0
        print(f"camb_theory call: median wall {t_camb:.2f} s, CPU {cpu:.2f} s (load average {os.getloadavg()[0]:.1f})")
        print(f"speed-up per point (wall): {t_camb / (t_emu + t_like):.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
