"""Data: loaders for real image data sets, all returning an in-memory :class:`ImageDataset`."""

from bench.data.base import ImageDataset, to_float, to_grayscale

__all__ = ["ImageDataset", "to_float", "to_grayscale", "load_dataset"]


def load_dataset(name: str, **options) -> ImageDataset:
    from bench.registry import DATASETS

    return DATASETS.create(name, **options)
