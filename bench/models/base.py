"""What every model of the harness is: normalisation inside, logits out, named feature taps.

Attacks see a model that takes images in [0, 1] and returns logits; normalisation is its
first layer, so no attack can forget it. ``taps`` maps feature names ("stem", "stage1",
...) to submodule paths, read through forward hooks by the regularisers and analyses.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class Classifier(nn.Module):
    """``net(frontend(normalize(x)))``; exposes the net's taps under their submodule paths.

    ``frontend`` is the identity unless a defense installs a fixed input layer (e.g. a
    low-pass or Gabor filter bank) before training.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.frontend: nn.Module = nn.Identity()
        self.net = net
        self.taps: dict[str, str] = {name: f"net.{path}" for name, path in getattr(net, "taps", {}).items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.frontend(self.normalize(x)))
