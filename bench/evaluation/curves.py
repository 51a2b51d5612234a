"""Ways of walking an eps grid: each strategy turns one attack into per-eps ranks of the true class.

All strategies share one contract (:class:`EpsCurve.ranks`): given the clean-correct
examples, return for every eps of the grid the rank of the true class under the attack at
that eps (1 = still correct). Examples misclassified when clean keep their clean rank.

* :class:`Independent` attacks every clean-correct example at every eps afresh (the per-eps
  figures then also test monotonicity);
* :class:`Survivors` attacks at each eps only the examples that survived the previous one:
  the same worst-case curve for a fraction of the cost, but no monotonicity check;
* :class:`Descending` (attacks with ``warm_start``) goes from the largest eps down, attacking
  at each eps only the examples the larger eps fooled, starting from their adversarial example
  projected into the smaller ball; an example the attack could not fool at some eps counts as
  robust at every smaller one. It costs about one attack per example, whatever the grid's length;
* :class:`Minimal` runs a minimal-norm attack once; each example counts as broken at every
  eps at or above the norm of the smallest adversarial example found.

See docs/methods.md#7-evaluation-rules.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from bench.attacks.base import Attack, MinimalAttack
from bench.attacks.threat import THREAT_MODELS
from bench.errors import ConfigError
from bench.protocol import CURVES


def true_class_rank(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 + the number of classes scored strictly above the true class."""
    true = logits.gather(1, y.view(-1, 1))
    return (logits > true).sum(dim=1) + 1


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def chunks(idx: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
    """Index batches; none at all when no example is left to attack."""
    return idx.split(batch_size) if len(idx) else ()


@dataclass
class CurveInputs:
    """Everything a strategy needs: the attack, what it attacks, the examples and the grid.

    ``target`` is what the attack is given (the adaptive view for gradient attacks);
    ``pipeline`` is what every adversarial example is re-scored on. ``validate(x, x_adv, eps)``
    neutralises invalid adversarial examples (they become failed attacks)."""

    attack: Attack
    target: nn.Module
    pipeline: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    clean_ranks: torch.Tensor
    grid: list[float]
    batch_size: int
    generator: torch.Generator
    validate: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    progress: bool = False

    @property
    def clean_correct_indices(self) -> torch.Tensor:
        return (self.clean_ranks == 1).nonzero().flatten()

    def rescore(self, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return true_class_rank(logits_of(self.pipeline, x_adv, self.batch_size), y)


class EpsCurve(ABC):
    name: ClassVar[str]
    monotonicity_checked: ClassVar[bool] = False  # whether the per-eps figures are independent attacks

    @abstractmethod
    def ranks(self, inputs: CurveInputs) -> dict[float, torch.Tensor]:
        """eps -> rank of the true class under the attack at that eps, for every example."""

    def extras(self) -> dict[str, Any]:
        """What else the walk measured (the minimal norms of :class:`Minimal`)."""
        return {}


class Independent(EpsCurve):
    name = "independent"
    monotonicity_checked = True

    def ranks(self, inputs: CurveInputs) -> dict[float, torch.Tensor]:
        ranks = {}
        idx = inputs.clean_correct_indices
        for eps in tqdm(inputs.grid, desc=inputs.attack.name, leave=False, disable=None if inputs.progress else True, unit="eps"):
            ranks[eps] = inputs.clean_ranks.clone()
            _attack_into(ranks[eps], inputs, idx, eps)
        return ranks


class Survivors(EpsCurve):
    name = "survivors"

    def ranks(self, inputs: CurveInputs) -> dict[float, torch.Tensor]:
        ranks = {}
        previous = inputs.clean_ranks
        for eps in tqdm(inputs.grid, desc=inputs.attack.name, leave=False, disable=None if inputs.progress else True, unit="eps"):
            ranks[eps] = previous.clone()
            if eps != 0.0:  # the only perturbation within eps = 0 is none
                _attack_into(ranks[eps], inputs, (previous == 1).nonzero().flatten(), eps)
            previous = ranks[eps]
        return ranks


def _attack_into(ranks: torch.Tensor, inputs: CurveInputs, idx: torch.Tensor, eps: float) -> None:
    """Attack examples ``idx`` at ``eps`` and write their ranks on the pipeline into ``ranks``."""
    x, y = inputs.x, inputs.y
    for chunk in chunks(idx, inputs.batch_size):
        x_adv = inputs.attack.perturb(inputs.target, x[chunk], y[chunk], eps, inputs.generator).detach()
        x_adv = inputs.validate(x[chunk], x_adv, eps)
        ranks[chunk] = inputs.rescore(x_adv, y[chunk])


class Descending(EpsCurve):
    """Largest eps first. Each smaller eps starts from the larger eps's adversarial example
    projected into its ball; where that projection still fools the pipeline (checked with one
    forward pass) no attack step is spent, otherwise the attack runs from there."""

    name = "descending"

    def ranks(self, inputs: CurveInputs) -> dict[float, torch.Tensor]:
        attack, x, y = inputs.attack, inputs.x, inputs.y
        threat = THREAT_MODELS[attack.threat_model]
        ranks: dict[float, torch.Tensor] = {}
        adversarial = x.clone()
        fooled_above = inputs.clean_correct_indices  # clean-correct examples fooled at every larger eps so far
        largest = max(inputs.grid)
        for eps in sorted(inputs.grid, reverse=True):
            ranks[eps] = inputs.clean_ranks.clone()
            if eps == 0.0:  # the only perturbation within eps = 0 is none
                continue
            for chunk in chunks(fooled_above, inputs.batch_size):
                xc, yc = x[chunk], y[chunk]
                if eps == largest:
                    x_adv = attack.perturb(inputs.target, xc, yc, eps, inputs.generator).detach()
                    attacked = torch.ones(len(chunk), dtype=torch.bool, device=x.device)
                else:
                    x_adv = (xc + threat.project(adversarial[chunk] - xc, eps)).clamp(0, 1)
                    chunk_ranks = inputs.rescore(x_adv, yc)
                    attacked = chunk_ranks == 1  # the projection no longer fools: attack from there
                    todo = attacked.nonzero().flatten()
                    if len(todo):
                        x_adv[todo] = attack.perturb(inputs.target, xc[todo], yc[todo], eps, inputs.generator,
                                                     start=x_adv[todo]).detach()
                valid = inputs.validate(xc, x_adv, eps)
                rescore = (attacked | (valid != x_adv).flatten(1).any(dim=1)).nonzero().flatten()
                if eps != largest:
                    ranks[eps][chunk] = chunk_ranks
                if len(rescore):
                    ranks[eps][chunk[rescore]] = inputs.rescore(valid[rescore], yc[rescore])
                adversarial[chunk] = valid
            fooled_above = fooled_above[ranks[eps][fooled_above] != 1]
        return ranks  # largest eps first, as walked


class Minimal(EpsCurve):
    """One run of a minimal-norm attack gives the whole curve and each example's minimal norm."""

    name = "minimal"

    def __init__(self):
        self.minimal_norms: torch.Tensor | None = None  # float [n]: 0 if clean-misclassified, inf if not broken

    def ranks(self, inputs: CurveInputs) -> dict[float, torch.Tensor]:
        attack, x, y = inputs.attack, inputs.x, inputs.y
        assert isinstance(attack, MinimalAttack)
        threat = THREAT_MODELS[attack.threat_model]
        adv_ranks = inputs.clean_ranks.clone()
        norms = torch.zeros(len(y), device=x.device)
        for chunk in chunks(inputs.clean_correct_indices, inputs.batch_size):
            x_adv = inputs.validate(x[chunk], attack.minimize(inputs.target, x[chunk], y[chunk], inputs.generator).detach(), math.inf)
            adv_ranks[chunk] = inputs.rescore(x_adv, y[chunk])
            fooled = adv_ranks[chunk] != 1
            norm = threat.norm(x_adv - x[chunk])
            norms[chunk] = torch.where(fooled, norm, torch.full_like(norm, math.inf))
        self.minimal_norms = norms.cpu()
        return {eps: torch.where(norms <= eps + 1e-12, adv_ranks, inputs.clean_ranks) for eps in inputs.grid}

    def extras(self) -> dict[str, Any]:
        return {"minimal_norms": self.minimal_norms}


BUDGET_CURVES: dict[str, type[EpsCurve]] = {c.name: c for c in (Independent, Survivors, Descending)}
assert tuple(BUDGET_CURVES) == CURVES


def curve_for(requested: str, attack: Attack) -> tuple[EpsCurve, str]:
    """The strategy that walks ``attack`` over the grid, and the protocol curve it stands for
    (``descending`` falls back to ``survivors`` for attacks without warm starts)."""
    if requested not in BUDGET_CURVES:
        raise ConfigError(f"evaluation.curve must be one of {', '.join(CURVES)}; got {requested!r}")
    if requested == "descending" and not attack.warm_start:
        requested = "survivors"
    if isinstance(attack, MinimalAttack):
        return Minimal(), requested
    return BUDGET_CURVES[requested](), requested
