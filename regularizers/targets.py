"""Target similarity matrices for the representational-similarity regularisers.

A target is an ``N x N`` matrix over the ``N`` regularisation images saying how similar the
network's representations of two images should be. ``pixel_sim`` (Attias, Pehlevan & Obeid)
takes it from the images' pixels, ``neural_sim`` (Li et al. 2019) from neural recordings;
the controls (shuffled identities, class labels) test whether the *structure* of the target
matters. Everything here is a few dense float32 matrix operations, so ``N = 5000`` takes about
a second on two CPU cores.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = [
    "to_grayscale",
    "centred_cosine",
    "pixel_similarity",
    "threshold_similarity",
    "reliability_weights",
    "neural_similarity",
    "average_similarity",
    "shuffled_target",
    "label_target",
]

LUMA = (0.299, 0.587, 0.114)
COLORS = ("luma", "mean")


def _check_images(images: Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
    if images.shape[0] < 2:
        raise ValueError(f"need at least 2 images for a similarity matrix, got {images.shape[0]}")
    lo, hi = float(images.min()), float(images.max())
    if not (lo >= -1e-6 and hi <= 1 + 1e-6):
        raise ValueError(f"images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


def to_grayscale(images: Tensor, color: str = "luma") -> Tensor:
    """Float images [N, C, H, W] -> [N, 1, H, W]: ITU-R 601 luma for RGB, or the channel mean.

    ``luma`` is the paper's grayscale; ``mean`` is what the reference code does for its RGB
    option. One-channel images are returned unchanged.
    """
    if color not in COLORS:
        raise ValueError(f"unknown color {color!r}; valid: {', '.join(COLORS)}")
    if images.shape[1] == 1:
        return images
    if color == "mean":
        return images.mean(dim=1, keepdim=True)
    if images.shape[1] != 3:
        raise ValueError(f"color='luma' needs 1 or 3 channels, got {images.shape[1]}; use color='mean'")
    w = torch.tensor(LUMA, dtype=images.dtype, device=images.device)
    return torch.einsum("nchw,c->nhw", images, w).unsqueeze(1)


def centred_cosine(x: Tensor) -> Tensor:
    """Cosine similarity of the rows of ``x`` [N, D] after subtracting the mean row.

    The shared definition of both targets: S = X_hat X_hat^T with X_hat the centred,
    row-normalised data. A row equal to the mean (zero after centring) gets similarity 0 to
    everything, itself included, instead of NaN.
    """
    x = x.to(torch.float32)
    x = x - x.mean(dim=0, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x @ x.T


def pixel_similarity(images: Tensor, color: str = "luma") -> Tensor:
    """Centred cosine similarity of the images' grayscale pixels, float32 [N, N] (``pixel_sim``).

    ``images``: float [N, C, H, W] in [0, 1]. Pixels are flattened, the per-pixel mean over
    the N images is subtracted and each image vector is L2-normalised.
    """
    _check_images(images)
    gray = to_grayscale(images.to(torch.float32), color)
    return centred_cosine(gray.flatten(1))


def threshold_similarity(similarity: Tensor, th: float, dtype: torch.dtype | None = None) -> Tensor:
    """Three-level target in {-1, 0, +1}: +1 where S > th, -1 where S < -th, identity diagonal.

    As in the reference ("boosting"): start from the identity, then overwrite the entries
    beyond +-th; the diagonal is forced to 1 (never sampled, kept for a valid matrix).
    ``dtype`` defaults to the input's; ``torch.int8`` stores N = 5000 in 25 MB.
    """
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {tuple(similarity.shape)}")
    if not th >= 0:
        raise ValueError(f"th must be >= 0, got {th}")
    n = similarity.shape[0]
    out = torch.zeros(n, n, dtype=dtype or similarity.dtype, device=similarity.device)
    out.masked_fill_(similarity > th, 1)
    out.masked_fill_(similarity < -th, -1)
    out.fill_diagonal_(1)
    return out


def reliability_weights(repeats: Tensor) -> Tensor:
    """Per-neuron weight w_a = sigma_a / eta_a from repeated trials [R, M, neurons] (Li et al.).

    sigma_a^2 is the variance over the M stimuli of the trial-averaged response (signal),
    eta_a^2 the mean over stimuli of the variance across the R trials (noise); both with
    Bessel's correction. Reliable neurons get large weights, noisy ones small. Guards: a
    neuron with eta = 0 has eta floored at 1e-6 * max(eta) (a constant neuron, sigma = 0,
    thus gets 0); if every eta is 0 the repeats carry no noise information and every neuron
    with sigma > 0 gets weight 1.
    """
    if repeats.dim() != 3:
        raise ValueError(f"repeats must be [repeats, images, neurons], got shape {tuple(repeats.shape)}")
    r, m, _ = repeats.shape
    if r < 2 or m < 2:
        raise ValueError(f"reliability weights need >= 2 repeats and >= 2 images, got {r} repeats of {m} images")
    rep = repeats.to(torch.float64)
    sigma = rep.mean(dim=0).var(dim=0, unbiased=True).sqrt()
    eta = rep.var(dim=0, unbiased=True).mean(dim=0).sqrt()
    eta_max = float(eta.max())
    if eta_max == 0.0:
        return (sigma > 0).to(torch.float32)
    return (sigma / eta.clamp_min(1e-6 * eta_max)).to(torch.float32)


def neural_similarity(
    responses: Tensor,
    repeats: Tensor | None = None,
    reliability_weighting: bool = True,
) -> Tensor:
    """Centred cosine similarity of population responses, float32 [N, N] (``neural_sim``).

    ``responses``: [N images, neurons]. With ``reliability_weighting`` and ``repeats``
    ([R, M, neurons]; the M repeated images may be a different, e.g. "oracle", set: only the
    neuron axis must match) each neuron is scaled by :func:`reliability_weights` before
    centring over images, L2-normalising each image vector and taking S = U U^T. Without
    repeats the weighting is skipped (there is nothing to estimate the noise from).
    """
    if responses.dim() != 2:
        raise ValueError(f"responses must be [images, neurons], got shape {tuple(responses.shape)}")
    if responses.shape[0] < 2:
        raise ValueError(f"need at least 2 images, got {responses.shape[0]}")
    if not torch.isfinite(responses).all():
        raise ValueError("responses contain NaN or inf")
    u = responses.to(torch.float32)
    if reliability_weighting and repeats is not None:
        if repeats.dim() != 3 or repeats.shape[2] != responses.shape[1]:
            raise ValueError(
                f"repeats must be [repeats, images, {responses.shape[1]} neurons] to match responses, "
                f"got shape {tuple(repeats.shape)}"
            )
        u = u * reliability_weights(repeats).to(u.device)
    return centred_cosine(u)


def average_similarity(matrices: Sequence[Tensor]) -> Tensor:
    """Mean of several similarity matrices over the same images (e.g. several recording scans)."""
    if len(matrices) == 0:
        raise ValueError("average_similarity needs at least one matrix")
    shape = matrices[0].shape
    for k, m in enumerate(matrices):
        if m.shape != shape:
            raise ValueError(f"matrix {k} has shape {tuple(m.shape)}, expected {tuple(shape)} like matrix 0")
    out = matrices[0].to(torch.float32).clone()
    for m in matrices[1:]:
        out += m.to(torch.float32)
    return out / len(matrices)


def shuffled_target(target: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Control target: the same matrix with image identities permuted (rows and columns together).

    Keeps the distribution of similarity values (and the diagonal) but breaks their relation
    to the images. The permutation is ``torch.randperm(N, generator=generator)``:
    ``out[a, b] = target[p[a], p[b]]``.
    """
    if target.dim() != 2 or target.shape[0] != target.shape[1]:
        raise ValueError(f"target must be a square matrix, got shape {tuple(target.shape)}")
    perm = torch.randperm(target.shape[0], generator=generator).to(target.device)
    return target.index_select(0, perm).index_select(1, perm)


def label_target(labels: Tensor, different: float = 0.0) -> Tensor:
    """Control target from class labels: +1 for a same-class pair, ``different`` otherwise.

    The default 0 is the reference code's categorical target (``categorical_s_matrix``).
    We do not use -1: more than two classes cannot all be mutually anti-correlated (the most
    negative cosine K equidistant vectors can share is -1/(K-1)), so -1 would ask the
    network for the impossible; pass ``different=-1/(K-1)`` for the centred one-hot geometry.
    Float32 [N, N] with identity diagonal.
    """
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {tuple(labels.shape)}")
    if not -1.0 <= different <= 1.0:
        raise ValueError(f"different must lie in [-1, 1], got {different}")
    same = labels[:, None] == labels[None, :]
    out = torch.full(same.shape, float(different), dtype=torch.float32, device=labels.device)
    out[same] = 1.0
    return out
