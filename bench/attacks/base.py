"""What an attack is to the harness.

An attack perturbs a batch of correctly classified images within an eps-ball of one threat
model and returns the perturbed images. It never decides the result: the evaluation checks
every returned image (finite, in [0, 1], within eps) and re-scores it on the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Attack(ABC):
    name: str
    threat_model: str  # "linf" | "l2": selects the protocol's eps grid
    params: dict[str, Any] = field(default_factory=dict)

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """Adversarial images for ``x`` (true labels ``y``) within ``eps``; ``model`` is in eval mode."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "threat_model": self.threat_model, "params": self.params}
