"""Convolution-filter statistics of a trained model (Gavrikov & Keuper, CVPR-W 2022, arXiv 2204.02481).

Robust networks were found to have fewer sparse 3x3 kernels, more diverse kernels (higher
variance entropy) and more orthogonal filters than normally trained twins, most of all in
the first and the deepest layers. This module computes the three statistics for every
``nn.Conv2d`` with 3x3 kernels, so defenses of the harness can be compared on them.

Definitions, for a layer ``W in R^{c_out x c_in x 3 x 3}`` (n = c_out * c_in kernels):

- sparsity: ``t = 0.01 max|W|``; a kernel is sparse if ``max|k| <= t``; the fraction of
  sparse kernels. (``torchconvquality`` tests ``|w| < t``; they differ only for a kernel
  whose largest weight equals ``t`` exactly.)
- variance entropy: each non-sparse kernel scaled by its own max-abs, stacked n' x 9,
  centred; ``lambda_i = s_i^2 / (n' - 1)`` from the singular values, ``p = lambda / sum``,
  ``H = -sum p log10 p`` (0 log 0 = 0) in [0, log10 9]. ``H = 0`` when the scaled kernels
  do not vary (total variance below 1e-10: equal up to float32 rounding); undefined
  (None) for fewer than two non-sparse kernels. The normalised entropy divides H by
  ``torchconvquality``'s randomness bound ``tau(n')`` (a logistic fit in log2 n' to the
  entropy of random kernels), as its ``variance_entropy_clean_norm`` does; values near or
  above 1 mean kernels as diverse as random ones. The fit is negative for n' = 2, where
  the normalised entropy is left undefined (None). (``torchconvquality`` itself does not
  scale kernels by their max-abs; see docs/methods.md#92-convolution-filter-statistics.)
- orthogonality: each output filter flattened to c_in*9 and L2-normalised (an all-zero
  filter stays zero, as in ``torchconvquality``), ``O = 1 - sum_{i != j} |w_i . w_j| /
  (c_out (c_out - 1))``; undefined (None) for a single output filter.

Only ``nn.Conv2d`` modules with 3x3 kernels are analysed (as in ``torchconvquality``);
other convolutions (a ResNet's 7x7 stem, 1x1 shortcuts and mixes) are listed as skipped,
and fixed filter banks stored as buffers (the frontend defenses') are not convolution
modules and are not seen. Depth is the position among the analysed layers, in module
registration order, normalised to [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch
from torch import nn

SPARSITY_EPS = 0.01
METRICS = ("sparsity", "variance_entropy", "variance_entropy_norm", "orthogonality")
_LOG10 = math.log(10.0)
# Total variance below which max-abs-scaled kernels (entries in [-1, 1]) count as identical:
# float32 weights that are multiples of one kernel differ by ~1e-7 after scaling (variance ~1e-14).
_NO_VARIANCE = 1e-10


def sparse_kernel_mask(weight: torch.Tensor, sparsity_eps: float = SPARSITY_EPS) -> torch.Tensor:
    """Boolean [c_out * c_in]: which kernels have ``max|k| <= sparsity_eps * max|W|``."""
    kernels = weight.detach().flatten(0, 1).flatten(1)
    threshold = sparsity_eps * kernels.abs().max()
    return kernels.abs().amax(dim=1) <= threshold


def sparsity(weight: torch.Tensor, sparsity_eps: float = SPARSITY_EPS) -> float:
    """Fraction of sparse kernels of a layer."""
    return float(sparse_kernel_mask(weight, sparsity_eps).double().mean())


def randomness_bound(n: int) -> float:
    """``torchconvquality``'s tau(n): variance entropy that n random 3x3 kernels reach (logistic in log2 n)."""
    l, x0, k, b = (1.2618047, 2.30436435, 0.88767525, -0.31050834)
    return l / (1 + math.exp(-k * (math.log2(n) - x0))) + b


def variance_entropy(weight: torch.Tensor, sparsity_eps: float = SPARSITY_EPS) -> tuple[float | None, float | None]:
    """(H, H / tau(n')) over the non-sparse kernels, each scaled by its own max-abs; None where undefined."""
    kernels = weight.detach().flatten(0, 1).flatten(1).double()
    kept = kernels[~sparse_kernel_mask(weight, sparsity_eps)]
    n = kept.shape[0]
    if n < 2:
        return None, None
    scaled = kept / kept.abs().amax(dim=1, keepdim=True)
    s = torch.linalg.svdvals(scaled - scaled.mean(dim=0))
    variance = s**2 / (n - 1)
    total = variance.sum()
    if total <= _NO_VARIANCE:  # the "spectrum" of rounding noise would be meaningless
        return 0.0, 0.0
    p = variance / total
    h = float(-torch.special.xlogy(p, p).sum() / _LOG10)
    tau = randomness_bound(n)
    return h, (h / tau if tau > 0 else None)


