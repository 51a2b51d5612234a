"""The network's own similarity of two images, S_cnn(i, j), as a learned mixture over layers.

Per tap k (e.g. ResNet18's stem and four stages) the two images' feature maps are centred
by a per-channel running mean mu_k and compared by cosine; the L per-tap similarities are
mixed with softmax(w), w trainable from 0 (uniform 1/L). Centring matters: post-ReLU
features are all positive, so uncentred cosines sit near 1 for every pair.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CNNSimilarity", "MEAN_INITS"]

MEAN_INITS = ("zero", "first")


class CNNSimilarity(nn.Module):
    """S_cnn = sum_k softmax(w)_k cos(vec(f_k(x_i) - mu_k), vec(f_k(x_j) - mu_k)).

    ``forward(features)`` takes ``{tap name: Tensor[2k, C, ...]}`` whose first k rows are
    the images i and last k rows the images j of k pairs, and returns S_cnn [k]. Features
    may be conv maps [2k, C, H, W] or vectors [2k, C] (fc taps); channel axis is 1.

    Running means (buffers, no gradient), updated in training mode only, *before* they are
    used, from the mean over both images of the pair batch over the batch and spatial axes:
    mu <- beta * mu + (1 - beta) * batch_mean. ``mean_init="zero"`` (default) starts mu at 0
    as the reference code does, so for the first ~1/(1-beta) = 10 steps mu underestimates the
    mean (by beta^t); ``"first"`` sets mu to the first batch mean instead. The reference also
    updates mu in eval mode; here eval mode leaves it alone. The channel count is learned on
    the first call (buffers start empty), and ``load_state_dict`` resizes them.
    """

    def __init__(self, tap_names: Sequence[str], beta: float = 0.9, mean_init: str = "zero") -> None:
        super().__init__()
        names = list(tap_names)
        if not names:
            raise ValueError("CNNSimilarity needs at least one tap")
        if len(set(names)) != len(names):
            raise ValueError(f"tap names must be unique, got {names}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        if mean_init not in MEAN_INITS:
            raise ValueError(f"unknown mean_init {mean_init!r}; valid: {', '.join(MEAN_INITS)}")
        self.tap_names = names
        self.beta = float(beta)
        self.mean_init = mean_init
        self.layer_logits = nn.Parameter(torch.zeros(len(names)))
        for k in range(len(names)):
            self.register_buffer(f"running_mean_{k}", torch.zeros(0))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def running_mean(self, name: str) -> Tensor:
        """The running mean mu of tap ``name`` (empty before the first forward)."""
        return getattr(self, f"running_mean_{self.tap_names.index(name)}")

    def layer_weights(self) -> list[float]:
        """softmax(w) as floats, in ``tap_names`` order, for logging (the mixture often collapses)."""
        return torch.softmax(self.layer_logits.detach(), dim=0).tolist()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        for k in range(len(self.tap_names)):
            key = f"{prefix}running_mean_{k}"
            if key in state_dict:
                ref = getattr(self, f"running_mean_{k}")
                self._buffers[f"running_mean_{k}"] = torch.empty_like(state_dict[key], device=ref.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _centred(self, k: int, f: Tensor) -> Tensor:
        if f.dim() < 2:
            raise ValueError(f"tap {self.tap_names[k]!r}: features must be [2k, C, ...], got shape {tuple(f.shape)}")
        f = f.float()
        channels = f.shape[1]
        name = f"running_mean_{k}"
        mu = getattr(self, name)
        if mu.numel() != channels:
            if mu.numel() != 0:
                raise ValueError(
                    f"tap {self.tap_names[k]!r} has {channels} channels, its running mean has {mu.numel()}"
                )
            mu = torch.zeros(channels, device=f.device)
            self._buffers[name] = mu
        if self.training:
            with torch.no_grad():
                batch_mean = f.detach().mean(dim=[d for d in range(f.dim()) if d != 1])
                ema = self.beta * mu + (1.0 - self.beta) * batch_mean
                if self.mean_init == "first":  # branch on the device: no host sync per step
                    ema = torch.where(self.num_updates.to(mu.device) == 0, batch_mean, ema)
                mu.copy_(ema)
        return f - mu.view(1, channels, *([1] * (f.dim() - 2)))

    def per_tap(self, features: Mapping[str, Tensor]) -> Tensor:
        """Per-tap cosine similarities [k, L] (updates the running means in training mode)."""
        missing = [n for n in self.tap_names if n not in features]
        if missing:
            raise KeyError(f"features lack taps {missing}; got {sorted(features)}")
        rows = {int(features[n].shape[0]) for n in self.tap_names}
        if len(rows) != 1 or next(iter(rows)) % 2 != 0 or next(iter(rows)) == 0:
            raise ValueError(f"every tap needs the same even number 2k > 0 of rows, got {sorted(rows)}")
        k = next(iter(rows)) // 2
        sims = []
        for idx, name in enumerate(self.tap_names):
            c = self._centred(idx, features[name]).flatten(1)
            sims.append(F.cosine_similarity(c[:k], c[k:], dim=1, eps=1e-8))
        if self.training:
            self.num_updates += 1
        return torch.stack(sims, dim=1)

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        sims = self.per_tap(features)
        return (sims * torch.softmax(self.layer_logits, dim=0).to(sims.device)).sum(dim=1)
