"""Readers of the standard on-disk formats: IDX (MNIST, Fashion-MNIST) and the CIFAR python pickles.

They read the files as distributed (or as torchvision leaves them after a download) without
importing torchvision, so that a local copy works on any install. Every problem with a file's
content is a :class:`ConfigError` naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bench.errors import ConfigError

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR100_FILES = ("train", "test")

_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


class ArraySplits(NamedTuple):
    """Train and test images (uint8 [N, C, H, W]) and labels (int64 [N]) as read from disk."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list[str] | None


def find_file(folder: Path, name: str, suffixes: tuple[str, ...] = ("",)) -> Path | None:
    """The first of ``folder/name + suffix`` that is a file; None if there is none."""
    for suffix in suffixes:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes, raw or gzip-compressed (detected from its first bytes).

    Layout: two zero bytes, the data-type code (0x08 = unsigned byte), the number of dimensions,
    one big-endian uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
        with (gzip.open(path, "rb") if compressed else path.open("rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip raises all three on damaged files
        raise ConfigError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise ConfigError(f"{path} is not an IDX file: expected magic bytes 00 00 08 <ndim>, got {raw[:4].hex(' ') or 'an empty file'}")
    code, n = raw[2], raw[3]
    if code != _IDX_UBYTE:
        raise ConfigError(f"{path}: IDX data type 0x{code:02x} is not supported; expected 0x08 (unsigned byte)")
    if n == 0 or (ndim is not None and n != ndim):
        raise ConfigError(f"{path}: IDX file has {n} dimensions; expected {ndim or 'at least 1'}")
    header = 4 + 4 * n
    if len(raw) < header:
        raise ConfigError(f"{path}: truncated IDX header: expected {header} bytes, file holds {len(raw)}")
    dims = struct.unpack(f">{n}I", raw[4:header])
    size = math.prod(dims)
    if len(raw) - header != size:
        raise ConfigError(
            f"{path}: IDX header promises dimensions {dims} = {size} bytes of data, file holds {len(raw) - header} "
            "(truncated or not an IDX file)"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims).copy()


def read_idx_splits(folder: Path) -> ArraySplits:
    """The four MNIST-style IDX files of ``folder`` (raw or ``.gz``), images as [N, 1, H, W]."""
    arrays = []
    for images, labels in (IDX_FILES[:2], IDX_FILES[2:]):
        images_path, labels_path = _require(folder, images, (".gz",)), _require(folder, labels, (".gz",))
        x, y = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
        if len(x) != len(y):
            raise ConfigError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels")
        arrays += [x[:, None], y.astype(np.int64)]
    return ArraySplits(*arrays, class_names=None)


def read_pickle(path: Path) -> dict[str, Any]:
    """A pickled dict with its keys as str, built by an unpickler that can only make numpy arrays.

    CIFAR's files are Python 2 pickles (byte-string keys); ``encoding="bytes"`` reads them
    as distributed. Restricting the globals keeps a data file from running code.
    """
    try:
        with path.open("rb") as f:
            obj = _DataUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # unpickling garbage can raise almost any exception type
        raise ConfigError(f"cannot read {path} as a CIFAR python pickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch: "data" uint8 [N, 3072] (R, G, B planes of 32x32) and labels under ``label_key``."""
    batch = read_pickle(path)
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}; found {sorted(batch)}")
    x, y = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise ConfigError(f"{path}: 'data' must be uint8 [N, 3072], got {x.dtype} {list(x.shape)}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{path}: {label_key!r} must be {len(x)} integers, got {y.dtype} {list(y.shape)}")
    return np.require(x.reshape(-1, 3, 32, 32), requirements=["C", "W"]), y.astype(np.int64)


def read_cifar10(folder: Path) -> ArraySplits:
    """CIFAR-10's ``cifar-10-batches-py`` folder: five training batches, ``test_batch``, optional ``batches.meta``."""
    train = [read_cifar_batch(_require(folder, name), "labels") for name in CIFAR10_FILES[:5]]
    test_x, test_y = read_cifar_batch(_require(folder, "test_batch"), "labels")
    return ArraySplits(
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        test_x,
        test_y,
        _class_names(folder / "batches.meta", "label_names"),
    )


def read_cifar100(folder: Path) -> ArraySplits:
    """CIFAR-100's ``cifar-100-python`` folder: ``train``, ``test`` (fine labels), optional ``meta``."""
    train_x, train_y = read_cifar_batch(_require(folder, "train"), "fine_labels")
    test_x, test_y = read_cifar_batch(_require(folder, "test"), "fine_labels")
    return ArraySplits(train_x, train_y, test_x, test_y, _class_names(folder / "meta", "fine_label_names"))


def _require(folder: Path, name: str, suffixes: tuple[str, ...] = ()) -> Path:
    path = find_file(folder, name, ("", *suffixes))
    if path is None:
        raise ConfigError(f"{folder}: missing data file {name}")
    return path


def _class_names(path: Path, key: str) -> list[str] | None:
    """Class names from a CIFAR meta file; None where the file is absent (it only labels plots)."""
    if not path.is_file():
        return None
    names = read_pickle(path).get(key)
    if names is None:
        raise ConfigError(f"{path}: missing key {key!r}")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


# Everything numpy 1.x and 2.x pickles of arrays and scalars reference, and nothing else.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *(
        (f"{core}.{module}", name)
        for core in ("numpy.core", "numpy._core")
        for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
    ),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        return super().find_class(module, name)
