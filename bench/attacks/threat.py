"""Threat models as objects: how to start, step and project a perturbation.

One PGD loop serves every norm because the norm-specific parts live here (the design of
MadryLab's ``robustness.attack_steps``). All perturbations are of images in [0, 1].
"""

from __future__ import annotations

import math

import torch

_TINY = 1e-12


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    return t.flatten(1).norm(p=p, dim=1).view(-1, *([1] * (t.dim() - 1)))


class Linf:
    name = "linf"
    bounded = True

    @staticmethod
    def random_init(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
        return (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * eps

    @staticmethod
    def step(delta: torch.Tensor, grad: torch.Tensor, size: float) -> torch.Tensor:
        return delta + size * grad.sign()

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta.clamp(-eps, eps)

    @staticmethod
    def norm(delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    @staticmethod
    def dual_norm(g: torch.Tensor) -> torch.Tensor:
        """L_1: a linear function's change over the L_inf ball of radius 1."""
        return g.flatten(1).abs().sum(dim=1)


class L2:
    name = "l2"
    bounded = True

    @staticmethod
    def random_init(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
        direction = torch.randn(x.shape, generator=generator, device=x.device)
        direction = direction / (_flat_norm(direction, 2) + _TINY)
        radius = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device) ** (1.0 / x[0].numel())
        return direction * radius * eps

    @staticmethod
    def step(delta: torch.Tensor, grad: torch.Tensor, size: float) -> torch.Tensor:
        return delta + size * grad / (_flat_norm(grad, 2) + _TINY)

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        norm = _flat_norm(delta, 2)
        return delta * torch.clamp(eps / (norm + _TINY), max=1.0)

    @staticmethod
    def norm(delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).norm(p=2, dim=1)

    @staticmethod
    def dual_norm(g: torch.Tensor) -> torch.Tensor:
        return g.flatten(1).norm(p=2, dim=1)


class Corruption:
    """Random corruptions (noise): the grid's "eps" is a noise level, not a norm budget."""

    bounded = False

    def __init__(self, name: str):
        self.name = name

    @staticmethod
    def norm(delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).abs().amax(dim=1)  # reported only; never checked against eps


def eps_limit(threat_model: str, input_dims: int) -> tuple[float, str]:
    """The largest meaningful budget of ``threat_model`` for images of ``input_dims`` values in [0, 1], and why:
    beyond it every image is reachable (L_inf 1, L_2 the diagonal of the unit cube) or the level saturates."""
    if threat_model == "l2":
        return math.sqrt(input_dims), f"the L_2 diameter of [0, 1]^{input_dims}"
    if threat_model == "linf":
        return 1.0, "images lie in [0, 1], so eps 1 already reaches every image"
    return 1.0, "a noise level is a standard deviation, half-width or fraction of pixels of images in [0, 1]"


THREAT_MODELS = {
    "linf": Linf,
    "l2": L2,
    "gaussian_noise": Corruption("gaussian_noise"),  # level = std of additive Gaussian noise
    "uniform_noise": Corruption("uniform_noise"),  # level = half-width of additive uniform noise
    "salt_pepper": Corruption("salt_pepper"),  # level = fraction of pixels set to 0 or 1
}
