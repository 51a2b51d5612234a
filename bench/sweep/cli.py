"""``bench sweep GRID``: run a grid file's jobs on an executor, then print the summary table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a sweep runs, not whenever the `bench` parser is built
    from bench.sweep.grid import Grid
    from bench.sweep.jobs import Target
    from bench.sweep.sweep import SweepReport

GRID_EXAMPLE = """\
grid file (YAML):
  protocol: quick                # shipped name, or a path relative to this file
  overrides: [training.epochs=2] # optional, applied to every job
  defenses:                      # a list of names, or a mapping for hyperparameter grids
    baseline:                    #   nothing swept
    pixel_sim:                   #   every combination: 4 variants
      alpha: [1.0, 4.0]          #   -> --set defenses.pixel_sim.alpha=...
      n_images: [500, 2000]
  seeds: [0, 1]                  # optional, default: the protocol's
  attacks: [fgsm, pgd]           # optional, default: the protocol's
  executor: local                # optional: local (default), serial, ray
  workers: 2                     # optional, default: the cores (local), the cluster's CPUs (ray)
"""


def add_parser(subparsers: argparse._SubParsersAction, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``sweep`` on the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "sweep", parents=[common_parent], help="run a grid file: every defense x hyperparameter x seed x attack, in parallel",
        description="Run every (defense variant, seed) job of a grid file that lacks records, each job training its\n"
                    "model once and running all attacks on it; print progress and a summary table. A rerun\n"
                    "resumes an interrupted sweep; exit status 2 when any job failed.",
        epilog=GRID_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", type=Path, help="the grid file (YAML), format below")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="folder for model checkpoints (default: ./checkpoints)")
    p.add_argument("--device", default=None, help="torch device of every job, e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--executor", default=None, help="local, serial or ray; overrides the grid file's executor")
    p.add_argument("--workers", type=int, default=None, help="jobs at a time; overrides the grid file's workers")
    p.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores // workers)")
    p.add_argument("--dry-run", action="store_true", help="validate the grid and list the jobs and what each lacks; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress lines and no table; failures are still reported")
    p.add_argument("--verbose", action="store_true", help="also the progress output of `bench run` from every job")
    return p


def _dry_run(grid: Grid, target: Target) -> None:
    from bench.sweep.sweep import plan

    the_plan = plan(grid, target)
    todo = {job.label for job in the_plan.todo}
    print(f"sweep {grid.source}: {len(the_plan.jobs)} job(s), {len(todo)} with missing records; executor {grid.executor}")
    for job in the_plan.jobs:
        missing = job.pending_attacks() if job.label in todo else []
        print(f"  {job.label}: " + (f"to run ({', '.join(missing)})" if missing else "complete"))
    for model in the_plan.shared:
        print(f"  trained first: {model.label}")


def run(args: argparse.Namespace) -> SweepReport | None:
    """Validate the grid (all of it, before any work), run the sweep and print its outcome; returns the
    :class:`~bench.sweep.sweep.SweepReport` (None for ``--dry-run``)."""
    from bench.pipeline import parse_device
    from bench.sweep.executors import EXECUTORS, make_executor
    from bench.sweep.grid import load_grid
    from bench.sweep.jobs import Target
    from bench.sweep.sweep import run_sweep

    grid = load_grid(args.grid, list(EXECUTORS))
    parse_device(args.device)  # refuse an unusable device here, not once per job
    target = Target(args.results.resolve(), args.checkpoints.resolve(), args.device, tuple(args.plugin), os.getcwd(), args.verbose)
    echo = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    if args.dry_run:
        _dry_run(grid, target)
        return None
    workers = args.workers if args.workers is not None else grid.workers
    with make_executor(args.executor or grid.executor, workers, args.threads) as executor:
        report = run_sweep(grid, target, executor, echo)
    echo("")
    echo(report.table.rstrip())
    echo("")
    echo(f"{report.total} job(s): {len(report.skipped)} already complete, {len(report.results) - len(report.failed)} run, "
         f"{len(report.failed)} failed; {len(report.records)} record(s) under {args.results}")
    for result in report.failed:
        print(f"FAILED {result.label}: {result.error}", file=sys.stderr)
        if args.debug and result.traceback:
            print(result.traceback, file=sys.stderr)
    return report

