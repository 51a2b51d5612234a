"""Mixed-precision gradients for the white-box attacks' inner loop.

A gradient step only needs the gradient's direction, which bfloat16 gives at a fraction of
the cost where the hardware has bfloat16 units (CUDA GPUs; CPUs with AMX tiles or AVX512-BF16
instructions, about 3x faster than float32 on the quick protocol's CNN: see
``benchmarks/gradient_chunk.py --precision``). The decision whether an example is fooled is never
taken in bfloat16: an attack confirms every bfloat16 success on the exact float32 model
(``confirm_fooled``), and the evaluation re-scores every returned image on the deployed
pipeline anyway, so reduced precision can weaken an attack slightly, never fake a success.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from bench.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` is ``bf16`` where it is fast (a CUDA GPU with bfloat16, a CPU with AMX tiles or
    AVX512-BF16), else ``fp32`` (a CPU without them would emulate bfloat16, slower than float32)."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision {name!r} is not one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16_units() else "fp32"


def cpu_has_bf16_units() -> bool:
    """AMX tiles (Intel Sapphire Rapids on) or AVX512-BF16 (e.g. AMD Zen 4): bfloat16 products in hardware."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe is not None and probe() for probe in probes)


class MixedPrecision(nn.Module):
    """The attacked model as the attacks see it: calling it runs the exact float32 model;
    ``fast(x)`` runs a channels-last copy under bfloat16 autocast, for gradients only."""

    def __init__(self, model: nn.Module, device_type: str):
        super().__init__()
        self.exact = model
        self.device_type = device_type
        try:
            fast = copy.deepcopy(model)
        except Exception:  # a pipeline that cannot be copied keeps its own memory format
            fast = model
        self.fast_model = fast.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.exact(x)

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=self.device_type, dtype=torch.bfloat16):
            return self.fast_model(x).float()


def with_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """``model`` wrapped for bfloat16 gradients when ``precision`` (already resolved) asks for them."""
    return MixedPrecision(model, device.type).eval() if precision == "bf16" else model


class _FastView(nn.Module):
    """A :class:`MixedPrecision` model whose every call is the fast pass (for library attacks,
    which take a module and decide on its outputs; the evaluation re-scores their images)."""

    def __init__(self, model: MixedPrecision):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.fast(x)


def fast_view(model: nn.Module) -> nn.Module:
    """``model``'s fast pass as a module of its own where it has one, else ``model``."""
    return _FastView(model).eval() if isinstance(model, MixedPrecision) else model


def gradient_forward(model: nn.Module):
    """The forward pass to differentiate: the fast one where the model offers it."""
    return getattr(model, "fast", model)


def confirm_fooled(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, fooled: torch.Tensor) -> torch.Tensor:
    """``fooled`` (bool per example, from the logits of the gradient pass) with every success
    re-checked on the exact model when the gradient pass ran in reduced precision."""
    if not isinstance(model, MixedPrecision) or not bool(fooled.any()):
        return fooled
    idx = fooled.nonzero().flatten()
    with torch.no_grad():
        exact = model(x_adv[idx]).argmax(1) != y[idx]
    out = fooled.clone()
    out[idx] = exact
    return out
