"""Cost of a 10-eps accuracy curve relative to a single eps, in one run.

Compares, on the quick protocol's small CNN: foolbox's LinfPGD given 10 epsilons (it attacks
afresh per eps), and the harness's PGD in its three curve modes: ``independent`` (every eps
afresh, plus the per-eps checks), ``survivors`` (each eps attacks only what the previous eps
left) and ``descending`` (largest eps first, each smaller eps warm-started from the larger
one's adversarial examples), plus a minimal-norm attack (FMN: one run gives the whole curve).

"One eps" is measured three ways, because the harness's PGD stops early on fooled examples
and a single eps's cost then depends on the eps: the mean over the grid's eps (the
independent curve's time / 10), the middle eps alone, and the middle eps without early stop
(what a fixed-step PGD, like foolbox's, pays). Each curve's largest deviation from the
independent worst-case curve is printed beside its cost. Prints JSON.
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
from bench.catalog import ATTACKS  # noqa: E402


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
    grid = [round(0.03 * i, 2) for i in range(1, 11)]
    middle = [0.15]
    params = {"steps": args.steps, "rel_stepsize": 0.1, "restarts": 1, "random_start": True}
    pgd = PGD("pgd", "linf", params)
    pgd_fixed = PGD("pgd", "linf", {**params, "early_stop": False})
    fmn = ATTACKS.create("fmn", steps=100)
    curves: dict[str, list[float]] = {}

    def harness(curve, eps, attack=pgd, key=None):
        def go():
            out = evaluate_attack(model, attack, x, y, eps, args.n, 0, curve=curve)
            if key:
                curves[key] = [round(a, 4) for a in out.robust_accuracy().values()]
        return go

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)
    fb_pgd = fb.attacks.LinfPGD(steps=args.steps, rel_stepsize=0.1)
    seconds = {
        "foolbox_1_eps": timed(lambda: fb_pgd(fmodel, x, y, epsilons=middle), args.repeats),
        "foolbox_10_eps": timed(lambda: fb_pgd(fmodel, x, y, epsilons=grid), args.repeats),
        "harness_1_eps_middle": timed(harness("independent", middle), args.repeats),
        "harness_1_eps_middle_no_early_stop": timed(harness("independent", middle, pgd_fixed), args.repeats),
        "harness_independent_10_eps": timed(harness("independent", grid, key="independent"), args.repeats),
        "harness_survivors_10_eps": timed(harness("survivors", grid, key="survivors"), args.repeats),
        "harness_descending_10_eps": timed(harness("descending", grid, key="descending"), args.repeats),
        "fmn_whole_curve": timed(harness("independent", grid, fmn, key="fmn"), args.repeats),
    }
    references = {
        "mean_single_eps": seconds["harness_independent_10_eps"] / len(grid),
        "middle_eps": seconds["harness_1_eps_middle"],
        "middle_eps_no_early_stop": seconds["harness_1_eps_middle_no_early_stop"],
    }
    ours = ("harness_independent_10_eps", "harness_survivors_10_eps", "harness_descending_10_eps", "fmn_whole_curve")
    print(json.dumps({
        "device": device_name(device), "threads": args.threads, "n": args.n, "steps": args.steps, "grid": grid,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "foolbox_10_eps_over_1_eps": round(seconds["foolbox_10_eps"] / seconds["foolbox_1_eps"], 2),
        "ratio_to_one_eps": {ref: {k: round(seconds[k] / t, 2) for k in ours} for ref, t in references.items()},
        "robust_accuracy": curves,
        "max_abs_deviation_from_independent": {
            k: round(max(abs(a - b) for a, b in zip(c, curves["independent"])), 4) for k, c in curves.items() if k != "independent"
        },
    }, indent=1))


if __name__ == "__main__":
    main()
