"""What an attack is to the harness.

Two kinds of attack, told apart by ``kind``:

* ``"budget"`` (:class:`Attack`): ``perturb(model, x, y, eps, generator)`` returns images
  within the eps-ball of the attack's threat model; it runs once per eps of the grid.
* ``"minimal"`` (:class:`MinimalAttack`): ``minimize(model, x, y, generator)`` returns, per
  example, the smallest adversarial image it found (or the clean image when it found none);
  one run yields the whole accuracy-vs-eps curve and each example's minimal perturbation.

An attack never decides the result: the evaluation checks every returned image (finite, in
[0, 1], within eps) and re-scores it on the deployed pipeline. ``needs_gradients`` is False
for decision-based, score-based and noise attacks (they only query the model). Transfer
attacks set ``needs_surrogate``; the runner then provides ``surrogate``, an undefended model
of the same architecture, whose gradients craft the examples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from bench.attacks.threat import THREAT_MODELS


@dataclass
class Attack(ABC):
    name: str
    threat_model: str  # a key of THREAT_MODELS: selects the protocol's eps grid
    params: dict[str, Any] = field(default_factory=dict)
    surrogate: nn.Module | None = field(default=None, repr=False, compare=False)

    kind: ClassVar[str] = "budget"
    needs_gradients: ClassVar[bool] = True
    needs_surrogate: ClassVar[bool] = False
    # True when perturb accepts ``start`` (images within the ball to begin from), which lets
    # the descending curve reuse a larger eps's adversarial examples.
    warm_start: ClassVar[bool] = False

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """Adversarial images for ``x`` (true labels ``y``) within ``eps``; ``model`` is in eval mode."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "threat_model": self.threat_model, "kind": self.kind,
                "needs_gradients": self.needs_gradients, "params": self.params}


class MinimalAttack(Attack):
    kind: ClassVar[str] = "minimal"

    def perturb(self, model, x, y, eps, generator):
        """A minimal-norm result clipped to a budget: the example only if it is within eps."""
        x_adv = self.minimize(model, x, y, generator)
        within = THREAT_MODELS[self.threat_model].norm(x_adv - x) <= eps
        return torch.where(within.view(-1, *[1] * (x.dim() - 1)), x_adv, x)

    @abstractmethod
    def minimize(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per example, the smallest adversarial image found, or ``x`` itself where none was found."""
