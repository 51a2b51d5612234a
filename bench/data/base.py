"""The in-memory image data set every loader returns.

Data sets of this harness are small enough (MNIST-like, CIFAR) to live in memory as
``uint8`` tensors; batches are converted to float in [0, 1] on the device. Keeping the raw
bytes avoids a DataLoader, worker processes and per-sample Python in the training loop.
Normalisation is never applied here: it lives inside the model (see ``bench.models``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
    name: str
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, C, H, W]
    test_y: torch.Tensor  # int64 [M]
    num_classes: int
    source: str  # where the bytes came from, recorded in every result
    class_names: list[str] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise ValueError(f"{self.name}: {split}_x must be uint8 [N, C, H, W], got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"{self.name}: {split}_y must be int64 [{x.shape[0]}], got {y.dtype} {tuple(y.shape)}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def input_dims(self) -> int:
        """D = C * H * W, the number of input values of one image."""
        return int(self.test_x[0].numel())

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images in [0, 1] units."""
        x = self.train_x.float().div_(255)
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "train": int(self.train_x.shape[0]),
            "test": int(self.test_x.shape[0]),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            **self.info,
        }


@dataclass(frozen=True)
class EvaluationData:
    """What a record says about images that are not a registered data set (``bench.evaluate``, ``bench eval``):
    where they came from, their shape and a digest of their content."""

    name: str
    source: str
    n: int
    image_shape: tuple[int, int, int]
    num_classes: int
    sha256: str

    @property
    def input_dims(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "train": 0, "test": self.n, "image_shape": list(self.image_shape),
                "num_classes": self.num_classes, "sha256": self.sha256}


def images_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """SHA-256 of evaluation images and their labels: which data a record of user images measured."""
    digest = hashlib.sha256()
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B) of uint8 [N, 3, H, W] images, as uint8 [N, 1, H, W]."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x.float() * w).sum(dim=1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


def to_float(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], optionally moved to ``device`` first (fewer bytes to copy)."""
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x.float().div_(255)
