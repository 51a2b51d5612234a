"""How much of a randomised defense's per-eps robust accuracy is the luck of one noise draw.

The harness attacks a randomised pipeline through its EOT view (the mean of the logits over
``eot_samples`` draws), keeps each example's first point that the view misclassifies, and
re-scores that point on the deployed pipeline: one draw. A first success lies near the
view's decision boundary, where one draw may still classify it correctly, so the per-eps
accuracies (what ``monotone_in_eps`` compares) carry draw noise on top of the attack's
own. This script runs the protocol's attack at each eps on its own, on the first ``--n``
test images, then re-scores every adversarial point with ``--draws`` independent draws and
prints, per eps: the one-draw accuracy averaged over the draws (the expected accuracy), its
lowest and highest value over the draws, and how many points some draws classify correctly
and others not. Prints one JSON object.

    python benchmarks/randomized_rescoring.py --defense random_noise --seed 1 --eps 0.2 --eps 0.3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.data.base import to_float
from bench.evaluation.curves import logits_of
from bench.evaluation.evaluate import attacked_model
from bench.pipeline import Settings, is_randomized, load_data, make_attack, make_defense, obtain_model
from bench.protocol import load_protocol


def correct_per_draw(pipeline: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, draws: int, batch: int) -> torch.Tensor:
    """bool [draws, len(points)]: row d says which points the pipeline's d-th forward pass (one draw) gets right."""
    with torch.no_grad():
        return torch.stack([logits_of(pipeline, points, batch).argmax(1) == labels for _ in range(draws)])


def rescoring_summary(per_draw: torch.Tensor) -> dict[str, float | int]:
    """What ``correct_per_draw`` says about one-draw scoring: the expected accuracy, its range over
    the draws, and how many points the draws disagree on."""
    accuracy = per_draw.float().mean(1)  # one-draw accuracy, one value per draw
    p = per_draw.float().mean(0)  # P(correct) per point
    return {
        "expected_accuracy": round(float(accuracy.mean()), 4),
        "one_draw_accuracy_min": round(float(accuracy.min()), 4),
        "one_draw_accuracy_max": round(float(accuracy.max()), 4),
        "points_right_in_some_draws_wrong_in_others": int(((p > 0) & (p < 1)).sum()),
        "points_right_in_every_draw": int((p == 1).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--defense", default="random_noise")
    ap.add_argument("--attack", default="pgd")
    ap.add_argument("--seed", type=int, default=0, help="the model's training seed (and the attack's)")
    ap.add_argument("--n", type=int, default=500, help="the first n test images")
    ap.add_argument("--draws", type=int, default=32, help="independent draws re-scoring each adversarial point")
    ap.add_argument("--eps", type=float, action="append", default=None, help="L_inf radii (default: the protocol's grid above 0)")
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.draws < 2:
        ap.error(f"--draws must be at least 2, got {args.draws}")
    protocol = load_protocol(args.protocol)
    defense = make_defense(protocol, args.defense)
    if not is_randomized(protocol, defense):
        ap.error(f"defense {args.defense!r} is not randomised: one draw is all there is")
    grid = sorted(set(args.eps)) if args.eps else [e for e in protocol.eps_grid("linf") if e > 0]
    if any(e <= 0 for e in grid):
        ap.error(f"--eps takes L_inf radii above 0, got {[e for e in grid if e <= 0]}")
    data = load_data(protocol)
    settings = Settings(checkpoint_dir=args.checkpoints, progress=False)
    device = settings.resolved_device()
    pipeline = obtain_model(protocol, defense, data, args.seed, settings).pipeline.eval()
    attack = make_attack(protocol, args.attack)
    view = attacked_model(pipeline, attack)
    x = to_float(data.dataset.test_x[: args.n], device)
    y = data.dataset.test_y[: args.n].to(device)
    batch = protocol.evaluation.batch_size

    clean = correct_per_draw(pipeline, x, y, args.draws, batch).float().mean(0)  # P(correct) per image, clean
    attacked = clean > 0.5  # the images the pipeline gets right more often than not
    out = {"protocol": protocol.name, "hash": protocol.short_hash, "defense": defense.name, "seed": args.seed,
           "attack": attack.name, "n_examples": args.n, "draws": args.draws,
           "clean_accuracy_expected": round(float(clean.mean()), 4), "eps": {}}
    generator = torch.Generator(device=device).manual_seed(args.seed)
    for eps in grid:
        t0 = time.perf_counter()
        x_adv = x.clone()
        idx = attacked.nonzero().flatten()
        for chunk in idx.split(batch):
            x_adv[chunk] = attack.perturb(view, x[chunk], y[chunk], eps, generator).detach()
        seconds = time.perf_counter() - t0
        per_draw = correct_per_draw(pipeline, x_adv, y, args.draws, batch) & attacked  # not attacked: not robust
        out["eps"][f"{eps:g}"] = {**rescoring_summary(per_draw), "attack_seconds": round(seconds, 1)}
        print(f"eps {eps:g}", json.dumps(out["eps"][f"{eps:g}"]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
