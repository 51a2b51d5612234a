"""PGD's cost per image in image-gradients (one forward and backward pass of one image): a measure
that does not depend on the machine or its load, beside the wall time and the robust accuracy.

Runs, on the first ``--n`` test images of a trained model (reloaded or trained as ``bench run``
does) at one ``--eps``, the protocol's PGD (quick: two APGD-CE runs, then APGD-T's 9 targets in
logit order) and the same PGD with the targets proposed for the next version (4, in MALT's
order), and prints one JSON line each.

    python benchmarks/pgd_cost.py --n 100 --eps 0.05
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import torch

import bench.attacks.gradient as gradient
from bench.pipeline import make_attack
from common import attacked_model_and_images

PROPOSED = {"targets": 4, "target_order": "malt"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--defense", default="baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    args = ap.parse_args()
    protocol, model, x, y, device = attacked_model_and_images(args.protocol, args.defense, args.seed, args.n, args.checkpoints)
    current = make_attack(protocol, "pgd")
    proposed = type(current)("pgd", "linf", {**current.params, **PROPOSED})
    counted = {"images": 0}
    original = gradient.input_gradient

    def counting(model, x_adv, *rest, **kw):
        counted["images"] += len(x_adv)
        return original(model, x_adv, *rest, **kw)

    with mock.patch.object(gradient, "input_gradient", counting):
        for name, attack in (("protocol", current), ("proposed targets", proposed)):
            counted["images"] = 0
            t0 = time.perf_counter()
            x_adv = attack.perturb(model, x, y, args.eps, torch.Generator(device=device).manual_seed(args.seed))
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                accuracy = (model(x_adv).argmax(1) == y).float().mean().item()
            print(json.dumps({"pgd": name, "params": {k: attack.params[k] for k in ("restarts", "targets", "target_order")},
                              "eps": args.eps, "n": args.n, "robust_accuracy": accuracy, "image_gradients": counted["images"],
                              "seconds": round(seconds, 1), "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
