"""Evaluation: clean accuracy, and robust accuracy of a pipeline under one attack per eps.

How the eps grid is walked is a strategy of ``bench.evaluation.curves`` (budget attacks per
eps, or a minimal-norm attack once for the whole curve). Every returned image is validated (invalid ones count as
failed attacks and are flagged) and re-scored on the deployed pipeline in eval mode. The
reported robust accuracy at eps takes the per-example worst case over this and every
smaller eps (an example fooled within a smaller ball is fooled within a larger one); the
independent per-eps figures feed the monotonicity check.

Beside top-1, every eps gets the rank metrics of Brama & Grinshpoun: top-5 accuracy and the
mean reciprocal rank of the true class. Examples misclassified when clean are not attacked;
their rank is that of the clean input.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.attacks.base import Attack
from bench.attacks.precision import MixedPrecision, with_precision
from bench.attacks.threat import THREAT_MODELS
from bench.defenses.base import attack_view
from bench.evaluation import checks
from bench.evaluation.curves import CurveInputs, Minimal, curve_for, logits_of, true_class_rank


@dataclass
class AttackOutcome:
    eps: list[float]
    clean_ranks: torch.Tensor  # long [n]: rank of the true class on clean inputs (1 = top-1)
    ranks: dict[float, torch.Tensor]  # eps -> long [n]: rank under the attack at that eps
    robust_correct: dict[float, torch.Tensor]  # eps -> bool [n], worst case over eps' <= eps
    independent_accuracy: list[float]
    minimal_norms: torch.Tensor | None = None  # float [n]: 0 if clean-misclassified, inf if not broken
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    curve: str = "independent"  # how the eps grid was attacked (see evaluate_attack)
    compiled: bool = False  # the attacked model ran through torch.compile
    precision: str = "fp32"  # of the attack's gradient passes (bench.attacks.precision); decisions are always fp32

    @property
    def clean_correct(self) -> torch.Tensor:
        return self.clean_ranks == 1

    @property
    def n(self) -> int:
        return int(self.clean_ranks.numel())

    def clean_accuracy(self) -> float:
        return self.clean_correct.float().mean().item()

    def robust_accuracy(self) -> dict[float, float]:
        return {eps: c.float().mean().item() for eps, c in self.robust_correct.items()}

    def rank_metrics(self) -> dict[str, Any]:
        def summary(r: torch.Tensor) -> dict[str, float]:
            return {"top5": (r <= 5).float().mean().item(), "mrr": (1.0 / r.float()).mean().item()}

        return {"clean": summary(self.clean_ranks), "adversarial": {f"{e:g}": summary(r) for e, r in self.ranks.items()}}

    def minimal_perturbation(self, dims: int) -> dict[str, Any] | None:
        """Median minimal perturbation over all n examples (Li et al.), and the reference's
        median ||delta||^2 / D (Attias et al., L2 attacks); ``None`` where the median is unbroken."""
        if self.minimal_norms is None:
            return None
        norms = self.minimal_norms
        median = norms.median().item()
        sq = (norms**2 / dims).median().item()
        return {
            "median": None if math.isinf(median) else median,
            "median_sq_per_dim": None if math.isinf(sq) else sq,
            "n_broken": int((torch.isfinite(norms) & (norms > 0)).sum()),
            "n_unbroken": int(torch.isinf(norms).sum()),
        }


def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return logits_of(model, x, batch_size).argmax(1)


def attacked_model(pipeline: nn.Module, attack: Attack) -> nn.Module:
    """What the attack is given: the adaptive view for gradient attacks, the pipeline for the others."""
    return (attack_view(pipeline) if attack.needs_gradients else pipeline).eval()


class _Validator:
    """Counts and neutralises invalid adversarial examples (they become failed attacks)."""

    def __init__(self, threat):
        self.threat, self.checked, self.invalid, self.excess = threat, 0, 0, 0.0

    def __call__(self, x: torch.Tensor, x_adv: torch.Tensor, eps: float) -> torch.Tensor:
        valid, excess = checks.validate_adversarial(x, x_adv, eps, self.threat)
        self.checked += len(x)
        self.invalid += int((~valid).sum())
        self.excess = max(self.excess, excess)
        return torch.where(valid.view(-1, *[1] * (x.dim() - 1)), x_adv, x)

    def check(self) -> dict[str, Any]:
        return checks.adversarial_validity(self.checked, self.invalid, self.excess)


def evaluate_attack(
    model: nn.Module,
    attack: Attack,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid: list[float],
    batch_size: int,
    seed: int,
    progress: bool = False,
    curve: str = "independent",
    randomized: bool = False,
    compile: bool = False,
    precision: str = "fp32",
) -> AttackOutcome:
    """Attack ``model`` (put in eval mode here) on float images ``x`` in [0, 1] at each eps,
    walking the grid with the strategy ``curve`` names (see ``bench.evaluation.curves``).
    ``precision`` (``fp32`` or ``bf16``, resolved) is that of the gradient passes of the attacks
    that support it."""
    strategy, curve = curve_for(curve, attack)
    start = time.perf_counter()
    model.eval()
    target = attacked_model(model, attack)
    precision = precision if attack.mixed_precision else "fp32"
    if attack.needs_surrogate:  # only the surrogate is differentiated
        surrogate = attack.surrogate
        if surrogate is not None:
            attack.surrogate = with_precision(surrogate.eval(), precision, x.device)
    else:
        target = with_precision(target, precision, x.device)
    if compile and attack.needs_gradients:
        # dynamic shapes: early exit shrinks the batch from step to step
        if isinstance(target, MixedPrecision):
            target.exact = torch.compile(target.exact, dynamic=True)
            target.fast_model = torch.compile(target.fast_model, dynamic=True)
        else:
            target = torch.compile(target, dynamic=True)
    validator = _Validator(THREAT_MODELS[attack.threat_model])
    clean_ranks = true_class_rank(logits_of(model, x, batch_size), y)
    grid = [float(e) for e in eps_grid]
    inputs = CurveInputs(attack, target, model, x, y, clean_ranks, grid, batch_size,
                         torch.Generator(device=x.device).manual_seed(seed), validator, progress)
    try:
        ranks = strategy.ranks(inputs)
    finally:
        if attack.needs_surrogate:
            attack.surrogate = surrogate  # the runner's own model again
    outcome = _outcome(grid, clean_ranks, ranks, strategy.extras().get("minimal_norms"),
                       curve="minimal" if isinstance(strategy, Minimal) else curve)
    independent = outcome.independent_accuracy
    found = [
        validator.check(),
        checks.eps_zero_matches_clean(outcome.clean_accuracy(), independent[grid.index(0.0)] if 0.0 in grid and curve == "independent" else None,
                                      outcome.n, randomized),
        checks.monotone_in_eps(grid, independent) if strategy.monotonicity_checked else None,
    ]
    outcome.checks = [c for c in found if c is not None]
    outcome.seconds = time.perf_counter() - start
    outcome.compiled = bool(compile and attack.needs_gradients)
    outcome.precision = precision
    return outcome


def _outcome(grid: list[float], clean_ranks: torch.Tensor, ranks: dict[float, torch.Tensor],
             minimal_norms: torch.Tensor | None, curve: str) -> AttackOutcome:
    """Per-eps figures, and the robust flags as the per-example worst case over this and every smaller eps."""
    independent = [(ranks[e] == 1).float().mean().item() for e in grid]
    worst = clean_ranks == 1
    robust = {}
    for eps in grid:
        worst = worst & (ranks[eps] == 1)
        robust[eps] = worst.clone().cpu()
    return AttackOutcome(grid, clean_ranks.cpu(), {e: r.cpu() for e, r in ranks.items()}, robust, independent, minimal_norms,
                         curve=curve)
