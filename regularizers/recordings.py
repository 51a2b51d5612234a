"""Loading real neural recordings that the user supplies, for ``neural_sim``.

Format: one NumPy ``.npz`` file per recording scan (``np.savez(path, responses=..., ...)``,
or :func:`save_recording`), with the keys

- ``responses`` (required): [images, neurons], float. The response of each neuron to each
  image, e.g. trial-averaged deconvolved activity.
- ``repeats`` (optional): [repeats, M, neurons], float, at least 2 repeats. Single-trial
  responses to M repeated images, used for the per-neuron reliability weights
  w = sigma / eta. M must equal the number of images unless ``repeat_image_index`` is given.
- ``repeat_image_index`` (optional, with ``repeats``): [M], int. Which rows of
  ``responses`` the repeats show (e.g. Li et al.'s 100 "oracle" images of 5100, shown 10
  times each).
- ``images``: [images, H, W], uint8 (0-255) or float in [0, 1]. The grayscale stimuli.
- ``image_ids``: [images], int. Instead of ``images``: the stimuli's indices in the
  training set.

Exactly one of ``images`` and ``image_ids`` is required. Several files (several scans,
each with its own neurons) must show the same images in the same order; their similarity
matrices are averaged. Other keys are rejected (a misspelt key would otherwise be ignored
silently). Every check raises ``ValueError`` naming the file, the key, and what was expected
and found. Use::

    rec = load_recordings(["scan1.npz", "scan2.npz"], num_train_images=len(train_x))
    images = rec.resolve_images(train_x_float)   # float [N, C, H, W] in [0, 1]
    reg = SimilarityRegularizer.from_similarity(images, rec.similarity(), tap_names=model.taps, alpha=20)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .targets import average_similarity, neural_similarity

__all__ = ["Scan", "Recordings", "load_scan", "load_recordings", "save_recording"]

KEYS = ("responses", "repeats", "repeat_image_index", "images", "image_ids")


@dataclass
class Scan:
    """One validated recording file."""

    path: str
    responses: Tensor  # float32 [N, neurons]
    repeats: Tensor | None = None  # float32 [R, M, neurons]
    repeat_image_index: Tensor | None = None  # int64 [M]
    images: Tensor | None = None  # float32 [N, 1, H, W] in [0, 1]
    image_ids: Tensor | None = None  # int64 [N]

    @property
    def num_images(self) -> int:
        return int(self.responses.shape[0])

    @property
    def num_neurons(self) -> int:
        return int(self.responses.shape[1])

    def similarity(self, reliability_weighting: bool = True) -> Tensor:
        return neural_similarity(self.responses, self.repeats, reliability_weighting)


def _fail(path: str, key: str, expected: str, got: str) -> ValueError:
    return ValueError(f"{path}: key {key!r}: expected {expected}, got {got}")


def _array(path: str, data: dict, key: str, ndim: int, kinds: str, what: str) -> np.ndarray:
    a = data[key]
    if a.ndim != ndim:
        raise _fail(path, key, f"{ndim}-D array {what}", f"{a.ndim}-D with shape {a.shape}")
    if a.dtype.kind not in kinds:
        raise _fail(path, key, f"dtype of kind {kinds!r} ({what})", f"dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise _fail(path, key, "finite values", f"{int((~np.isfinite(a)).sum())} NaN/inf entries")
    return a


def _validate(path: str, data: dict, num_train_images: int | None) -> Scan:
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; valid keys: {', '.join(KEYS)}")
    if "responses" not in data:
        raise ValueError(f"{path}: missing required key 'responses' [images x neurons]; found keys {sorted(data)}")
    resp = _array(path, data, "responses", 2, "fiu", "[images x neurons]")
    n, neurons = resp.shape
    if n < 2 or neurons < 1:
        raise _fail(path, "responses", ">= 2 images and >= 1 neuron", f"shape {resp.shape}")
    scan = Scan(path=path, responses=torch.from_numpy(resp.astype(np.float32)))

    if "repeat_image_index" in data and "repeats" not in data:
        raise ValueError(f"{path}: key 'repeat_image_index' given without 'repeats'")
    if "repeats" in data:
        rep = _array(path, data, "repeats", 3, "fiu", "[repeats x images x neurons]")
        if rep.shape[2] != neurons:
            raise _fail(path, "repeats", f"{neurons} neurons (as responses) on axis 2", f"shape {rep.shape}")
        if "repeat_image_index" in data:
            idx = _array(path, data, "repeat_image_index", 1, "iu", "[M] row indices into responses")
            if idx.shape[0] != rep.shape[1]:
                raise _fail(path, "repeat_image_index", f"{rep.shape[1]} entries (repeats axis 1)", f"{idx.shape[0]}")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise _fail(path, "repeat_image_index", f"indices in [0, {n})", f"range [{idx.min()}, {idx.max()}]")
            scan.repeat_image_index = torch.from_numpy(idx.astype(np.int64))
        elif rep.shape[1] != n:
            raise _fail(
                path, "repeats", f"{n} images on axis 1 (as responses), or a 'repeat_image_index'", f"shape {rep.shape}"
            )
        if rep.shape[0] < 2:
            raise _fail(path, "repeats", ">= 2 repeats", f"{rep.shape[0]}")
        scan.repeats = torch.from_numpy(rep.astype(np.float32))

    has_images, has_ids = "images" in data, "image_ids" in data
    if has_images == has_ids:
        raise ValueError(f"{path}: give exactly one of 'images' [images x H x W] and 'image_ids' [images]; got "
                         + ("both" if has_images else "neither"))
    if has_images:
        img = _array(path, data, "images", 3, "fu", "[images x H x W], uint8 or float in [0, 1]")
        if img.shape[0] != n:
            raise _fail(path, "images", f"{n} images (as responses)", f"shape {img.shape}")
        if img.dtype.kind == "u":
            if img.dtype != np.uint8:
                raise _fail(path, "images", "uint8 or float in [0, 1]", f"dtype {img.dtype}")
            img = img.astype(np.float32) / 255.0
        elif img.min() < 0 or img.max() > 1:
            raise _fail(path, "images", "float values in [0, 1]", f"range [{img.min():.4g}, {img.max():.4g}]")
        scan.images = torch.from_numpy(img.astype(np.float32))[:, None]
    else:
        ids = _array(path, data, "image_ids", 1, "iu", "[images] int indices into the training set")
        if ids.shape[0] != n:
            raise _fail(path, "image_ids", f"{n} ids (as responses)", f"shape {ids.shape}")
        hi = num_train_images if num_train_images is not None else None
        if ids.min() < 0 or (hi is not None and ids.max() >= hi):
            bound = f"[0, {hi})" if hi is not None else ">= 0"
            raise _fail(path, "image_ids", f"ids in {bound}", f"range [{ids.min()}, {ids.max()}]")
        scan.image_ids = torch.from_numpy(ids.astype(np.int64))
    return scan


def load_scan(path: str | os.PathLike, num_train_images: int | None = None) -> Scan:
    """Read and validate one ``.npz`` recording file (format in the module docstring)."""
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    return _validate(path, data, num_train_images)


@dataclass
class Recordings:
    """Validated scans over the same images, in the same order."""

    scans: list[Scan]
    images: Tensor | None = None  # float32 [N, 1, H, W] in [0, 1], when the files hold the images
    image_ids: Tensor | None = None  # int64 [N], when the files hold training-set ids
    files: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        return self.scans[0].num_images

    def similarity(self, reliability_weighting: bool = True) -> Tensor:
        """The target: the average over scans of each scan's neural similarity, float32 [N, N]."""
        return average_similarity([s.similarity(reliability_weighting) for s in self.scans])

    def resolve_images(self, train_images: Tensor | None = None) -> Tensor:
        """The stimuli: from the files, or ``train_images[image_ids]`` (kept in the training set's format)."""
        if self.images is not None:
            return self.images
        assert self.image_ids is not None
        if train_images is None:
            raise ValueError(f"{self.files[0]}: the recordings give 'image_ids'; pass the training images to resolve them")
        if int(self.image_ids.max()) >= train_images.shape[0]:
            raise _fail(self.files[0], "image_ids", f"ids in [0, {train_images.shape[0]})",
                        f"max id {int(self.image_ids.max())}")
        return train_images[self.image_ids.to(train_images.device)]


