"""Wall time and peak memory of one COLA run, against the reference codes.

The issue's reference configuration: 128^3 particles, 256^3 force mesh, 25
steps from z = 19 to 0 in a 512 Mpc/h box, on 2 cores.  Reference figures
on this machine class: FML's COLA solver about 47 s, pmwd (JAX, CPU) about
64 s.  Target: under 25 s (2x faster than FML) with peak memory under 2 GB.

    python benchmarks/bench_cola.py [--particles 128] [--mesh 256] [--steps 25] [--box 512]

Prints the measured figures, the per-stage split and the ratios, and the
cost per particle per step that `cosmopipe run --dry-run` extrapolates from.
"""
from __future__ import annotations

import argparse
import resource
import time

REFERENCE_SECONDS = {"FML COLA": 47.0, "pmwd (JAX CPU)": 64.0}
TARGET_SECONDS = 25.0
TARGET_PEAK_GB = 2.0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=128)
    ap.add_argument("--mesh", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--box", type=float, default=512.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    from cosmopipe.sims import Cosmology, SimConfig, run_simulation

    config = SimConfig(box=args.box, particles=args.particles, mesh=args.mesh, steps=args.steps, z_init=19.0,
                       z_out=(0.0,), threads=args.threads)
    # Warm-up on a tiny grid: numba compilation and FFTW planning are one-off costs.
    run_simulation(Cosmology(), SimConfig(box=64.0, particles=8, mesh=16, steps=2, threads=args.threads),
                   progress=False)
    t0 = time.perf_counter()
    result = run_simulation(Cosmology(), config, progress=False)
    wall = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB

    per_particle_step = wall / (args.particles**3 * args.steps)
    print(f"COLA run: {args.particles}^3 particles, {args.mesh}^3 mesh, {args.steps} steps, "
          f"box {args.box:g} Mpc/h, {args.threads} threads")
    print(f"  wall time      {wall:8.2f} s   (target < {TARGET_SECONDS:g} s)")
    print(f"  peak memory    {peak_gb:8.2f} GB  (target < {TARGET_PEAK_GB:g} GB; process max RSS)")
    print(f"  cost           {per_particle_step * 1e9:8.1f} ns per particle per step")
    for stage, seconds in result.timings.items():
        print(f"    {stage:<14s} {seconds:8.2f} s")
    for name, ref in REFERENCE_SECONDS.items():
        print(f"  speed-up vs {name:<16s} {ref / wall:6.2f}x  ({ref:g} s)")
    ok = wall < TARGET_SECONDS and peak_gb < TARGET_PEAK_GB
    print("  targets met" if ok else "  TARGETS NOT MET")


if __name__ == "__main__":
    main()
