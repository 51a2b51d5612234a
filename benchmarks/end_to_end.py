"""End-to-end wall time of `bench run` on a protocol, from fresh folders, as a user runs it.

Two jobs, each a separate `bench` process in its own fresh results and checkpoint folders:
the README's main job (`bench run --defense baseline --attack pgd`: training + one attack)
and the full default suite (`bench run --defense baseline`: every attack the protocol lists,
including the transfer surrogate's training). Prints JSON: wall seconds, peak memory of the
process, training seconds, and each attack's seconds as its record holds them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bench_run(args: list[str], folder: Path, threads: int) -> dict:
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GIT_PYTHON_REFRESH": "quiet"}
    cmd = [str(Path(sys.executable).parent / "bench"), "run", *args, "--results", str(folder / "results"), "--checkpoints", str(folder / "checkpoints")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    records = [r for r in (json.loads(p.read_text()) for p in sorted((folder / "results").rglob("*.json"))) if "attack" in r]
    train = {f'{r["defense"]["name"]} seed {r["seed"]}': r["timings"]["train_seconds"] for r in records}
    return {
        "command": "bench run " + " ".join(args),
        "wall_seconds": round(seconds, 1),
        "peak_rss_mb": round(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024),
        "train_seconds": {k: round(v, 1) for k, v in train.items()},
        "attack_seconds": {r["attack"]["name"]: round(r["timings"]["attack_seconds"], 1) for r in records},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", choices=["main", "suite"], default=None, help="run one of the two jobs")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-end-to-end-"))
    jobs = {"main": ["--defense", "baseline", "--attack", "pgd"], "suite": ["--defense", "baseline"]}
    out = {"protocol": args.protocol, "cores": os.cpu_count(), "threads": args.threads}
    for name, job in jobs.items():
        if args.only in (None, name):
            out[name] = bench_run([*job, "--protocol", args.protocol], root / name, args.threads)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
