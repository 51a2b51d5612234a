"""Fixed first-layer filter banks installed before training: ``lowpass_frontend``, ``gabor_frontend``.

Gavrikov & Keuper (CVPR-W 2022) found that the first-layer filters of adversarially robust
networks differ most from normally trained ones and partly learn to remove perturbations.
These defenses hard-wire such a first stage instead of hoping training finds it: ``prepare``
installs a FIXED filter bank as ``model.frontend`` (between the normalisation and the
unchanged network), stored as buffers so the optimiser never touches it and every
checkpoint carries it. Both are trained defenses with the plain cross-entropy objective,
differentiable end to end (the attack differentiates the whole model, no surrogate needed).

- low-pass: a depthwise Gaussian blur of each input channel;
- Gabor: K fixed maps per input channel (orientations x phases x frequencies, plus an
  optional Gaussian low-pass map, since zero-mean Gabor filters discard the local mean),
  mixed back to the input channel count by a trainable 1x1 convolution, so the network
  that follows sees the shape it was built for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bench.defenses.base import Defense
from bench.defenses.transforms import (GaussianBlur, check_bool, check_int, check_number, check_odd_size, check_positive,
                                       default_kernel_size, depthwise_conv)
import bench.validate as validate
from bench.errors import ConfigError
from bench.registry import DEFENSES


def gabor_bank(orientations: int, phases: int, frequencies: Sequence[float], kernel_size: int, sigma: float,
               include_lowpass: bool) -> torch.Tensor:
    """[K, 1, k, k] filters: zero-mean, unit-L2 Gabor filters, then (optionally) a unit-sum Gaussian.

    ``g(u, v) = exp(-(u^2 + v^2) / (2 sigma^2)) cos(2 pi f u' + phi)``, ``u'`` the coordinate
    along orientation ``theta``; theta = i pi / orientations, phi = j pi / phases, f in cycles/pixel.
    """
    r = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    v, u = torch.meshgrid(r, r, indexing="ij")
    envelope = torch.exp(-(u**2 + v**2) / (2 * sigma**2))
    filters = []
    for f in frequencies:
        for i in range(orientations):
            theta = i * math.pi / orientations
            along = u * math.cos(theta) + v * math.sin(theta)
            for j in range(phases):
                g = envelope * torch.cos(2 * math.pi * f * along + j * math.pi / phases)
                g = g - g.mean()
                filters.append(g / g.norm().clamp_min(1e-12))
    if include_lowpass:
        filters.append(envelope / envelope.sum())
    return torch.stack(filters).unsqueeze(1).float()


class GaborFrontend(nn.Module):
    """Fixed Gabor bank per input channel (buffer) followed by a trainable 1x1 mix back to ``channels``."""

    def __init__(self, channels: int, bank: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", bank)
        self.mix = nn.Conv2d(channels * bank.shape[0], channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(depthwise_conv(x, self.bank))


@dataclass(kw_only=True)
class FrontendDefense(Defense):
    """Installs ``frontend(channels)`` as the fixed first layer of the model before training."""

    frontend: Callable[[int], nn.Module]

    def prepare(self, model: nn.Module) -> None:
        normalize = getattr(model, "normalize", None)
        if not hasattr(model, "frontend") or normalize is None:
            raise ConfigError(f"defense {self.name!r} installs model.frontend and needs a bench.models.Classifier; "
                              f"got {type(model).__name__}")
        model.frontend = self.frontend(int(normalize.mean.shape[1]))


@DEFENSES.register("lowpass_frontend", description="fixed Gaussian low-pass first layer, trained with cross-entropy (after Gavrikov & Keuper 2022)")
def lowpass_frontend(sigma: float = 1.0, kernel_size: int | None = None) -> Defense:
    name = "lowpass_frontend"
    sigma = check_positive(name, "sigma", sigma)
    size = default_kernel_size(sigma) if kernel_size is None else check_odd_size(name, "kernel_size", kernel_size, minimum=1)
    return FrontendDefense(name, {"sigma": sigma, "kernel_size": size}, frontend=lambda channels: GaussianBlur(sigma, size))


@DEFENSES.register("gabor_frontend", description="fixed Gabor filter bank + trainable 1x1 mix as first layer (after Gavrikov & Keuper 2022)")
def gabor_frontend(orientations: int = 4, phases: int = 2, frequencies: Sequence[float] = (0.25,), kernel_size: int = 7,
                   sigma: float = 2.0, include_lowpass: bool = True) -> Defense:
    name = "gabor_frontend"
    if isinstance(frequencies, (int, float)) and not isinstance(frequencies, bool):
        frequencies = [frequencies]
    if not isinstance(frequencies, (list, tuple)) or not 1 <= len(frequencies) <= 4:
        raise validate.invalid(f"defense {name!r}: parameter 'frequencies'", frequencies,
                               "a list of 1 to 4 numbers in (0, 0.5] (cycles per pixel)")
    params: dict[str, Any] = {
        "orientations": check_int(name, "orientations", orientations, 1, 16),
        "phases": check_int(name, "phases", phases, 1, 4),
        "frequencies": [check_number(name, "frequencies", f, 0.0, 0.5, low_open=True) for f in frequencies],
        "kernel_size": check_odd_size(name, "kernel_size", kernel_size, minimum=3),
        "sigma": check_positive(name, "sigma", sigma),
        "include_lowpass": check_bool(name, "include_lowpass", include_lowpass),
    }
    return FrontendDefense(name, params, frontend=lambda channels: GaborFrontend(channels, gabor_bank(**params)))
