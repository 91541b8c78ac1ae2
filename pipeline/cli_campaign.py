"""``cosmopipe run`` and ``cosmopipe status``: workflows and their run directories."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .archive import export_archive
from .campaign_points import campaign_status, sim_path
from .cli import UsageError
from .cluster_jobs import JOBS_FILE, cancel_jobs, job_states, read_jobs

__all__ = ["SUBCOMMANDS"]


def _add_run(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="run a workflow (simulate, train, validate, sample stages)",
        description="Run the stages of a workflow YAML file in pipeline order. Finished work is kept: "
                    "rerunning the same workflow resumes where it stopped.")
    p.add_argument("workflow", type=Path, help="workflow YAML file (see workflows/)")
    p.add_argument("--stage", help="run only this stage")
    p.add_argument("--cluster", help="override the workflow's cluster: local, slurm, pbs or a scheduler "
                                     "address such as tcp://host:8786")
    p.add_argument("--run-dir", type=Path, help="override the workflow's run directory")
    p.add_argument("--dry-run", action="store_true", help="validate the workflow and print the plan; run nothing")
    p.add_argument("--resume", action="store_true", help="continue interrupted chains (sample stage)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-unvalidated", action="store_true",
                   help="sample with an emulator the sample stage's guards refuse (failed validation, box not "
                        "covering a prior, sampled parameter held fixed); recorded as a warning in the summary")
    return p


def _add_status(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("status", help="done / missing / failed simulations of a run directory")
    p.add_argument("run_dir", type=Path, help="run directory of a workflow")
    p.add_argument("--list", action="store_true", help="also list the ids of failed and missing simulations")
    return p


def cmd_status(args: argparse.Namespace) -> int:
    try:
        status = campaign_status(args.run_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print(f"{'design':<12} {'total':>6} {'done':>6} {'missing':>8} {'failed':>7} {'corrupt':>8}")
    for design, st in status.items():
        total = sum(len(st[key]) for key in ("done", "missing", "failed", "corrupt"))
        print(f"{design:<12} {total:>6} {len(st['done']):>6} {len(st['missing']):>8} {len(st['failed']):>7} "
              f"{len(st['corrupt']):>8}")
    for design, st in status.items():
        for sid in st["corrupt"]:
            print(f"corrupt {sid}: {st['reasons'][sid]} (the next run re-simulates it)")
        if st["unverified"]:
            print(f"unverified in {design}: {len(st['unverified'])} file(s) written before checksums "
                  f"(format_version 1), read without a checksum check")
        for sid in st["failed"]:
            path = args.run_dir / "sims" / design / f"{sid}.failed"
            try:
                error = json.loads(path.read_text()).get("error", "")
            except (OSError, ValueError):
                error = "(unreadable failure record)"
            print(f"failed {sid}: {error}  [{path}]")
        if args.list and st["missing"]:
            print(f"missing in {design}: {', '.join(st['missing'])}")
    _print_eta(args.run_dir, status)
    _print_jobs(args.run_dir)
    for path in sorted((args.run_dir / "datasets").glob("*.h5")):
        print(f"dataset: {path}")
    for path in sorted((args.run_dir / "emulators").glob("*.h5")) if (args.run_dir / "emulators").is_dir() else []:
        print(f"emulator: {path}")
    return 0


def _add_cancel(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "cancel", help="cancel a run's SLURM/PBS jobs that are still queued or running",
        description="Cancel the batch jobs recorded in RUN_DIR/jobs.json that the batch system still knows "
                    "(e.g. after the driver was killed). Finished simulations are kept; rerun to resume.")
    p.add_argument("run_dir", type=Path, help="run directory of a workflow")
    return p


def cmd_cancel(args: argparse.Namespace) -> int:
    if not (args.run_dir / JOBS_FILE).is_file():
        raise UsageError(f"{args.run_dir}: no {JOBS_FILE} (this run submitted no SLURM/PBS jobs)")
    try:
        cancelled = cancel_jobs(args.run_dir)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(f"cancelled {len(cancelled)} job(s){': ' + ', '.join(cancelled) if cancelled else ''}")
    return 0


def _print_jobs(run_dir: Path) -> None:
    if not (run_dir / JOBS_FILE).is_file():
        return
    record = read_jobs(run_dir)
    ids = [j["id"] for j in record.get("jobs", [])]
    try:
        states = job_states(record.get("kind", "slurm"), ids)
    except (RuntimeError, OSError) as exc:
        print(f"jobs: {len(ids)} recorded; queue state unknown ({exc})")
        return
    counts = {s: sum(v == s for v in states.values()) for s in sorted(set(states.values()))}
    shown = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "none queued or running"
    print(f"jobs: {len(ids)} submitted; {shown}" + (f" ({', '.join(f'{i} {s.lower()}' for i, s in states.items())})"
                                                   if states else ""))


def _print_eta(run_dir: Path, status: dict) -> None:
    """Remaining time at the rate simulations finished so far (file times)."""
    times = sorted(sim_path(run_dir, d, sid).stat().st_mtime for d, st in status.items() for sid in st["done"])
    left = sum(len(st["missing"]) + len(st["failed"]) for st in status.values())
    if left == 0 or len(times) < 2 or times[-1] <= times[0]:
        return
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"ETA: {left} simulation(s) left at {rate * 3600:.3g} per hour (so far) -> about {left / rate / 60:.1f} min")


def _add_archive(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "archive", help="write a campaign's finished simulations as datasets that can be committed",
        description="Consolidate every design of RUN_DIR (complete, checksum-verified simulations only) into "
                    "OUT/<design>.h5, losslessly and with each run of a pair, without writing into RUN_DIR: "
                    "safe beside a running campaign. A workflow's simulate.seed_from: OUT seeds a new run "
                    "directory from them.")
    p.add_argument("run_dir", type=Path, help="run directory of a workflow with a simulate stage")
    p.add_argument("--out", type=Path, required=True, help="directory for <design>.h5")
    return p


def cmd_archive(args: argparse.Namespace) -> int:
    for design, n in export_archive(args.run_dir, args.out).items():
        print(f"{design}: {n} simulation(s) -> {args.out / (design + '.h5')}")
    return 0


# cmd_run is named, not imported: cli.main imports it when `run` runs (loading a workflow
# imports every stage's module, and with them the likelihoods).
SUBCOMMANDS = {"run": (_add_run, "cosmopipe.pipeline.cmd_run:cmd_run"), "status": (_add_status, cmd_status),
               "cancel": (_add_cancel, cmd_cancel), "archive": (_add_archive, cmd_archive)}