def load_recordings(
    paths: str | os.PathLike | Sequence[str | os.PathLike], num_train_images: int | None = None
) -> Recordings:
    """Load one or several scans; they must show the same images (or ids) in the same order.

    ``num_train_images`` bounds ``image_ids`` (checked here when given, and again by
    :meth:`Recordings.resolve_images`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if len(paths) == 0:
        raise ValueError("load_recordings needs at least one file")
    scans = [load_scan(p, num_train_images) for p in paths]
    first = scans[0]
    for s in scans[1:]:
        if s.num_images != first.num_images:
            raise ValueError(f"{s.path}: key 'responses': expected {first.num_images} images as in {first.path}, "
                             f"got {s.num_images}")
        if (s.images is None) != (first.images is None):
            raise ValueError(f"{s.path}: identifies stimuli by {'images' if s.images is not None else 'image_ids'} "
                             f"but {first.path} by {'images' if first.images is not None else 'image_ids'}")
        if s.images is not None and first.images is not None:
            if s.images.shape != first.images.shape or not torch.allclose(s.images, first.images, atol=1 / 255):
                raise ValueError(f"{s.path}: key 'images': expected the same images as {first.path}, got different ones")
        if s.image_ids is not None and not torch.equal(s.image_ids, first.image_ids):
            raise ValueError(f"{s.path}: key 'image_ids': expected the same ids as {first.path}, got different ones")
    return Recordings(scans=scans, images=first.images, image_ids=first.image_ids, files=[s.path for s in scans])


def save_recording(
    path: str | os.PathLike,
    responses: np.ndarray | Tensor,
    *,
    repeats: np.ndarray | Tensor | None = None,
    repeat_image_index: np.ndarray | Tensor | None = None,
    images: np.ndarray | Tensor | None = None,
    image_ids: np.ndarray | Tensor | None = None,
) -> None:
    """Write one scan in the documented format, validating it first (same checks as loading)."""
    arrays = {
        k: (v.detach().cpu().numpy() if isinstance(v, Tensor) else np.asarray(v))
        for k, v in dict(responses=responses, repeats=repeats, repeat_image_index=repeat_image_index,
                         images=images, image_ids=image_ids).items()
        if v is not None
    }
    _validate(os.fspath(path), arrays, None)
    np.savez(path, **arrays)
