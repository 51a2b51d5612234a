"""The regularisation loss between the network's and the target's pair similarities."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LOSS_KINDS", "fisher_g", "similarity_loss", "pearson"]

LOSS_KINDS = ("artanh", "mse")


def fisher_g(s: Tensor, eps: float = 1e-5) -> Tensor:
    """g(s) = log(1 + s + eps) - log(1 - s + eps), i.e. 2 artanh(s) made finite at s = +-1.

    The Fisher transform stretches similarities near +-1, so errors between, say, 0.95 and
    0.99 count as much as those near 0. ``s`` is clamped to [-1 - eps/2, 1 + eps/2]: a
    cosine can overshoot +-1 by rounding and 1 - s + eps must stay positive, while at exactly
    +-1 (identical images) the gradient must survive, which a clamp to [-1, 1] would kill.
    """
    s = s.clamp(-1.0 - eps / 2, 1.0 + eps / 2)
    return torch.log1p(s + eps) - torch.log1p(-s + eps)


def similarity_loss(s_cnn: Tensor, s_target: Tensor, kind: str = "artanh", eps: float = 1e-5) -> Tensor:
    """Mean over pairs of (g(s_cnn) - g(s_target))^2 (``artanh``, as the reference code; 4x the
    paper's artanh^2 form) or of (s_cnn - s_target)^2 (``mse``)."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; valid: {', '.join(LOSS_KINDS)}")
    if s_cnn.shape != s_target.shape:
        raise ValueError(f"s_cnn {tuple(s_cnn.shape)} and s_target {tuple(s_target.shape)} differ in shape")
    s_target = s_target.to(device=s_cnn.device, dtype=s_cnn.dtype)
    if kind == "mse":
        return (s_cnn - s_target).pow(2).mean()
    return (fisher_g(s_cnn, eps) - fisher_g(s_target, eps)).pow(2).mean()


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two 1-D tensors as a float; NaN if either is constant."""
    a = a.detach().to(torch.float64).flatten()
    b = b.detach().to(device=a.device, dtype=torch.float64).flatten()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else float("nan")