def orthogonality(weight: torch.Tensor) -> float | None:
    """Mean absolute cosine between distinct output filters, subtracted from 1; None for one filter."""
    filters = weight.detach().flatten(1).double()
    c_out = filters.shape[0]
    if c_out < 2:
        return None
    unit = filters / filters.norm(dim=1, keepdim=True).clamp_min(torch.finfo(filters.dtype).tiny)
    cos = (unit @ unit.T).abs()
    off_diagonal = cos.sum() - cos.diagonal().sum()
    return float(1 - off_diagonal / (c_out * (c_out - 1)))


def layer_quality(weight: torch.Tensor, sparsity_eps: float = SPARSITY_EPS) -> dict[str, Any]:
    """The three statistics of one conv weight [c_out, c_in, kh, kw]."""
    if weight.dim() != 4:
        raise ValueError(f"a conv weight must be [c_out, c_in, kh, kw], got shape {tuple(weight.shape)}")
    mask = sparse_kernel_mask(weight, sparsity_eps)
    h, h_norm = variance_entropy(weight, sparsity_eps)
    return {
        "n_kernels": int(mask.numel()),
        "n_nonsparse": int((~mask).sum()),
        "sparsity": float(mask.double().mean()),
        "variance_entropy": h,
        "variance_entropy_norm": h_norm,
        "orthogonality": orthogonality(weight),
    }


def conv_layers(model: nn.Module) -> tuple[list[tuple[str, nn.Conv2d]], list[dict[str, Any]]]:
    """(analysed 3x3 convolutions, skipped convolutions with their kernel size), in registration order."""
    analysed, skipped = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if tuple(module.kernel_size) == (3, 3):
                analysed.append((name, module))
            else:
                skipped.append({"name": name, "kernel_size": list(module.kernel_size), "reason": "not 3x3"})
    return analysed, skipped


def unwrap_classifier(pipeline: nn.Module) -> tuple[nn.Module, str]:
    """The trained classifier inside a deployed pipeline: follow ``.model`` until ``.taps`` and ``.net`` exist.

    Input-transformation defenses wrap the classifier; their filters are the classifier's.
    Returns the module and its attribute path from the pipeline ("" for the pipeline itself).
    """
    module, path = pipeline, []
    while not (hasattr(module, "taps") and hasattr(module, "net")):
        inner = getattr(module, "model", None)
        if not isinstance(inner, nn.Module):
            raise ValueError(f"{type(pipeline).__name__} wraps no classifier with .taps and .net "
                             f"(stopped at {type(module).__name__} via {'.'.join(path) or 'the pipeline'})")
        module, path = inner, path + ["model"]
    return module, ".".join(path)


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return sum(finite) / len(finite) if finite else None


def decile_of(depth: float) -> int:
    """Decile 0..9 of a normalised depth in [0, 1] (depth 1 falls in the last decile)."""
    return min(int(math.floor(depth * 10 + 1e-9)), 9)


def model_filter_quality(model: nn.Module, sparsity_eps: float = SPARSITY_EPS) -> dict[str, Any]:
    """Per-layer table, the first analysed layer, decile means and the skipped layers of ``model``."""
    analysed, skipped = conv_layers(model)
    last = max(len(analysed) - 1, 1)
    layers = []
    for index, (name, conv) in enumerate(analysed):
        depth = index / last
        layers.append({"name": name, "depth_index": index, "depth": depth, "decile": decile_of(depth),
                       "shape": list(conv.weight.shape), **layer_quality(conv.weight, sparsity_eps)})
    deciles = []
    for d in sorted({row["decile"] for row in layers}):
        rows = [row for row in layers if row["decile"] == d]
        deciles.append({"decile": d, "depth_range": [d / 10, (d + 1) / 10], "n_layers": len(rows),
                        "layers": [row["name"] for row in rows], **{m: _mean([row[m] for row in rows]) for m in METRICS}})
    return {
        "sparsity_eps": sparsity_eps,
        "n_layers": len(layers),
        "layers": layers,
        "first_layer": layers[0] if layers else None,
        "deciles": deciles,
        "model_mean": {m: _mean([row[m] for row in layers]) for m in METRICS},
        "skipped": skipped,
    }


def layer_table(result: dict[str, Any]) -> pd.DataFrame:
    """The per-layer rows of :func:`model_filter_quality` as a data frame."""
    columns = ["name", "depth_index", "depth", "decile", "n_kernels", "n_nonsparse", *METRICS]
    return pd.DataFrame([{c: row[c] for c in columns} for row in result["layers"]], columns=columns)
