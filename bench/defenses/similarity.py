"""``pixel_sim`` and ``neural_sim``: the representational-similarity regularisers as defenses.

The math lives in the standalone :mod:`regularizers` package; this module only chooses the
regularisation images (the first N images of the training split, in the model's input
format), builds the target (pixels, recordings, or the SIMULATED V1 stand-in, or a
control), and turns the regulariser into a training :class:`Objective`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bench.data.augment import augment
from bench.data.base import to_float
from bench.defenses.base import Defense, Objective, TrainingContext
import bench.validate as validate
from bench.errors import ConfigError
from bench.registry import DEFENSES
from regularizers import (
    LOSS_KINDS,
    REG_RANGES,
    SimilarityRegularizer,
    SimulatedV1,
    label_target,
    load_recordings,
    neural_similarity,
    pixel_similarity,
    regularized_forward,
    shuffled_target,
)

CONTROLS = ("none", "shuffled", "labels")


class SimilarityObjective(Objective):
    """CE on the classification batch + alpha * similarity loss on one pair batch, in one forward pass.

    Pairs are drawn from the global RNG, which the training loop seeds per epoch, so a
    resumed run draws the same pairs. Per-epoch diagnostics: mean cross-entropy, mean
    regulariser loss, mean correlation of S_cnn and the target over the pair batches (batches
    with a constant target, where it is undefined, are skipped) and the layer-mixture weights.
    """

    def __init__(self, regularizer: SimilarityRegularizer, taps: dict[str, str], pairs_per_batch: int):
        super().__init__()
        self.regularizer = regularizer
        self.taps = taps
        self.pairs_per_batch = pairs_per_batch
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def _log(self, key: str, value: float) -> None:
        if math.isfinite(value):
            self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def forward(self, model, x, y):
        pairs = self.regularizer.sample_pair_batch(self.pairs_per_batch)
        logits, features = regularized_forward(model, self.taps, x, pairs)
        ce = F.cross_entropy(logits.float(), y)
        reg_loss, diag = self.regularizer.loss({k: v.float() for k, v in features.items()}, pairs.target)
        for key in ("reg_loss", "corr"):
            self._log(key, float(diag[key]))
        self._log("ce", float(ce.detach()))
        return ce + reg_loss, logits, {"ce": float(ce.detach()), "reg": float(diag["reg_loss"])}

    def epoch_summary(self) -> dict[str, Any]:
        means = {f"reg_{k}" if k != "reg_loss" else k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums, self._counts = {}, {}
        return {**means, "layer_weights": dict(zip(self.regularizer.tap_names, self.regularizer.similarity.layer_weights()))}


def _check_common(name: str, alpha: float, n_images: int, pairs_per_batch: int, loss: str, reg_range: str, th: float,
                  control: str) -> None:
    """The regularisers' shared parameters, through the one validator (``bench.validate``)."""
    def where(param: str) -> str:
        return f"defense {name!r}: parameter {param!r}"

    validate.number(alpha, where("alpha"))
    validate.integer(n_images, where("n_images"), 2)
    validate.integer(pairs_per_batch, where("pairs_per_batch"), 1)
    validate.choice(loss, where("loss"), LOSS_KINDS)
    validate.choice(reg_range, where("reg_range"), REG_RANGES)
    validate.number(th, where("th"), high=1.0)
    validate.choice(control, where("control"), CONTROLS)


class SimilarityDefense(Defense):
    """Shared by both regularisers: only ``similarity_target`` differs."""

    def regularisation_set(self, ctx: TrainingContext) -> tuple[torch.Tensor, torch.Tensor]:
        """The first N training-split images (float, model input format) and their labels.

        With crop-and-flip augmentation (CIFAR), the images get one random crop and flip,
        then are frozen, as in the reference code."""
        idx = ctx.train_indices[: self.params["n_images"]]
        images = to_float(ctx.dataset.train_x[idx], ctx.device)
        mode = ctx.augment
        if mode != "none":
            images = augment(images, mode, torch.Generator().manual_seed(ctx.seed))
        return images, ctx.dataset.train_y[idx]

    def objective(self, ctx: TrainingContext) -> Objective:
        p = self.params
        images, labels = self.regularisation_set(ctx)
        images, similarity = self.stimuli_and_similarity(images, ctx)
        if p["control"] == "shuffled":
            similarity = shuffled_target(similarity, torch.Generator().manual_seed(ctx.seed))
        elif p["control"] == "labels":
            similarity = label_target(labels[: len(images)]).float()
        taps = dict(getattr(ctx.model, "taps", None) or {})
        if not taps:
            raise ConfigError(f"{self.name} needs a model with named feature taps (model.taps); {type(ctx.model).__name__} has none")
        reg = SimilarityRegularizer.from_similarity(
            images, similarity.cpu(), tap_names=taps, threshold=p["threshold"], th=p["th"], reg_range=p["reg_range"],
            alpha=p["alpha"], loss_kind=p["loss"],
        ).to(ctx.device)
        return SimilarityObjective(reg, taps, p["pairs_per_batch"])

    def stimuli_and_similarity(self, images: torch.Tensor, ctx: TrainingContext) -> tuple[torch.Tensor, torch.Tensor]:
        """The images the pairs are drawn from, and their N x N continuous target similarity."""
        return images, pixel_similarity(images, color=self.params["color"])


