"""Training-step cost of each similarity regulariser relative to ``baseline``, in one run.

Reference batch sizes: 64 classification images; the regularisers add one pair batch of
16 pairs (32 images) through the same network, so the ideal ratio is 96 / 64 = 1.5x.
Prints JSON: seconds per step per model and defense, and the ratios. The defenses are timed
in interleaved rounds (baseline, pixel_sim, neural_sim, baseline, ...) and each gets the
median over rounds, so a load change on a shared machine affects them alike.

    python benchmarks/train_step.py [--models small_cnn resnet18] [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from bench.data.embedded import mnist_digits
from bench.defenses.base import CrossEntropy, TrainingContext
from bench.pipeline import build_model
from bench.catalog import DEFENSES


class Stepper:
    """One model + objective + optimiser; ``run(k)`` times k training steps."""

    def __init__(self, model, objective, x, y):
        self.model, self.objective, self.x, self.y = model, objective, x, y
        self.opt = torch.optim.SGD(list(model.parameters()) + list(objective.parameters()), lr=0.01, momentum=0.9)

    def run(self, steps: int) -> float:
        self.model.train()
        self.objective.train()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss, _, _ = self.objective(self.model, self.x, self.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        if self.x.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["small_cnn", "resnet18"])
    ap.add_argument("--steps", type=int, default=5, help="steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n-images", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = mnist_digits()
    x = data.train_x[: args.batch].float().div(255).to(device)
    y = data.train_y[: args.batch].to(device)
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
           "threads": args.threads, "batch": args.batch, "pairs_per_batch": 16, "ideal_ratio": 1.5, "results": {}}
    for name in args.models:
        torch.manual_seed(0)
        model = build_model({"name": name}, 1, 10, data.channel_stats()).to(device)
        ctx = TrainingContext(data, torch.arange(args.n_images), device, 0, None, model)
        steppers = {"baseline": Stepper(model, CrossEntropy(), x, y)}
        for defense in ("pixel_sim", "neural_sim"):
            steppers[defense] = Stepper(model, DEFENSES.create(defense, n_images=args.n_images).objective(ctx).to(device), x, y)
        for stepper in steppers.values():
            stepper.run(2)  # warm-up
        rounds = {name: [] for name in steppers}
        for _ in range(args.rounds):
            for defense, stepper in steppers.items():
                rounds[defense].append(stepper.run(args.steps))
        timings = {defense: statistics.median(values) for defense, values in rounds.items()}
        out["results"][name] = {
            "seconds_per_step": timings,
            "ratio_to_baseline": {k: v / timings["baseline"] for k, v in timings.items() if k != "baseline"},
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
