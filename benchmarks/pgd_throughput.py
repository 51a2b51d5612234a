"""PGD throughput: the harness's attack path vs foolbox, torchattacks and a raw PyTorch loop.

Same model (the quick protocol's small CNN, trained briefly), same batch, same budget
(L_inf eps, steps, step size, random start). Prints JSON with images per second of each
implementation and the ratio of the harness to the fastest peer.

The harness's path stops stepping an example once it is fooled (it keeps the first success),
which is part of its design; ``harness_full_steps`` runs every example for every step, the
fair comparison of the loop itself.

torchattacks ships an old copy of robustbench that overwrites robustbench's files, so it is
never installed into the project's environment; install it apart and point to it:

    pip install --no-deps --target /tmp/torchattacks torchattacks
    TORCHATTACKS_PATH=/tmp/torchattacks python benchmarks/pgd_throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from common import device_name, timed, trained_small_cnn  # noqa: E402

from bench.attacks.gradient import PGD  # noqa: E402
from bench.evaluation import evaluate_attack  # noqa: E402


def raw_pgd(model, x, y, eps, steps, alpha):
    delta = (torch.rand_like(x) * 2 - 1) * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = (x + (x_adv.detach() + alpha * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    return x_adv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, x, y = trained_small_cnn(device)
    x, y = x[: args.n], y[: args.n]
    alpha = 0.1 * args.eps
    params = {"steps": args.steps, "rel_stepsize": 0.1, "restarts": 1, "random_start": True}
    g = torch.Generator(device=device)
    runs = {
        "harness_evaluate_attack": lambda: evaluate_attack(model, PGD("pgd", "linf", params), x, y, [args.eps], args.n, 0),
        "harness_full_steps": lambda: PGD("pgd", "linf", {**params, "early_stop": False}).perturb(model, x, y, args.eps, g),
        "raw_pytorch_loop": lambda: raw_pgd(model, x, y, args.eps, args.steps, alpha),
    }
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)
    fb_attack = fb.attacks.LinfPGD(steps=args.steps, rel_stepsize=0.1, random_start=True)
    runs["foolbox_LinfPGD"] = lambda: fb_attack(fmodel, x, y, epsilons=args.eps)
    if os.environ.get("TORCHATTACKS_PATH"):
        sys.path.insert(0, os.environ["TORCHATTACKS_PATH"])
        import torchattacks

        ta = torchattacks.PGD(model, eps=args.eps, alpha=alpha, steps=args.steps, random_start=True)
        runs["torchattacks_PGD"] = lambda: ta(x, y)
    seconds = {name: timed(fn, args.repeats) for name, fn in runs.items()}
    throughput = {name: args.n / s for name, s in seconds.items()}
    peers = {k: v for k, v in throughput.items() if not k.startswith("harness")}
    fastest = max(peers, key=peers.get)
    print(json.dumps({
        "device": device_name(device), "threads": args.threads, "n": args.n, "eps": args.eps, "steps": args.steps,
        "images_per_second": {k: round(v, 1) for k, v in throughput.items()},
        "fastest_peer": fastest,
        "harness_evaluate_vs_fastest_peer": round(throughput["harness_evaluate_attack"] / peers[fastest], 3),
        "harness_full_steps_vs_fastest_peer": round(throughput["harness_full_steps"] / peers[fastest], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
