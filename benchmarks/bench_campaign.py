"""Campaign throughput: 2N small simulations on 2 Dask workers vs N run serially in one process.

    python benchmarks/bench_campaign.py [--n 6] [--particles 32] [--steps 10]

Each simulation runs single-threaded in both cases, so on a 2-core machine
the ideal ratio of throughputs (Dask / serial) is 2.0; the shortfall is the
task overhead (scheduling, process start-up, file writing, consolidation).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402


def workflow(tmp: Path, n: int, particles: int, steps: int) -> Path:
    wf = {
        "name": "bench",
        "run_dir": str(tmp / "run"),
        "cluster": {"local": {"workers": 2, "threads_per_worker": 1}},
        "simulate": {
            "parameters": {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8]},
            "designs": {"train": {"n": n, "seed": 1}},
            "simulation": {"box": 256.0, "particles": particles, "steps": steps, "seed": 3},
            "redshifts": [2.0, 1.0, 0.5, 0.0],
            "threads_per_task": 1,
        },
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6, help="serial simulations (the campaign runs 2N)")
    ap.add_argument("--particles", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()

    from cosmopipe.pipeline.simulate import cosmology_of, design_points
    from cosmopipe.pipeline.workflow import load_workflow, run_workflow
    from cosmopipe.sims.run import run_simulation

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Serial: N simulations, one process, one thread each (after a warm-up for JIT caches).
        wf_serial = load_workflow(workflow(tmp, args.n, args.particles, args.steps))
        settings = wf_serial.stages["simulate"]
        _, values, _ = design_points(settings)["train"]
        run_simulation(cosmology_of(settings, values[0]), settings.sim, progress=False)
        t0 = time.perf_counter()
        for row in values:
            run_simulation(cosmology_of(settings, row), settings.sim, progress=False)
        serial = time.perf_counter() - t0

        # Campaign: 2N simulations on a LocalCluster of 2 single-threaded workers.  Start-up
        # (processes, imports, numba cache loads) is timed apart from the steady-state tasks.
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="4GB",
                               resources={"memory": 4e9, "cores": 1}, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")
        client = Client(cluster)
        warm = [client.submit(run_simulation, cosmology_of(settings, values[0]), settings.sim, False,
                              pure=False, workers=[w]) for w in client.scheduler_info()["workers"]]
        client.gather(warm)
        startup = time.perf_counter() - t0
        wf = load_workflow(workflow(tmp, 2 * args.n, args.particles, args.steps))
        t0 = time.perf_counter()
        run_workflow(wf, progress=False, client=client)
        campaign = time.perf_counter() - t0
        from cosmopipe.sims.dataset import read_dataset

        in_task = float(read_dataset(wf.run_dir / "datasets" / "train.h5").timings.sum())
        client.close()
        cluster.close()

    per_serial = serial / args.n
    per_campaign = campaign / (2 * args.n)
    ratio = (2 * args.n / campaign) / (args.n / serial)
    print(f"machine: {os.cpu_count()} cores")
    print(f"simulation: {args.particles}^3 particles, {args.steps} steps, 4 outputs, 1 thread")
    print(f"serial:   {args.n} sims in {serial:.1f} s ({per_serial:.2f} s/sim)")
    print(f"cluster start-up incl. one warm-up simulation per worker: {startup:.1f} s (once per campaign)")
    print(f"campaign: {2 * args.n} sims on 2 workers in {campaign:.1f} s ({per_campaign:.2f} s/sim, "
          f"task submission, file writing and consolidation included)")
    busy = in_task / (2 * campaign)
    print(f"workers busy simulating {busy:.1%} of the campaign's wall time (sum of the simulations' own "
          f"timings {in_task:.1f} s over 2 x {campaign:.1f} s): the rest is Dask scheduling, file I/O and "
          f"consolidation")
    # Two ways the campaign falls short of 2x: the task overhead proper (scheduling, file I/O,
    # consolidation: wall time in which a worker is not simulating) and the two simulations
    # slowing each other down on shared caches and memory bandwidth (longer in-task times).
    in_task_each = in_task / (2 * args.n)
    overhead = (2 * campaign - in_task) / (2 * args.n)
    print(f"throughput ratio campaign/serial: {ratio:.2f} (ideal 2.00)")
    print(f"task overhead (Dask scheduling, file I/O, consolidation): {overhead:.2f} s per task = "
          f"{overhead / in_task_each:.1%} of a simulation ({overhead / 10:.1%} of a 10 s one)")
    print(f"contention: a simulation takes {in_task_each:.2f} s beside another against {per_serial:.2f} s alone "
          f"({in_task_each / per_serial - 1:+.0%}; shared caches and memory bandwidth, not the pipeline)")


if __name__ == "__main__":
    main()
