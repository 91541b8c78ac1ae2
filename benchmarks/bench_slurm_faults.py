"""A campaign of tiny simulations on a real SLURM with faults: 2 jobs scancelled, workers retiring after 90 s.

    sudo .ci/slurm                                    # a local SLURM, if none is running
    .venv/bin/python benchmarks/bench_slurm_faults.py [--n 20] [--lifetime 90s] [--scancels 2]

Prints the wall time, the jobs submitted and cancelled, and whether every
simulation is present exactly once (complete file, one 'done' in the log).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def workflow(tmp: Path, n: int, lifetime: str) -> Path:
    wf = {
        "name": "bench_slurm", "run_dir": str(tmp / "run"),
        "cluster": {"slurm": {"cores": 1, "memory": "1500MB", "walltime": "00:30:00", "job_name": "cp-bench",
                              "log_directory": str(tmp / "logs"), "worker_lifetime": lifetime,
                              "worker_lifetime_stagger": "10s", "death_timeout": 10,
                              "adaptive": {"minimum": 1, "maximum": 2}}},
        "simulate": {
            "parameters": {"Omega_m": [0.26, 0.36], "w0": [-1.2, -0.8]}, "fixed": {"h": 0.67, "wa": 0.0},
            "designs": {"train": {"n": n, "seed": 3}},
            "simulation": {"box": 128.0, "particles": 16, "steps": 4, "z_init": 9.0, "seed": 5},
            "redshifts": [0.0], "k": {"max": 0.35, "n": 6}, "retries": 3,
        },
    }
    path = tmp / "bench_slurm.yaml"
    path.write_text(yaml.safe_dump(wf))
    return path


def done_ids(log: Path, kind: str = "done|skipped") -> list[str]:
    """Ids whose task reported finishing ('skipped': a moved task found its file already complete)."""
    return re.findall(rf"(train-\d{{4}}) (?:{kind}) on ", log.read_text()) if log.is_file() else []


def running_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", "cp-bench", "-t", "RUNNING", "-o", "%i"], capture_output=True,
                         text=True, timeout=30)
    return sorted(out.stdout.split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--lifetime", default="90s")
    ap.add_argument("--scancels", type=int, default=2)
    args = ap.parse_args()
    from cosmopipe.sims.io import is_complete

    tmp = Path(tempfile.mkdtemp(prefix="bench_slurm_"))
    log = tmp / "run" / "run.log"
    t0 = time.time()
    driver = subprocess.Popen([sys.executable, "-m", "cosmopipe", "run", str(workflow(tmp, args.n, args.lifetime)),
                               "--no-progress"], cwd=REPO, stdout=open(tmp / "driver.out", "w"),
                              stderr=subprocess.STDOUT)
    # Cancel a running job after the first done simulation, and again at every n/(scancels+1) more.
    cancelled: list[str] = []
    marks = [1 + i * args.n // (args.scancels + 1) for i in range(args.scancels)]
    while driver.poll() is None and time.time() - t0 < 1800:
        jobs = running_jobs()
        if marks and len(done_ids(log)) >= marks[0] and jobs:
            subprocess.run(["scancel", jobs[0]], check=True, timeout=30)
            cancelled.append(jobs[0])
            print(f"{time.time() - t0:6.1f} s: scancel {jobs[0]} after {len(done_ids(log))} simulations", flush=True)
            marks.pop(0)
        time.sleep(1)
    if driver.poll() is None:
        driver.kill()
    wall = time.time() - t0
    ids = done_ids(log)
    files = sorted((tmp / "run" / "sims" / "train").glob("*.h5"))
    expected = {f"train-{i:04d}" for i in range(args.n)}
    jobs = [j["id"] for j in json.loads((tmp / "run" / "jobs.json").read_text())["jobs"]]
    retired = len(re.findall(r"lifetime", "".join(p.read_text(errors="replace")
                                                  for p in (tmp / "logs").glob("*.out"))))
    print(f"driver exit code: {driver.returncode}")
    print(f"wall time: {wall:.1f} s for {args.n} simulations; worker lifetime {args.lifetime}")
    print(f"jobs submitted: {len(jobs)} ({', '.join(jobs)}); scancelled: {', '.join(cancelled) or 'none'}")
    print(f"worker log lines mentioning the lifetime: {retired}")
    print(f"result files: {len(files)}, complete: {sum(is_complete(f) for f in files)}, "
          f"ids as expected: {({f.stem for f in files}) == expected}")
    dup = sorted({i for i in ids if ids.count(i) > 1})
    print(f"finished tasks: {len(ids)} ({len(done_ids(log, 'done'))} simulated, {len(done_ids(log, 'skipped'))} "
          f"found their file complete after a move); reported more than once: {dup or 'none'}; "
          f"never: {sorted(expected - set(ids)) or 'none'}")
    ok = driver.returncode == 0 and len(files) == args.n and not dup and set(ids) == expected
    print(f"all {args.n} results present exactly once: {ok}  (run directory {tmp})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
