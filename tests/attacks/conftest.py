"""Fixtures for the attack tests: a small batch of digits and toy models with known decisions."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the batches are tiny and the 2 cores are shared (see tests/regularizers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def batch16(eval_batch, trained_cnn):
    """16 test digits the trained CNN classifies correctly (the harness attacks only those)."""
    x, y = eval_batch
    with torch.no_grad():
        correct = trained_cnn(x).argmax(1) == y
    return x[correct][:16], y[correct][:16]


class Constant(nn.Module):
    """Predicts ``label`` for every input: no attack can fool it (foolbox's init attack fails)."""

    def __init__(self, label: int = 3, classes: int = 10):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # a parameter, so frozen-gradient code has something to touch
        self.label, self.classes = label, classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), self.classes, device=x.device) + 0 * self.weight
        logits[:, self.label] = 1.0
        return logits + 0 * x.flatten(1).sum(1, keepdim=True)


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
