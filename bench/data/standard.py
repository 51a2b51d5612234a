"""The standard data sets (MNIST, Fashion-MNIST, CIFAR-10/100) read from local files, or downloaded.

Folders searched, in order: the ``root`` option (``--set dataset.root=DIR``), ``$BENCH_DATA_ROOT``,
the download cache, and a system package's folder (Debian's ``dataset-fashion-mnist``). The
first folder holding every file wins and becomes the data set's ``source``. Files directly in a
folder are accepted only for ``root``: MNIST and Fashion-MNIST share file names, so a shared
root must keep them in per-set subfolders (``fashion-mnist/``, or torchvision's ``FashionMNIST/raw/``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from bench.data.base import ImageDataset, to_grayscale
from bench.data.files import (
    CIFAR10_FILES,
    CIFAR100_FILES,
    IDX_FILES,
    ArraySplits,
    find_file,
    read_cifar10,
    read_cifar100,
    read_idx_splits,
)
from bench.errors import ConfigError, DataNotFoundError
from bench.registry import DATASETS

ENV_ROOT = "BENCH_DATA_ROOT"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bench" / "data"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")  # where Debian's dataset-* packages install


@dataclass(frozen=True)
class _Source:
    """Where and how one data set lies on disk."""

    name: str
    title: str
    files: tuple[str, ...]
    suffixes: tuple[str, ...]  # accepted endings of each file name
    subdirs: tuple[str, ...]  # inside a data root: our own folder, then torchvision's
    torchvision_class: str
    read: Callable[[Path], ArraySplits]
    num_classes: int
    class_names: tuple[str, ...] | None = None
    apt_package: str | None = None
    system_dir: str | None = None  # under SYSTEM_DATA_DIR, installed by apt_package


_FASHION_MNIST = _Source(
    name="fashion_mnist",
    title="Fashion-MNIST",
    files=IDX_FILES,
    suffixes=("", ".gz"),
    subdirs=("fashion-mnist", "FashionMNIST/raw"),
    torchvision_class="FashionMNIST",
    read=read_idx_splits,
    num_classes=10,
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    apt_package="dataset-fashion-mnist",
    system_dir="fashion-mnist",
)
_MNIST = _Source(
    name="mnist",
    title="MNIST",
    files=IDX_FILES,
    suffixes=("", ".gz"),
    subdirs=("mnist", "MNIST/raw"),
    torchvision_class="MNIST",
    read=read_idx_splits,
    num_classes=10,
    class_names=tuple(str(i) for i in range(10)),
)
_CIFAR10 = _Source(
    name="cifar10",
    title="CIFAR-10",
    files=CIFAR10_FILES,
    suffixes=("",),
    subdirs=("cifar-10-batches-py",),
    torchvision_class="CIFAR10",
    read=read_cifar10,
    num_classes=10,
)
_CIFAR100 = _Source(
    name="cifar100",
    title="CIFAR-100",
    files=CIFAR100_FILES,
    suffixes=("",),
    subdirs=("cifar-100-python",),
    torchvision_class="CIFAR100",
    read=read_cifar100,
    num_classes=100,
)


@DATASETS.register(
    "fashion_mnist",
    description="Fashion-MNIST, 60000 train / 10000 test, 1x28x28 (local IDX files, apt dataset-fashion-mnist, or download)",
)
def fashion_mnist(root: str | None = None, download: bool = False) -> ImageDataset:
    """The full Fashion-MNIST; offline through Debian's dataset-fashion-mnist package."""
    return _load(_FASHION_MNIST, root, download)


@DATASETS.register("mnist", description="MNIST, 60000 train / 10000 test, 1x28x28 (local IDX files or download)")
def mnist(root: str | None = None, download: bool = False) -> ImageDataset:
    """The full MNIST from its four IDX files."""
    return _load(_MNIST, root, download)


@DATASETS.register(
    "cifar10",
    description="CIFAR-10, 50000 train / 10000 test, 3x32x32 (local python pickles or download); grayscale option",
)
def cifar10(root: str | None = None, download: bool = False, grayscale: bool = False) -> ImageDataset:
    """CIFAR-10 from its python-pickle batches, optionally as 1-channel luma."""
    return _colour(_load(_CIFAR10, root, download), grayscale)


@DATASETS.register(
    "cifar100",
    description="CIFAR-100 (fine labels), 50000 train / 10000 test, 3x32x32 (local python pickles or download); grayscale option",
)
def cifar100(root: str | None = None, download: bool = False, grayscale: bool = False) -> ImageDataset:
    """CIFAR-100 with its 100 fine labels, optionally as 1-channel luma."""
    return _colour(_load(_CIFAR100, root, download), grayscale)


