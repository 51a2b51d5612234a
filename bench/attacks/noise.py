"""Random corruptions as budget "attacks": Gaussian, uniform and salt-and-pepper noise.

The pixel_sim reference evaluates these at ten noise levels (docs/methods.md#22-noise-corruptions); the
protocol's eps grid of the matching threat model holds the levels. They never look at
gradients. With ``repeats`` > 1 the model is queried and each example keeps its first draw
that fools it (the worst case over draws), otherwise its last draw; ``repeats`` = 1 is the
reference's average case. All noise comes from the harness's ``generator``, so results are
reproducible given its state, the batch and the device.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from bench.attacks.base import Access, Attack
from bench.attacks.params import int_param
from bench.errors import ConfigError
from bench.registry import ATTACKS


class NoiseAttack(Attack):
    access = Access.QUERY
    max_level: ClassVar[float | None] = None  # salt-and-pepper's level is a probability

    @abstractmethod
    def corrupt(self, x: torch.Tensor, level: float, generator: torch.Generator) -> torch.Tensor:
        """One noisy draw of ``x`` at ``level``, inside [0, 1]."""

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        if not eps >= 0 or (self.max_level is not None and eps > self.max_level):
            limit = "" if self.max_level is None else f" and <= {self.max_level:g}"
            raise ConfigError(f"attack {self.name!r}: noise level eps = {eps!r} is invalid; accepted: a number >= 0{limit} "
                              f"(threat model {self.threat_model!r})")
        repeats = self.params["repeats"]  # declared and validated by the factory (its default: 1)
        result = self.corrupt(x, eps, generator)
        if repeats == 1:
            return result
        with torch.no_grad():
            fooled = model(result).argmax(1) != y
            for _ in range(repeats - 1):
                if fooled.all():
                    break
                draw = self.corrupt(x, eps, generator)
                result = torch.where(fooled.view(-1, *[1] * (x.dim() - 1)), result, draw)
                fooled |= model(draw).argmax(1) != y
        return result


class GaussianNoise(NoiseAttack):
    def corrupt(self, x, level, generator):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * noise).clamp(0, 1)


class UniformNoise(NoiseAttack):
    def corrupt(self, x, level, generator):
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        return (x + level * noise).clamp(0, 1)


class SaltPepper(NoiseAttack):
    """Each pixel location, all its channels together, becomes black or white with probability eps."""

    max_level = 1.0

    def corrupt(self, x, level, generator):
        shape = (x.shape[0], 1, *x.shape[2:])  # one draw per location, shared by the channels
        hit = torch.rand(shape, generator=generator, device=x.device) < level
        white = torch.rand(shape, generator=generator, device=x.device) < 0.5
        return torch.where(hit, white.to(x.dtype), x)


def _params(name: str, repeats: int) -> dict:
    return {"repeats": int_param(name, "repeats", repeats)}


@ATTACKS.register("gaussian_noise", description="additive Gaussian noise, std = the level, clipped to [0, 1]; worst of `repeats` draws")
def gaussian_noise(repeats: int = 1) -> Attack:
    return GaussianNoise("gaussian_noise", "gaussian_noise", _params("gaussian_noise", repeats))


@ATTACKS.register("uniform_noise", description="additive uniform noise in [-level, level], clipped to [0, 1]; worst of `repeats` draws")
def uniform_noise(repeats: int = 1) -> Attack:
    return UniformNoise("uniform_noise", "uniform_noise", _params("uniform_noise", repeats))


@ATTACKS.register("salt_pepper", description="salt-and-pepper noise: each pixel set to 0 or 1 with probability = the level; worst of `repeats` draws")
def salt_pepper(repeats: int = 1) -> Attack:
    return SaltPepper("salt_pepper", "salt_pepper", _params("salt_pepper", repeats))
