"""Checks of the defended pipeline itself, run once per model before any attack.

They catch the classic ways an evaluation fools itself (Athalye et al. 2018; Carlini et
al. 2019): gradients that are zero or not finite (masked), a pipeline that answers
differently on the same input without declaring itself randomised, and an unbounded
attack that does not reach chance accuracy.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.gradient import PGD
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
        (grad,) = torch.autograd.grad(loss, xb)
        flat = grad.flatten(1)
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


def unbounded_attack_reaches_chance(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                                    batch_size: int, seed: int, eps: float = 1.0, steps: int = 20) -> dict[str, Any]:
    """PGD with an L_inf budget covering the whole image space must leave no more than chance accuracy."""
    view = attack_view(pipeline).eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    attack = PGD("pgd", "linf", {"steps": steps, "rel_stepsize": 0.1, "restarts": 1, "random_start": True})
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        x_adv = attack.perturb(view, xb, yb, eps, generator).detach()
        with torch.no_grad():
            correct += int((pipeline(x_adv).argmax(1) == yb).sum())
    accuracy = correct / max(len(x), 1)
    chance = 1.0 / num_classes
    return check("unbounded_attack_reaches_chance", accuracy <= chance,
                 f"PGD-{steps} at L_inf eps = {eps:g} leaves {100 * accuracy:.1f} % accuracy (chance {100 * chance:.1f} %)",
                 accuracy=accuracy, chance=chance, eps=eps, n_examples=len(x))


def model_checks(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int, seed: int,
                 n_examples: int = 100) -> list[dict[str, Any]]:
    x, y = x[:n_examples], y[:n_examples]
    return [
        gradient_health(pipeline, x, y, batch_size),
        determinism(pipeline, x, batch_size),
        unbounded_attack_reaches_chance(pipeline, x, y, num_classes, batch_size, seed),
    ]
