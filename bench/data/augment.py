"""Training-time augmentation, batched on the device (``training.augment`` of a protocol)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.protocol import AUGMENTATIONS


def augment(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """``crop_flip``: a random 4-px reflect-padded crop and a horizontal flip with probability 1/2."""
    if mode == "none":
        return x
    if mode != "crop_flip":
        raise ConfigError(f"training.augment must be one of {', '.join(AUGMENTATIONS)}; got {mode!r}")
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    dy = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(-1, x.shape[1], -1, w + 8)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(-1, x.shape[1], h, -1)
    out = out.gather(3, cols)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)
