"""The same sweep through the local process pool and through Ray: wall time of each, and
whether the two wrote identical records (volatile fields aside: bench.records.compare).

Default grid: sweeps/all-defenses-3-seeds.yaml (every built-in defense x 3 seeds). Each
executor writes into its own fresh results and checkpoint folders, with one torch thread per
job so the two compute the same floating-point operations. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from bench.cli import main as bench_main
from bench.records.compare import comparable_records, differences

ROOT = Path(__file__).resolve().parent.parent


def run_sweep(grid: Path, executor: str, folder: Path, workers: int) -> dict:
    results, checkpoints = folder / "results", folder / "checkpoints"
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = bench_main(["sweep", str(grid), "--executor", executor, "--workers", str(workers), "--threads", "1",
                             "--results", str(results), "--checkpoints", str(checkpoints)])
    seconds = time.perf_counter() - t0
    summary = [line for line in out.getvalue().splitlines() if "job(s):" in line]
    return {"status": status, "seconds": round(seconds, 1), "summary": summary[-1] if summary else err.getvalue()[-500:],
            "records": comparable_records(results, checkpoints)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=Path, default=ROOT / "sweeps" / "all-defenses-3-seeds.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executors", nargs="+", default=["local", "ray"])
    ap.add_argument("--keep", type=Path, default=None, help="write the folders here instead of a temporary folder")
    args = ap.parse_args()
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-sweep-executors-"))
    runs = {name: run_sweep(args.grid, name, root / name, args.workers) for name in args.executors}
    first, *others = args.executors
    print(json.dumps({
        "grid": str(args.grid), "cores": os.cpu_count(), "workers": args.workers, "torch": torch.__version__,
        "runs": {name: {k: v for k, v in run.items() if k != "records"} | {"n_records": len(run["records"])} for name, run in runs.items()},
        "identical_to_" + first: {name: differences(runs[first]["records"], runs[name]["records"]) == [] for name in others},
        "differences": {name: differences(runs[first]["records"], runs[name]["records"])[:20] for name in others},
    }, indent=1))


if __name__ == "__main__":
    main()
