"""Toy models with known decisions and checks shared by the attack tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Constant(nn.Module):
    """Predicts ``label`` for every input: no attack can fool it (foolbox's init attack fails)."""

    def __init__(self, label: int = 3, classes: int = 10):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # a parameter, so frozen-gradient code has something to touch
        self.label, self.classes = label, classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(torch.tensor(self.label), self.classes).to(x.device, x.dtype)
        return one_hot + 0 * self.weight * x.flatten(1).sum(1, keepdim=True)  # zero gradients, but a graph


class MeanThreshold(nn.Module):
    """Class 1 when the image's mean brightness exceeds ``threshold``, else class 0."""

    def __init__(self, threshold: float = 0.5):
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1) - self.threshold
        return torch.stack([-m, m], dim=1)


class Forbidden(nn.Module):
    """A model that must not be queried."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("this model must not be called")


def valid_images(adv: torch.Tensor, x: torch.Tensor) -> bool:
    return adv.shape == x.shape and adv.dtype == x.dtype and bool(torch.isfinite(adv).all()) and adv.min() >= 0 and adv.max() <= 1


@torch.no_grad()
def fooled(model: nn.Module, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model(adv).argmax(1) != y
