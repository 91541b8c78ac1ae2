"""Wall time and peak memory of one COLA run, against FML's COLA solver in the same run.

The issue's reference configuration: 128^3 particles, 256^3 force mesh, 25
steps from z = 19 to 0 in a 512 Mpc/h box, on 2 cores.  Figures measured on
this machine class when the issue was filed: FML's COLA solver 47.3 s with 2
MPI ranks, pmwd (JAX, CPU) about 64 s.  Target (issue 17 item 5): at most 0.25x
FML's wall time, peak memory not above 2 GB.

    python benchmarks/bench_cola.py [--particles 128] [--mesh 256] [--steps 25] [--box 512]
    python benchmarks/bench_cola.py --fml "mpirun --allow-run-as-root -np 2 nbody_mpi bench.lua" \
        --fml-dir /work/fml [--pairs 3]

With ``--fml`` the two codes run alternately (``--pairs`` times each, ours first)
and the medians and their ratio are printed: side by side, so that the machine's
load affects both alike.  FML is not a dependency; build it yourself (its
parameter file must describe the same run).

Prints the measured figures, the per-stage split and the ratios, and the
cost per particle per step that `cosmopipe run --dry-run` extrapolates from.
"""
from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import time

REFERENCE_SECONDS = {"FML COLA (issue, 2 MPI ranks)": 47.3, "pmwd (JAX CPU)": 64.0}
TARGET_FML_RATIO = 0.25
TARGET_PEAK_GB = 2.0


def _run_measured(cmd: list[str], cwd: str) -> tuple[float, int]:
    """Wall time [s] of ``cmd`` and the peak summed RSS [bytes] of its process tree
    (mpirun and its ranks), sampled every 0.5 s.  RUSAGE_CHILDREN cannot give this:
    it reports the largest single process, and a forked child starts with this
    process's own RSS."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    tree = psutil.Process(proc.pid)
    while True:
        try:
            procs = [tree, *tree.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.pid != os.getpid()))
        except psutil.Error:  # a process ended between listing and reading
            pass
        try:
            proc.wait(timeout=0.5)  # returns the moment it ends: the wall time is not rounded up
            break
        except subprocess.TimeoutExpired:
            continue
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return seconds, peak


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=128)
    ap.add_argument("--mesh", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--box", type=float, default=512.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fml", help="command line of FML's COLA solver for the same run (run side by side)")
    ap.add_argument("--fml-dir", default=".", help="working directory of the FML command")
    ap.add_argument("--pairs", type=int, default=3, help="alternating (ours, FML) pairs with --fml")
    args = ap.parse_args(argv)

    from cosmopipe.sims import Cosmology, SimConfig, run_simulation

    config = SimConfig(box=args.box, particles=args.particles, mesh=args.mesh, steps=args.steps, z_init=19.0,
                       z_out=(0.0,), threads=args.threads)
    # Warm-up on a tiny grid: numba compilation and FFTW planning are one-off costs.
    run_simulation(Cosmology(), SimConfig(box=64.0, particles=8, mesh=16, steps=2, threads=args.threads),
                   progress=False)
    ours, fml, fml_peak = [], [], 0
    for _ in range(args.pairs if args.fml else 1):
        t0 = time.perf_counter()
        result = run_simulation(Cosmology(), config, progress=False)
        ours.append(time.perf_counter() - t0)
        if args.fml:
            seconds, peak = _run_measured(shlex.split(args.fml), args.fml_dir)
            fml.append(seconds)
            fml_peak = max(fml_peak, peak)
    wall = statistics.median(ours)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB

    per_particle_step = wall / (args.particles**3 * args.steps)
    print(f"COLA run: {args.particles}^3 particles, {args.mesh}^3 mesh, {args.steps} steps, "
          f"box {args.box:g} Mpc/h, {args.threads} threads")
    print(f"  wall time      {wall:8.2f} s   (median of {len(ours)}: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"  peak memory    {peak_gb:8.2f} GB  (target < {TARGET_PEAK_GB:g} GB; process max RSS)")
    print(f"  cost           {per_particle_step * 1e9:8.1f} ns per particle per step")
    for stage, seconds in result.timings.items():
        print(f"    {stage:<14s} {seconds:8.2f} s")
    if fml:
        fml_wall = statistics.median(fml)
        fml_gb = fml_peak / 1e9
        ratio = wall / fml_wall
        print(f"  FML, same run  {fml_wall:8.2f} s   (median of {len(fml)}: {', '.join(f'{t:.2f}' for t in fml)}; "
              f"peak {fml_gb:.2f} GB, all ranks)")
        print(f"  ours / FML     {ratio:8.2f}x  (target <= {TARGET_FML_RATIO:g}x)")
        ok = ratio <= TARGET_FML_RATIO and peak_gb < TARGET_PEAK_GB
    else:
        for name, ref in REFERENCE_SECONDS.items():
            print(f"  vs {name:<30s} {wall / ref:6.2f}x  ({ref:g} s, not measured in this run)")
        ok = wall <= TARGET_FML_RATIO * REFERENCE_SECONDS["FML COLA (issue, 2 MPI ranks)"] and peak_gb < TARGET_PEAK_GB
    print("  targets met" if ok else "  TARGETS NOT MET")


if __name__ == "__main__":
    main()
