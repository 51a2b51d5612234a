"""Evaluation: clean accuracy, and robust accuracy of a pipeline under one attack per eps.

Budget attacks run at every eps of the grid on every clean-correct example; minimal-norm
attacks run once and each example counts as broken at every eps at or above the norm of
the smallest adversarial found. Every returned image is validated (invalid ones count as
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
from tqdm import tqdm

from bench.attacks.base import Attack
from bench.attacks.threat import THREAT_MODELS
from bench.defenses.base import attack_view
from bench.errors import ConfigError
from bench.evaluation import checks


CURVES = ("independent", "survivors", "descending")


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


def true_class_rank(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 + the number of classes scored strictly above the true class."""
    true = logits.gather(1, y.view(-1, 1))
    return (logits > true).sum(dim=1) + 1


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return logits_of(model, x, batch_size).argmax(1)


def _chunks(idx: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
    """Index batches; none at all when no example is left to attack."""
    return idx.split(batch_size) if len(idx) else ()


def attacked_model(pipeline: nn.Module, attack: Attack) -> nn.Module:
    """What the attack is given: the adaptive view for gradient attacks, the pipeline for query attacks."""
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
) -> AttackOutcome:
    """Attack ``model`` (put in eval mode here) on float images ``x`` in [0, 1] at each eps.

    ``curve="independent"`` attacks every clean-correct example at every eps (the per-eps
    figures then also test monotonicity); ``"survivors"`` attacks at each eps only the
    examples that survived the previous one, which gives the same worst-case curve for a
    fraction of the cost but no monotonicity check. ``"descending"`` (attacks with
    ``warm_start``; the others fall back to ``"survivors"``) goes from the largest eps down,
    attacks at each eps only the examples the larger eps fooled, starting from their
    adversarial example projected into the smaller ball; an example the attack could not
    fool at some eps counts as robust at every smaller one. Its cost is about one attack
    per example, whatever the grid's length.
    """
    if curve not in CURVES:
        raise ConfigError(f"evaluation.curve must be one of {', '.join(CURVES)}; got {curve!r}")
    if curve == "descending" and not attack.warm_start:
        curve = "survivors"
    start = time.perf_counter()
    model.eval()
    target = attacked_model(model, attack)
    if compile and attack.needs_gradients:
        # dynamic shapes: early exit shrinks the batch from step to step
        target = torch.compile(target, dynamic=True)
    validator = _Validator(THREAT_MODELS[attack.threat_model])
    clean_ranks = true_class_rank(logits_of(model, x, batch_size), y)
    clean_correct = clean_ranks == 1
    idx = clean_correct.nonzero().flatten()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    grid = [float(e) for e in eps_grid]
    ranks: dict[float, torch.Tensor] = {}
    minimal_norms = None

    if attack.kind == "minimal":
        adv_ranks = clean_ranks.clone()
        norms = torch.zeros(len(y), device=x.device)
        for chunk in _chunks(idx, batch_size):
            x_adv = validator(x[chunk], attack.minimize(target, x[chunk], y[chunk], generator).detach(), math.inf)
            adv_ranks[chunk] = true_class_rank(logits_of(model, x_adv, batch_size), y[chunk])
            fooled = adv_ranks[chunk] != 1
            norm = THREAT_MODELS[attack.threat_model].norm(x_adv - x[chunk])
            norms[chunk] = torch.where(fooled, norm, torch.full_like(norm, math.inf))
        minimal_norms = norms.cpu()
        for eps in grid:
            broken = norms <= eps + 1e-12
            ranks[eps] = torch.where(broken, adv_ranks, clean_ranks)
    elif curve == "descending":
        ranks = _descending_curve(attack, target, model, x, y, idx, grid, clean_ranks, batch_size, generator, validator)
    else:
        previous = clean_ranks
        for eps in tqdm(grid, desc=attack.name, leave=False, disable=None if progress else True, unit="eps"):
            if curve == "survivors":
                ranks[eps] = previous.clone()
                idx = (previous == 1).nonzero().flatten()
                if eps == 0.0:  # the only perturbation within eps = 0 is none
                    previous = ranks[eps]
                    continue
            else:
                ranks[eps] = clean_ranks.clone()
            for chunk in _chunks(idx, batch_size):
                x_adv = attack.perturb(target, x[chunk], y[chunk], eps, generator).detach()
                x_adv = validator(x[chunk], x_adv, eps)
                ranks[eps][chunk] = true_class_rank(logits_of(model, x_adv, batch_size), y[chunk])
            previous = ranks[eps]

    independent = [(ranks[e] == 1).float().mean().item() for e in grid]
    worst = clean_correct.clone()
    robust = {}
    for eps in grid:
        worst &= ranks[eps] == 1
        robust[eps] = worst.clone().cpu()
    outcome = AttackOutcome(grid, clean_ranks.cpu(), {e: r.cpu() for e, r in ranks.items()}, robust, independent, minimal_norms,
                            curve=curve if attack.kind == "budget" else "minimal")
    found = [
        validator.check(),
        checks.eps_zero_matches_clean(outcome.clean_accuracy(), independent[grid.index(0.0)] if 0.0 in grid and curve == "independent" else None,
                                      outcome.n, randomized),
        None if attack.kind == "minimal" or curve != "independent" else checks.monotone_in_eps(grid, independent),
    ]
    outcome.checks = [c for c in found if c is not None]
    outcome.seconds = time.perf_counter() - start
    outcome.compiled = bool(compile and attack.needs_gradients)
    return outcome


def _descending_curve(attack, target, model, x, y, idx, grid, clean_ranks, batch_size, generator, validator):
    """Ranks per eps, largest eps first; see ``evaluate_attack(curve="descending")``.

    Each smaller eps starts from the larger eps's adversarial example projected into its
    ball; where that projection still fools the pipeline (checked with one forward pass) no
    attack step is spent, otherwise the attack runs from there.
    """
    threat = THREAT_MODELS[attack.threat_model]
    ranks: dict[float, torch.Tensor] = {}
    adversarial = x.clone()
    fooled_above = idx  # clean-correct examples fooled at every larger eps so far
    largest = max(grid)
    for eps in sorted(grid, reverse=True):
        ranks[eps] = clean_ranks.clone()
        if eps == 0.0:  # the only perturbation within eps = 0 is none
            continue
        for chunk in _chunks(fooled_above, batch_size):
            xc, yc = x[chunk], y[chunk]
            if eps == largest:
                x_adv = attack.perturb(target, xc, yc, eps, generator).detach()
                attacked = torch.ones(len(chunk), dtype=torch.bool, device=x.device)
            else:
                x_adv = (xc + threat.project(adversarial[chunk] - xc, eps)).clamp(0, 1)
                chunk_ranks = true_class_rank(logits_of(model, x_adv, batch_size), yc)
                attacked = chunk_ranks == 1  # the projection no longer fools: attack from there
                todo = attacked.nonzero().flatten()
                if len(todo):
                    x_adv[todo] = attack.perturb(target, xc[todo], yc[todo], eps, generator, start=x_adv[todo]).detach()
            valid = validator(xc, x_adv, eps)
            rescore = (attacked | (valid != x_adv).flatten(1).any(dim=1)).nonzero().flatten()
            if eps != largest:
                ranks[eps][chunk] = chunk_ranks
            if len(rescore):
                ranks[eps][chunk[rescore]] = true_class_rank(logits_of(model, valid[rescore], batch_size), yc[rescore])
            adversarial[chunk] = valid
        fooled_above = fooled_above[ranks[eps][fooled_above] != 1]
    return ranks