def _load(src: _Source, root: str | None, download: bool) -> ImageDataset:
    places = _places(src, root)
    folder, searched = _locate(src, places)
    failure = ""
    if folder is None and download:
        target = _download_root(root)
        try:
            _download(src, target)
        except (OSError, RuntimeError) as exc:  # torchvision's errors for no network / bad checksum
            failure = f"Download into {target} failed: {type(exc).__name__}: {exc}\n"
        else:
            folder, searched = _locate(src, places)
    if folder is None:
        raise DataNotFoundError(_not_found_message(src, searched, failure))
    return _dataset(src, src.read(folder), folder.resolve())


def _places(src: _Source, root: str | None) -> list[tuple[Path | None, str]]:
    """Candidate folders in search order, each with where it came from (None: an unset variable)."""
    places: list[tuple[Path | None, str]] = []
    if root:
        base = Path(root).expanduser()
        places += [(folder, "dataset.root") for folder in (base, *(base / s for s in src.subdirs))]
    env = os.environ.get(ENV_ROOT)
    if env:
        places += [(Path(env).expanduser() / s, f"${ENV_ROOT}") for s in src.subdirs]
    else:
        places.append((None, f"${ENV_ROOT} is not set"))
    places += [(CACHE_ROOT / s, "download cache") for s in src.subdirs]
    if src.system_dir is not None:
        places.append((SYSTEM_DATA_DIR / src.system_dir, f"apt package {src.apt_package}"))
    return places


def _locate(src: _Source, places: list[tuple[Path | None, str]]) -> tuple[Path | None, list[str]]:
    """The first folder holding every file, and one line per folder searched before it."""
    searched = []
    for folder, origin in places:
        if folder is None:
            searched.append(f"  ({origin})")
            continue
        missing = [name for name in src.files if find_file(folder, name, src.suffixes) is None]
        if not missing:
            return folder, searched
        if not folder.is_dir():
            state = "no such folder"
        elif len(missing) == len(src.files):
            state = "no data files"
        else:
            state = "missing " + ", ".join(missing)
        searched.append(f"  {folder}  ({origin}: {state})")
    return None, searched


def _download_root(root: str | None) -> Path:
    if root:
        return Path(root).expanduser()
    return Path(os.environ[ENV_ROOT]).expanduser() if os.environ.get(ENV_ROOT) else CACHE_ROOT


def _download(src: _Source, target: Path) -> None:
    """Let torchvision fetch the files into its layout under ``target``; they are then read like any local copy."""
    import torchvision.datasets

    getattr(torchvision.datasets, src.torchvision_class)(str(target), download=True)


def _not_found_message(src: _Source, searched: list[str], failure: str) -> str:
    gz = " (each raw or .gz)" if ".gz" in src.suffixes else ""
    layouts = " or ".join(f"DIR/{s}/" for s in src.subdirs)
    ways = []
    if src.apt_package is not None:
        ways.append(f"apt-get install {src.apt_package}   (installs {SYSTEM_DATA_DIR / str(src.system_dir)}/)")
    ways += [
        f"--set dataset.root=DIR   with the files in DIR/ or {layouts}",
        f"export {ENV_ROOT}=DIR   with the files in {layouts}",
        f"--set dataset.download=true   needs network; torchvision downloads into dataset.root, else ${ENV_ROOT}, else {CACHE_ROOT}",
    ]
    return (
        f"{src.title} not found: no folder holds all of {', '.join(src.files)}{gz}.\n"
        f"Searched:\n" + "\n".join(searched) + "\n" + failure + "Supply it in one of these ways:\n" + "\n".join(f"  - {w}" for w in ways)
    )


def _dataset(src: _Source, splits: ArraySplits, folder: Path) -> ImageDataset:
    for split, y in (("train", splits.train_y), ("test", splits.test_y)):
        if len(y) and (y.min() < 0 or y.max() >= src.num_classes):
            raise ConfigError(f"{folder}: {split} labels span {y.min()}..{y.max()}; {src.title} has classes 0..{src.num_classes - 1}")
    names = splits.class_names or src.class_names
    return ImageDataset(
        name=src.name,
        train_x=torch.from_numpy(splits.train_x),
        train_y=torch.from_numpy(splits.train_y),
        test_x=torch.from_numpy(splits.test_x),
        test_y=torch.from_numpy(splits.test_y),
        num_classes=src.num_classes,
        source=str(folder),
        class_names=list(names) if names else None,
    )


def _colour(ds: ImageDataset, grayscale: bool) -> ImageDataset:
    """Optionally reduce a colour set to luma, recording the choice in ``info``."""
    if grayscale:
        ds = dataclasses.replace(ds, train_x=to_grayscale(ds.train_x), test_x=to_grayscale(ds.test_x))
    ds.info["grayscale"] = grayscale
    return ds
