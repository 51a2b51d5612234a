"""Cost of a 10-eps accuracy curve relative to a single eps, in one run.

Compares, on the quick protocol's small CNN: foolbox's LinfPGD given 10 epsilons (it attacks
afresh per eps), the harness in ``independent`` mode (the same, plus the per-eps checks),
the harness in ``survivors`` mode (each eps attacks only the examples the previous eps
left), and a minimal-norm attack (FMN: one run gives the whole curve). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import device_name, timed, trained_small_cnn  # noqa: E402

from bench.attacks.gradient import PGD  # noqa: E402
from bench.evaluation import evaluate_attack  # noqa: E402
from bench.registry import ATTACKS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, x, y = trained_small_cnn(device)
    x, y = x[: args.n], y[: args.n]
    grid = [0.03 * i for i in range(1, 11)]
    one = [0.15]
    pgd = PGD("pgd", "linf", {"steps": args.steps, "rel_stepsize": 0.1, "restarts": 1, "random_start": True})
    fmn = ATTACKS.create("fmn", steps=100)

    def harness(curve, eps):
        return lambda: evaluate_attack(model, pgd, x, y, eps, args.n, 0, curve=curve)

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)
    fb_pgd = fb.attacks.LinfPGD(steps=args.steps, rel_stepsize=0.1)
    seconds = {
        "foolbox_1_eps": timed(lambda: fb_pgd(fmodel, x, y, epsilons=one), args.repeats),
        "foolbox_10_eps": timed(lambda: fb_pgd(fmodel, x, y, epsilons=grid), args.repeats),
        "harness_independent_1_eps": timed(harness("independent", one), args.repeats),
        "harness_independent_10_eps": timed(harness("independent", grid), args.repeats),
        "harness_survivors_10_eps": timed(harness("survivors", grid), args.repeats),
        "fmn_whole_curve": timed(lambda: evaluate_attack(model, fmn, x, y, grid, args.n, 0), args.repeats),
    }
    base = seconds["harness_independent_1_eps"]
    print(json.dumps({
        "device": device_name(device), "threads": args.threads, "n": args.n, "steps": args.steps, "grid": grid,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "ratio_to_one_eps": {
            "foolbox_10_eps": round(seconds["foolbox_10_eps"] / seconds["foolbox_1_eps"], 2),
            "harness_independent_10_eps": round(seconds["harness_independent_10_eps"] / base, 2),
            "harness_survivors_10_eps": round(seconds["harness_survivors_10_eps"] / base, 2),
            "fmn_whole_curve": round(seconds["fmn_whole_curve"] / base, 2),
        },
    }, indent=1))


if __name__ == "__main__":
    main()
