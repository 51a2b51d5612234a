"""Shared fixtures for the regularizers tests: structured images and a tiny CNN with taps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


def oriented_images(n: int, generator: torch.Generator, size: int = 16, classes: int = 4):
    """Noisy gratings whose class is the orientation; phase and frequency are random."""
    y = torch.randint(classes, (n,), generator=generator)
    theta = y.float() * math.pi / classes + 0.15 * torch.randn(n, generator=generator)
    f = 0.12 + 0.1 * torch.rand(n, generator=generator)
    ph = 2 * math.pi * torch.rand(n, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    arg = 2 * math.pi * f[:, None, None] * (
        xx * torch.cos(theta)[:, None, None] + yy * torch.sin(theta)[:, None, None]
    ) + ph[:, None, None]
    x = 0.5 + 0.35 * torch.cos(arg) + 0.05 * torch.randn(n, size, size, generator=generator)
    return x.clamp(0, 1)[:, None], y


class TinyCNN(nn.Module):
    """Three conv stages with BatchNorm and a linear head; ``taps`` names its stages."""

    def __init__(self, in_channels: int = 1, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.pool = nn.Flatten()
        self.fc = nn.Linear(32, classes)
        self.taps = {"stem": "stem", "stage1": "stage1", "stage2": "stage2"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stage2(self.stage1(self.stem(x))).mean(dim=(2, 3)))


@pytest.fixture
def images_factory():
    return oriented_images


@pytest.fixture
def tiny_cnn():
    return TinyCNN
