"""What a defense is to the harness.

A defense decides how its model is built and trained (``prepare`` may change the model,
e.g. install a fixed first layer; ``objective`` is the loss of one training step) and what
pipeline is deployed at test time (``wrap``). Defenses that only transform the inputs of an
already-trained model name a ``base`` defense whose model they reuse, and record it.

Attacks compute gradients on ``attack_view(pipeline)``, and the result is re-scored on the
pipeline itself. A pipeline that is not differentiable, or is randomised, exposes an
``attack_view()`` method returning its adaptive surrogate (BPDA, EOT); see
``bench.defenses.transforms``. Register a new one with ``@DEFENSES.register``: the factory
receives the protocol's ``defenses.<name>`` parameters as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.base import ImageDataset
from bench.protocol import Protocol


@dataclass
class TrainingContext:
    """What an objective may need to set itself up: the data, the split, the device, the seed, the model."""

    dataset: ImageDataset
    train_indices: torch.Tensor
    device: torch.device
    seed: int
    protocol: Protocol | None = None  # None outside a protocol run (tests, benchmarks)
    model: nn.Module | None = None

    @property
    def augment(self) -> str:
        """The protocol's training augmentation (``none`` without a protocol)."""
        return self.protocol.training.augment if self.protocol is not None else "none"


class Objective(nn.Module):
    """The loss of one training step.

    ``forward(model, x, y)`` returns (loss, logits of x, scalar diagnostics for the progress
    bar and the history). Parameters and buffers the objective owns (e.g. a learned layer
    mixture) are optimised with the model and saved in every checkpoint.
    """

    def epoch_summary(self) -> dict[str, Any]:
        """Diagnostics recorded once per epoch beside the loss (e.g. layer-mixture weights)."""
        return {}


class CrossEntropy(Objective):
    def forward(self, model, x, y):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, logits, {}


@dataclass
class Defense:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    base: str | None = None  # defense whose trained model this one wraps (input transformations)
    randomized: bool = False  # the deployed pipeline draws noise: attacked with EOT, not with decision-based attacks

    def objective(self, ctx: TrainingContext) -> Objective:
        return CrossEntropy()

    def pretrained(self, dataset: ImageDataset, device: torch.device) -> tuple[nn.Module, dict[str, Any]] | None:
        """A ready model (and where it came from) for defenses that are not trained here,
        e.g. published checkpoints; ``None`` (the default) means: build and train."""
        return None

    def prepare(self, model: nn.Module) -> None:
        """Change the freshly built model before training or loading (default: nothing)."""

    def wrap(self, model: nn.Module) -> nn.Module:
        """The pipeline attacked and evaluated; the trained model itself by default."""
        return model

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "base": self.base, "randomized": self.randomized}


def attack_view(pipeline: nn.Module) -> nn.Module:
    """The module attacks differentiate: the pipeline's own adaptive view, or the pipeline."""
    view = getattr(pipeline, "attack_view", None)
    return view() if callable(view) else pipeline
