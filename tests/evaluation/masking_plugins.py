"""A --plugin module of defenses that fake robustness by masking gradients, each a different way.

Each wraps the trained ``baseline`` model and leaves (almost) every prediction unchanged, so
any robustness a gradient attack reports for it is an artefact; the harness must flag every
one and keep it out of the ranking, whatever its score:

* ``mask_zero``: inputs quantised to 8 levels with no gradient declared (zero gradients);
* ``mask_shattered``: a tiny high-frequency wiggle added to the input (amplitude 1e-3), whose
  derivative swamps the model's own (shattered gradients);
* ``mask_saturated``: logits multiplied by 1e4, so the softmax saturates and cross-entropy's
  gradient underflows to zero (the prediction is the same);
* ``mask_nondiff``: the input goes through NumPy (a non-differentiable step, no gradient declared),
  so nothing flows back to the input at all.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.defenses import Defense
from bench.registry import DEFENSES


class Wrapped(nn.Module):
    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "zero":
            x = torch.round(x * 7) / 7
        elif self.kind == "shattered":
            x = (x + 1e-3 * torch.sin(1e4 * x)).clamp(0, 1)
        elif self.kind == "nondiff":
            x = torch.from_numpy(x.detach().cpu().numpy().copy()).to(x.device)
        logits = self.model(x)
        return logits * 1e4 if self.kind == "saturated" else logits


class MaskingDefense(Defense):
    def wrap(self, model: nn.Module) -> nn.Module:
        return Wrapped(model, self.params["kind"])


for _kind in ("zero", "shattered", "saturated", "nondiff"):
    def _factory(kind: str = _kind) -> Defense:
        return MaskingDefense(f"mask_{kind}", {"kind": kind}, base="baseline")

    DEFENSES.register(f"mask_{_kind}", description=f"test plugin: {_kind} gradients in front of the baseline")(_factory)
