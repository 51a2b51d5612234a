"""Models: registered architectures, built with normalisation inside (see ``base``)."""

from __future__ import annotations

from typing import Any

from bench.errors import ConfigError
from bench.models.base import Classifier, Normalize
from bench.registry import MODELS

__all__ = ["Classifier", "Normalize", "build_model"]


def build_model(model_config: dict[str, Any], in_channels: int, num_classes: int, dataset_stats: tuple[list[float], list[float]]) -> Classifier:
    """Build ``model_config['name']`` with its options and wrap it with its input normalisation."""
    options = {k: v for k, v in model_config.items() if k not in ("name", "normalization")}
    norm = model_config.get("normalization", "dataset")
    if norm == "dataset":
        mean, std = dataset_stats
    elif norm == "none":
        mean, std = [0.0] * in_channels, [1.0] * in_channels
    elif isinstance(norm, dict) and {"mean", "std"} <= set(norm):
        mean, std = list(norm["mean"]), list(norm["std"])
        if len(mean) == 1 and in_channels > 1:
            mean, std = mean * in_channels, std * in_channels
    else:
        raise ConfigError(f"model.normalization must be 'dataset', 'none' or {{mean: [...], std: [...]}}, got {norm!r}")
    try:
        net = MODELS.create(model_config["name"], in_channels=in_channels, num_classes=num_classes, **options)
    except TypeError as exc:
        raise ConfigError(f"model {model_config['name']!r} rejected its options {options}: {exc}") from None
    return Classifier(net, mean, std)
