"""Data: loaders for real image data sets, all returning an in-memory :class:`ImageDataset`.

Loading the data set a protocol names is ``bench.pipeline.make_dataset``.
"""

from bench.data.base import ImageDataset, to_float, to_grayscale

__all__ = ["ImageDataset", "to_float", "to_grayscale"]