class PixelSimilarity(SimilarityDefense):
    pass


class NeuralSimilarity(SimilarityDefense):
    def stimuli_and_similarity(self, images, ctx):
        p = self.params
        if p["recordings"]:
            rec = load_recordings(p["recordings"], num_train_images=len(ctx.dataset.train_y))
            stimuli = rec.resolve_images(to_float(ctx.dataset.train_x, "cpu")).to(ctx.device)
            stimuli = _to_model_format(stimuli, tuple(ctx.dataset.image_shape))
            return stimuli, rec.similarity(p["reliability_weighting"])
        gray = images.mean(dim=1, keepdim=True) if images.shape[1] > 1 else images
        v1 = SimulatedV1(image_size=tuple(gray.shape[-2:]), n_neurons=p["v1_neurons"], seed=ctx.seed)
        mean, repeats = v1.respond(gray.cpu(), n_repeats=p["v1_repeats"], generator=torch.Generator().manual_seed(ctx.seed))
        return images, neural_similarity(mean, repeats, p["reliability_weighting"])

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["target"] = ("recordings: " + ", ".join(map(str, self.params["recordings"]))) if self.params["recordings"] else \
            "SIMULATED V1 population (model Gabor simple/complex cells; not neural recordings)"
        out["simulated"] = not self.params["recordings"]
        return out


def _to_model_format(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Grayscale stimuli [N, 1, h, w] -> the data set's [N, C, H, W] (resized, channels repeated)."""
    c, h, w = shape
    if images.shape[-2:] != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    return images.expand(-1, c, -1, -1).contiguous()


@DEFENSES.register("pixel_sim", description="similarity regulariser with a pixel-similarity target (Attias, Pehlevan & Obeid 2024)")
def pixel_sim(alpha: float = 10.0, th: float = 0.8, threshold: bool = True, reg_range: str = "all", n_images: int = 5000,
              pairs_per_batch: int = 16, loss: str = "artanh", color: str = "luma", control: str = "none") -> Defense:
    _check_common("pixel_sim", alpha, n_images, pairs_per_batch, loss, reg_range, th, control)
    if color not in ("luma", "mean"):
        raise ConfigError(f"color must be luma or mean, got {color!r}")
    return PixelSimilarity("pixel_sim", dict(alpha=float(alpha), th=float(th), threshold=bool(threshold), reg_range=reg_range,
                                             n_images=int(n_images), pairs_per_batch=int(pairs_per_batch), loss=loss,
                                             color=color, control=control))


@DEFENSES.register("neural_sim", description="similarity regulariser with a V1 target: user recordings, or a SIMULATED V1 population (Li et al. 2019)")
def neural_sim(alpha: float = 20.0, recordings: list | str | None = None, threshold: bool = False, th: float = 0.6,
               reg_range: str = "all", n_images: int = 5000, pairs_per_batch: int = 16, loss: str = "artanh",
               reliability_weighting: bool = True, v1_neurons: int = 1000, v1_repeats: int = 10,
               control: str = "none") -> Defense:
    _check_common("neural_sim", alpha, n_images, pairs_per_batch, loss, reg_range, th, control)
    files = [recordings] if isinstance(recordings, str) else list(recordings or [])
    if v1_neurons < 1 or v1_repeats < 2:
        raise ConfigError(f"v1_neurons must be >= 1 and v1_repeats >= 2, got {v1_neurons} and {v1_repeats}")
    return NeuralSimilarity("neural_sim", dict(alpha=float(alpha), recordings=files, threshold=bool(threshold), th=float(th),
                                               reg_range=reg_range, n_images=int(n_images), pairs_per_batch=int(pairs_per_batch),
                                               loss=loss, reliability_weighting=bool(reliability_weighting),
                                               v1_neurons=int(v1_neurons), v1_repeats=int(v1_repeats), control=control))
