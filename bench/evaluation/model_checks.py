"""Checks of the defended pipeline itself, run once per model before any attack.

They catch the classic ways an evaluation fools itself (Athalye et al. 2018; Carlini et
al. 2019; Pintor et al. 2022): gradients that are zero, not finite or absent (masked); a
pipeline that answers differently on the same input without declaring itself randomised; an
attack loss that gradient steps raise no more than random steps do (shattered or
uninformative gradients); and an unbounded attack that does not drive accuracy far below
chance (a result at chance can be luck: random images are classified right one time in ten).
Each flag names the attack to run next (``bench.evaluation.checks.NEXT_ATTACK``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.gradient import PGD, attack_loss, input_gradient
from bench.defenses.base import attack_view
from bench.evaluation.checks import check

def gradient_health(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, max_bad: float = 0.01) -> dict[str, Any]:
    """Fraction of examples whose input gradient (on the attack view) is all zero or not finite,
    and the fraction of zero gradient entries."""
    view = attack_view(pipeline).eval()
    zero_examples = nonfinite_examples = zero_entries = total_entries = 0
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].clone().requires_grad_(True)
        loss = F.cross_entropy(view(xb).float(), y[i : i + batch_size], reduction="sum")
        # no differentiable path to the input (a step outside autograd, no gradient declared): zero
        grad = torch.autograd.grad(loss, xb, allow_unused=True)[0] if loss.requires_grad else None
        flat = (torch.zeros_like(xb) if grad is None else grad).flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        nonfinite_examples += int((~finite).sum())
        zero_examples += int(((flat == 0).all(dim=1) & finite).sum())
        zero_entries += int((flat == 0).sum())
        total_entries += flat.numel()
    n = len(x)
    bad = (zero_examples + nonfinite_examples) / max(n, 1)
    return check(
        "gradients_informative",
        bad <= max_bad,
        f"{zero_examples} of {n} examples have an all-zero input gradient and {nonfinite_examples} a non-finite one"
        + ("" if bad <= max_bad else ": gradient masking, gradient attacks overstate robustness; attack with BPDA or query attacks"),
        zero_gradient_fraction=zero_examples / max(n, 1),
        nonfinite_gradient_fraction=nonfinite_examples / max(n, 1),
        zero_entry_fraction=zero_entries / max(total_entries, 1),
    )

@torch.no_grad()
def determinism(pipeline: nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """Two forward passes on the same inputs agree, unless the pipeline declares ``randomized``."""
    pipeline.eval()
    first = torch.cat([pipeline(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])
    second = torch.cat([pipeline(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])
    differ = float((first.argmax(1) != second.argmax(1)).float().mean())
    max_diff = float((first - second).abs().max())
    declared = bool(getattr(pipeline, "randomized", False))
    randomised = max_diff > 1e-4
    if declared:
        detail = f"declared randomised (attacked with EOT); repeated passes disagree on {100 * differ:.1f} % of predictions"
    elif randomised:
        detail = f"repeated forward passes differ (max logit difference {max_diff:.3g}) but the pipeline is not declared randomised"
    else:
        detail = "repeated forward passes agree"
    return check("repeated_passes_agree", declared or not randomised, detail,
                 declared_randomized=declared, max_logit_difference=max_diff, prediction_disagreement=differ)

def unbounded_attack_succeeds(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                              batch_size: int, seed: int, eps: float = 1.0, steps: int = 50,
                              max_accuracy: float = 0.02) -> dict[str, Any]:
    """PGD on the logit margin with an L_inf budget covering the whole image space must leave at
    most ``max_accuracy``, far below chance: any image is reachable, so only a failing attack
    leaves more, and chance itself is what a random start alone achieves."""
    view = attack_view(pipeline).eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    attack = PGD("pgd", "linf", {"steps": steps, "rel_stepsize": 0.1, "restarts": 1, "random_start": True, "loss": "margin"})
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        x_adv = attack.perturb(view, xb, yb, eps, generator).detach()
        with torch.no_grad():
            correct += int((pipeline(x_adv).argmax(1) == yb).sum())
    accuracy = correct / max(len(x), 1)
    chance = 1.0 / num_classes
    limit = min(max_accuracy, chance / 2)
    return check("unbounded_attack_succeeds", accuracy <= limit,
                 f"margin PGD-{steps} at L_inf eps = {eps:g} leaves {100 * accuracy:.1f} % accuracy (must be <= {100 * limit:.1f} %; "
                 f"chance {100 * chance:.1f} %)", accuracy=accuracy, chance=chance, limit=limit, eps=eps, n_examples=len(x))

def loss_increases_along_path(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                              eps: float, steps: int = 10, min_fraction: float = 0.8) -> dict[str, Any]:
    """Signed-gradient steps on the logit margin must raise it more than random signed steps of
    the same size do, for at least ``min_fraction`` of the correctly classified examples.

    Informative gradients beat a random direction by a wide margin (in d dimensions, by about
    sqrt(d)); shattered, zero or absent gradients do no better than chance, about half the
    examples. The margin (largest wrong logit minus the true one) is used because it does not
    saturate."""
    view = attack_view(pipeline).eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    size = 2.5 * eps / steps
    wins = total = 0
    grad_gain, random_gain = [], []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        with torch.no_grad():
            logits = view(xb)
            keep = logits.argmax(1) == yb
        xb, yb = xb[keep], yb[keep]
        if not len(xb):
            continue
        with torch.no_grad():
            start = attack_loss(view(xb), yb, "margin")
        x_grad, x_rand = xb.clone(), xb.clone()
        for _ in range(steps):
            grad, _ = input_gradient(view, x_grad, yb, "margin")
            x_grad = (xb + (x_grad + size * grad.sign() - xb).clamp(-eps, eps)).clamp(0, 1)
            noise = torch.randint(0, 2, xb.shape, generator=generator, device=xb.device).to(xb.dtype) * 2 - 1
            x_rand = (xb + (x_rand + size * noise - xb).clamp(-eps, eps)).clamp(0, 1)
        with torch.no_grad():
            gained, drifted = attack_loss(view(x_grad), yb, "margin") - start, attack_loss(view(x_rand), yb, "margin") - start
        wins += int((gained > drifted).sum())
        total += len(xb)
        grad_gain.append(gained)
        random_gain.append(drifted)
    fraction = wins / max(total, 1)
    median = (lambda t: float(torch.cat(t).median()) if t else 0.0)
    return check("loss_increases_along_path", fraction >= min_fraction,
                 f"{steps} gradient steps at eps {eps:g} raised the margin loss more than random steps for {100 * fraction:.0f} % of "
                 f"{total} examples (median gain {median(grad_gain):.3g} vs {median(random_gain):.3g}; must be >= {100 * min_fraction:.0f} %)",
                 fraction=fraction, n_examples=total, eps=eps, median_gradient_gain=median(grad_gain),
                 median_random_gain=median(random_gain))

def model_checks(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int, seed: int,
                 eps: float, n_examples: int = 100) -> list[dict[str, Any]]:
    """Every check of the pipeline on the first ``n_examples``; ``eps`` (the headline L_inf budget)
    is where the attack path is examined."""
    x, y = x[:n_examples], y[:n_examples]
    return [
        gradient_health(pipeline, x, y, batch_size),
        determinism(pipeline, x, batch_size),
        loss_increases_along_path(pipeline, x, y, batch_size, seed, eps),
        unbounded_attack_succeeds(pipeline, x, y, num_classes, batch_size, seed),
    ]
