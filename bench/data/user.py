"""Evaluation images a user brings to ``bench eval``: an ``.npz`` file or a folder of images per class.

* ``.npz`` with ``x`` (uint8 0-255, or float in [0, 1]; [N, H, W], [N, C, H, W] or
  [N, H, W, C] with C in 1, 3) and ``y`` (integer class indices, [N]);
* a folder with one subfolder per class (``root/<class>/*.png``, ``.jpg``, ...): classes are the
  subfolder names in sorted order, so ``y`` is the index of the image's folder.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from bench.errors import ConfigError, DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _channels_first(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise ConfigError(f"{source}: x must be [N, H, W], [N, C, H, W] or [N, H, W, C] with C = 1 or 3, got shape {x.shape}")


def load_npz(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 or float, as stored) and labels from an ``.npz`` with ``x`` and ``y``."""
    if not path.is_file():
        raise DataNotFoundError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise ConfigError(f"{path}: an .npz for bench eval needs arrays 'x' and 'y'; missing {', '.join(missing)} "
                                  f"(it has: {', '.join(data.files) or 'nothing'})")
            x, y = data["x"], data["y"]
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot read {path} as an .npz file ({type(exc).__name__}); save the images and labels with "
                          "numpy.savez(path, x=images, y=labels): arrays of numbers, not objects") from None
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"{path}: x must be uint8 (0-255) or float in [0, 1], got {x.dtype}")
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise ConfigError(f"{path}: y must be a 1-D array of integer class indices, got {y.dtype} {y.shape}")
    x = _channels_first(x, str(path))
    if len(x) != len(y):
        raise ConfigError(f"{path}: x holds {len(x)} images but y {len(y)} labels")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def load_image_folder(root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """uint8 images [N, C, H, W], labels and class names from ``root/<class>/<image>``."""
    from PIL import Image

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root} has no class subfolders: expected {root}/<class>/<image>.png, one folder per class")
    images, labels, shape = [], [], None
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            try:
                with Image.open(file) as im:
                    mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
                    array = np.asarray(im.convert(mode), dtype=np.uint8)
            except OSError as exc:
                raise ConfigError(f"cannot read image {file}: {exc}") from None
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
            if shape is not None and array.shape != shape:
                raise ConfigError(f"images must all have one size and channel count: {file} is {array.shape} (C, H, W), "
                                  f"earlier ones {shape}")
            shape = array.shape
            images.append(array)
            labels.append(label)
    if not images:
        raise ConfigError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders {', '.join(classes)}")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), classes
