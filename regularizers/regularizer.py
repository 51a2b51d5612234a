"""The representational-similarity regulariser, ready for any PyTorch training loop.

    L = CE(f(x), y) + alpha * mean_pairs [g(S_cnn(i, j)) - g(S_target(i, j))]^2

:class:`SimilarityRegularizer` holds the N regularisation images, the N x N target, the
:class:`~regularizers.pairs.PairSampler` and the :class:`~regularizers.similarity.CNNSimilarity`
(whose layer-mixture logits are its only parameters). One training step::

    reg = SimilarityRegularizer.from_pixels(reg_images, tap_names=model.taps, th=0.8, alpha=10)
    opt = torch.optim.SGD([*model.parameters(), *reg.parameters()], lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    model.train(); reg.train()
    for x, y in batches:                                        # x: [64, C, H, W]
        pairs = reg.sample_pair_batch(16, gen)                  # 32 images, 16 targets
        logits, feats = regularized_forward(model, model.taps, x, pairs)
        reg_loss, diag = reg.loss(feats, pairs.target)          # alpha * loss, logging dict
        loss = F.cross_entropy(logits, y) + reg_loss
        opt.zero_grad(); loss.backward(); opt.step()

:func:`regularized_forward` runs the classification batch and the pair images through the
network as ONE batch (64 + 32 = 96 images), with taps recorded only for the pair rows, so a
step costs about 1.5x a plain one. BatchNorm consequence: in training mode every BN layer
normalises the 96 images with the statistics of the joint batch, and its running statistics
are updated once per step from that joint batch. The reference code instead makes separate
forward passes (classification batch; pair images), each normalised by its own statistics
and each updating the running statistics. We choose the joint pass because it is cheaper
(one pass, better device utilisation), and because both losses then see the network in the
same BN state, so the similarity being regularised is that of the network that classifies.
The price: classification logits depend slightly on the pair images and vice versa, and
the running statistics include the regularisation images (for ``neural_sim`` these may come
from another distribution, e.g. grayscale ImageNet). In eval mode the joint pass gives
exactly the logits of ``model(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from .loss import LOSS_KINDS, pearson, similarity_loss
from .pairs import PairSampler
from .similarity import CNNSimilarity
from .targets import average_similarity, neural_similarity, pixel_similarity, threshold_similarity
from .taps import record_taps

__all__ = ["PairBatch", "SimilarityRegularizer", "regularized_forward"]


@dataclass
class PairBatch:
    """k pairs: ``images`` [2k, C, H, W] (rows :k are the images i, rows k: the images j),
    ``target`` float32 [k], and the pair indices ``i``, ``j`` into the regularisation set."""

    images: Tensor
    target: Tensor
    i: Tensor
    j: Tensor

    def __len__(self) -> int:
        return int(self.target.shape[0])


def _tap_list(tap_names: Sequence[str] | Mapping[str, str]) -> list[str]:
    return list(tap_names.keys()) if isinstance(tap_names, Mapping) else list(tap_names)


class SimilarityRegularizer(nn.Module):
    """Pair sampling, target look-up and the weighted similarity loss (see the module docstring).

    ``images``: float [N, C, H, W] in [0, 1], kept as given (the model's input format).
    ``target``: N x N; stored as int8 when every entry is -1, 0 or +1 (thresholded or
    label targets: 25 MB for N = 5000), otherwise as ``continuous_dtype`` (float16 by
    default: rounding error at most 2^-12 for |s| <= 1). Images and target are
    non-persistent buffers: they follow ``.to(device)`` but stay out of ``state_dict``,
    which holds only the layer mixture and the running means.
    """

    def __init__(
        self,
        images: Tensor,
        target: Tensor,
        tap_names: Sequence[str] | Mapping[str, str],
        sampler: PairSampler,
        *,
        alpha: float = 10.0,
        loss_kind: str = "artanh",
        beta: float = 0.9,
        eps: float = 1e-5,
        mean_init: str = "zero",
        continuous_dtype: torch.dtype = torch.float16,
    ) -> None:
        super().__init__()
        if images.dim() != 4 or not images.is_floating_point():
            raise ValueError(f"images must be float [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        n = images.shape[0]
        if target.shape != (n, n):
            raise ValueError(f"target must be {n} x {n} for {n} images, got shape {tuple(target.shape)}")
        if sampler.num_images != n:
            raise ValueError(f"sampler covers {sampler.num_images} images, not {n}")
        if loss_kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss kind {loss_kind!r}; valid: {', '.join(LOSS_KINDS)}")
        if not torch.isfinite(target).all() or float(target.abs().max()) > 1.0 + 1e-4:
            raise ValueError("target must be finite with entries in [-1, 1]")
        three_level = bool(((target == 0) | (target == 1) | (target == -1)).all())
        stored = target.to(torch.int8) if three_level else target.to(continuous_dtype)
        self.register_buffer("images", images, persistent=False)
        self.register_buffer("target", stored, persistent=False)
        self.sampler = sampler
        self.similarity = CNNSimilarity(_tap_list(tap_names), beta=beta, mean_init=mean_init)
        self.alpha = float(alpha)
        self.loss_kind = loss_kind
        self.eps = float(eps)

    @classmethod
    def from_similarity(
        cls,
        images: Tensor,
        similarity: Tensor,
        *,
        tap_names: Sequence[str] | Mapping[str, str],
        threshold: bool = False,
        th: float = 0.6,
        reg_range: str = "all",
        **kwargs,
    ) -> "SimilarityRegularizer":
        """Regulariser for a given continuous similarity: the target is ``similarity`` itself
        or, with ``threshold``, :func:`threshold_similarity` of it; pair subsets use the
        continuous one. ``kwargs`` go to the constructor (alpha, loss_kind, beta, ...)."""
        sampler = PairSampler(similarity, reg_range, th if reg_range != "all" else None)
        target = threshold_similarity(similarity, th, dtype=torch.int8) if threshold else similarity
        return cls(images, target, tap_names, sampler, **kwargs)

    @classmethod
    def from_pixels(
        cls,
        images: Tensor,
        *,
        tap_names: Sequence[str] | Mapping[str, str],
        th: float = 0.6,
        threshold: bool = True,
        reg_range: str = "all",
        alpha: float = 10.0,
        color: str = "luma",
        **kwargs,
    ) -> "SimilarityRegularizer":
        """``pixel_sim``: target from the images' centred grayscale pixel cosines, thresholded
        at ``th`` by default (reference README: alpha 10, th 0.8 for CIFAR; code default th 0.6)."""
        s = pixel_similarity(images, color=color)
        return cls.from_similarity(
            images, s, tap_names=tap_names, threshold=threshold, th=th, reg_range=reg_range, alpha=alpha, **kwargs
        )

    @classmethod
    def from_responses(
        cls,
        images: Tensor,
        responses: Tensor | Sequence[Tensor],
        *,
        tap_names: Sequence[str] | Mapping[str, str],
        repeats: Tensor | Sequence[Tensor | None] | None = None,
        reliability_weighting: bool = True,
        threshold: bool = False,
        th: float = 0.6,
        reg_range: str = "all",
        alpha: float = 20.0,
        **kwargs,
    ) -> "SimilarityRegularizer":
        """``neural_sim``: target from neural responses [N, neurons] to the images (Li et al.:
        alpha 20, continuous target). A sequence of response matrices (several scans, with
        an optional matching sequence of repeats) gives the average of their similarities."""
        if isinstance(responses, Tensor):
            responses, repeats = [responses], [repeats]  # type: ignore[list-item]
        elif repeats is None:
            repeats = [None] * len(responses)
        if isinstance(repeats, Tensor) or len(repeats) != len(responses):
            raise ValueError("with several response matrices, give repeats as a list of the same length (or None)")
        n = images.shape[0]
        for k, r in enumerate(responses):
            if r.dim() != 2 or r.shape[0] != n:
                raise ValueError(f"responses[{k}] must be [{n} images, neurons], got shape {tuple(r.shape)}")
        s = average_similarity(
            [neural_similarity(r, rep, reliability_weighting) for r, rep in zip(responses, repeats)]
        )
        return cls.from_similarity(
            images, s, tap_names=tap_names, threshold=threshold, th=th, reg_range=reg_range, alpha=alpha, **kwargs
        )

    @property
    def tap_names(self) -> list[str]:
        return self.similarity.tap_names

    def sample_pair_batch(self, k: int, generator: torch.Generator | None = None) -> PairBatch:
        """Draw k pairs (i < j) from the sampler; images and target on the images' device."""
        i, j = self.sampler.sample(k, generator)
        dev = self.images.device
        i, j = i.to(dev), j.to(dev)
        images = self.images.index_select(0, torch.cat([i, j]))
        return PairBatch(images=images, target=self.target[i, j].to(torch.float32), i=i, j=j)

    def loss(self, features: Mapping[str, Tensor], target: Tensor) -> tuple[Tensor, dict]:
        """``(alpha * loss, diagnostics)`` for the pair features ``{tap: [2k, ...]}``.

        Diagnostics (floats): ``reg_loss`` (unweighted), ``corr`` (Pearson correlation of
        S_cnn and target over the k pairs; NaN when the target is constant in the batch),
        ``s_cnn_mean``, ``target_mean`` and ``layer_weights`` ({tap: softmax weight}).
        Reading them synchronises with the device once per step.
        """
        s_cnn = self.similarity(features)
        target = target.to(s_cnn.device)
        raw = similarity_loss(s_cnn, target, kind=self.loss_kind, eps=self.eps)
        diagnostics = {
            "reg_loss": float(raw.detach()),
            "corr": pearson(s_cnn, target),
            "s_cnn_mean": float(s_cnn.detach().mean()),
            "target_mean": float(target.float().mean()),
            "layer_weights": dict(zip(self.tap_names, self.similarity.layer_weights())),
        }
        return self.alpha * raw, diagnostics

    def forward(self, features: Mapping[str, Tensor], target: Tensor) -> tuple[Tensor, dict]:
        return self.loss(features, target)

    def extra_repr(self) -> str:
        return (
            f"images={tuple(self.images.shape)}, target={self.target.dtype}, alpha={self.alpha}, "
            f"loss={self.loss_kind!r}, sampler={self.sampler!r}"
        )


def regularized_forward(
    model: nn.Module,
    tap_modules: Mapping[str, str],
    x: Tensor,
    pair_batch: PairBatch | Tensor | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One joint forward pass of ``x`` [B, ...] and the pair images [2k, ...].

    Returns ``(logits for x, {tap: features of the pair rows [2k, ...]})``; with
    ``pair_batch=None`` a plain forward and an empty dict. See the module docstring for the
    BatchNorm consequence of the joint batch.
    """
    if pair_batch is None:
        return model(x), {}
    pair_images = pair_batch.images if isinstance(pair_batch, PairBatch) else pair_batch
    pair_images = pair_images.to(device=x.device, dtype=x.dtype)
    b = x.shape[0]
    with record_taps(model, tap_modules, rows=slice(b, None)) as feats:
        out = model(torch.cat([x, pair_images]))
    return out[:b], dict(feats)
