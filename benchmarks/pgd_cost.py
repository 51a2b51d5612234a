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
from bench.data.base import to_float
from bench.defenses.base import attack_view
from bench.pipeline import Settings, load_data, make_attack, make_defense, obtain_model
from bench.protocol import load_protocol

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
    protocol = load_protocol(args.protocol)
    data = load_data(protocol)
    settings = Settings(checkpoint_dir=args.checkpoints, progress=False, precision="fp32")
    device = settings.resolved_device()
    ready = obtain_model(protocol, make_defense(protocol, args.defense), data, args.seed, settings)
    model = attack_view(ready.pipeline).eval()
    x = to_float(data.dataset.test_x[: args.n], device)
    y = data.dataset.test_y[: args.n].to(device)
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
