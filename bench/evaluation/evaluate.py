"""Evaluation: clean accuracy, and robust accuracy of a pipeline under one attack per eps.

Protocol per eps: the attack runs on every clean-correct example, each returned image is
validated (invalid ones count as failed attacks and are flagged) and re-scored on the
pipeline in eval mode. The reported robust accuracy at eps takes the per-example worst case
over this and every smaller eps (an example fooled within a smaller ball is fooled within a
larger one); the independent per-eps figures feed the monotonicity check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from bench.attacks.base import Attack
from bench.attacks.threat import THREAT_MODELS
from bench.defenses.base import attack_view
from bench.evaluation import checks


@dataclass
class AttackOutcome:
    eps: list[float]
    clean_correct: torch.Tensor  # bool [n]
    robust_correct: dict[float, torch.Tensor]  # eps -> bool [n], worst case over eps' <= eps
    independent_accuracy: list[float]
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return int(self.clean_correct.numel())

    def clean_accuracy(self) -> float:
        return self.clean_correct.float().mean().item()

    def robust_accuracy(self) -> dict[float, float]:
        return {eps: c.float().mean().item() for eps, c in self.robust_correct.items()}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def evaluate_attack(
    model: nn.Module,
    attack: Attack,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid: list[float],
    batch_size: int,
    seed: int,
    progress: bool = False,
) -> AttackOutcome:
    """Attack ``model`` (put in eval mode here) on float images ``x`` in [0, 1] at each eps.

    Gradients are taken on ``attack_view(model)`` (BPDA/EOT surrogates of non-differentiable
    or randomised pipelines); every adversarial example is re-scored on ``model`` itself.
    """
    start = time.perf_counter()
    model.eval()
    surrogate = attack_view(model).eval()
    threat = THREAT_MODELS[attack.threat_model]
    clean_correct = predict(model, x, batch_size) == y
    worst = clean_correct.clone()
    robust: dict[float, torch.Tensor] = {}
    independent: list[float] = []
    n_checked = n_invalid = 0
    worst_excess = 0.0
    generator = torch.Generator(device=x.device).manual_seed(seed)
    for eps in tqdm(eps_grid, desc=f"{attack.name}", leave=False, disable=None if progress else True, unit="eps"):
        still = clean_correct.clone()
        idx = clean_correct.nonzero().flatten()
        for chunk in idx.split(batch_size):
            xb, yb = x[chunk], y[chunk]
            x_adv = attack.perturb(surrogate, xb, yb, float(eps), generator).detach()
            valid, excess = checks.validate_adversarial(xb, x_adv, float(eps), threat)
            n_checked += len(chunk)
            n_invalid += int((~valid).sum())
            worst_excess = max(worst_excess, excess)
            x_adv = torch.where(valid.view(-1, *[1] * (x.dim() - 1)), x_adv, xb)
            still[chunk] = predict(model, x_adv, batch_size) == yb
        independent.append(still.float().mean().item())
        worst &= still
        robust[float(eps)] = worst.clone()
    outcome = AttackOutcome(list(map(float, eps_grid)), clean_correct, robust, independent)
    outcome.checks = [c for c in (
        checks.adversarial_validity(n_checked, n_invalid, worst_excess),
        checks.eps_zero_matches_clean(outcome.clean_accuracy(), independent[eps_grid.index(0)] if 0 in eps_grid else None),
        checks.monotone_in_eps(outcome.eps, independent),
    ) if c is not None]
    outcome.seconds = time.perf_counter() - start
    return outcome
