"""Which target classes PGD's targeted runs should aim at: the logit order against MALT's, measured against all of them.

On the first ``--n`` test images of a trained model (reloaded or trained as ``bench run``
does), at each ``--eps``: two untargeted APGD-CE runs (``pgd`` with the ``adaptive`` schedule),
then, on every image they leave, one targeted DLR run toward each wrong class in turn (100
steps, its own random start). Prints, per eps, how many of the images some target breaks are
already broken by the first k targets of each order (``logits``: the most likely wrong
classes, APGD-T's choice; ``malt``: the nearest boundary by MALT's linear estimate), for k = 1
to 9, and the seconds spent. One JSON line per eps.

    python benchmarks/target_order.py --defense baseline --eps 0.1 --eps 0.15
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import torch

import bench.attacks.gradient as gradient
from bench.registry import ATTACKS
from common import attacked_model_and_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--defense", default="baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--eps", type=float, action="append", required=True)
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    args = ap.parse_args()
    protocol, model, x, y, device = attacked_model_and_images(args.protocol, args.defense, args.seed, args.n, args.checkpoints)
    threat = gradient.THREAT_MODELS["linf"]
    with torch.no_grad():
        ok = (model(x).argmax(1) == y).nonzero().flatten()
    for eps in args.eps:
        ce = ATTACKS.create("pgd", steps=100, restarts=2, schedule="adaptive", targets=0)
        x_ce = ce.perturb(model, x[ok], y[ok], eps, torch.Generator(device=device).manual_seed(1))
        with torch.no_grad():
            left = ok[model(x_ce).argmax(1) == y[ok]]
        xs, ys = x[left], y[left]
        t0 = time.perf_counter()
        orders = {name: gradient.target_classes(model, xs, ys, 9, name, threat.dual_norm) for name in ("logits", "malt")}
        order_seconds = time.perf_counter() - t0
        classes = orders["logits"].shape[1]
        broken = torch.zeros(len(left), classes, dtype=torch.bool, device=device)  # by the j-th class in logit order
        t0 = time.perf_counter()
        for j in range(classes):
            only = orders["logits"][:, j : j + 1]
            with mock.patch.object(gradient, "target_classes", lambda *a, only=only, **k: only):
                run = ATTACKS.create("pgd", steps=100, restarts=0, schedule="adaptive", targets=1, target_loss="dlr")
                x_t = run.perturb(model, xs, ys, eps, torch.Generator(device=device).manual_seed(2 + j))
            with torch.no_grad():
                broken[:, j] = model(x_t).argmax(1) != ys
        by_class = torch.zeros(len(left), classes + 1, dtype=torch.bool, device=device)
        by_class.scatter_(1, orders["logits"], broken)
        row = {"eps": eps, "clean_correct": len(ok), "left_by_ce_runs": len(left),
               "broken_by_some_target": int(broken.any(1).sum()), "target_run_seconds": round(time.perf_counter() - t0, 1),
               "order_seconds": round(order_seconds, 2)}
        for name, order in orders.items():
            hits = by_class.gather(1, order)
            row[f"{name}_first_k"] = [int(hits[:, :k].any(1).sum()) for k in range(1, classes + 1)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
