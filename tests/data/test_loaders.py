"""Data loaders on files written here in the exact on-disk formats (IDX, CIFAR python pickles)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.data.standard as standard
from bench.data.base import to_grayscale
from bench.data.files import IDX_FILES, read_idx
from bench.errors import ConfigError, DataNotFoundError

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No data outside tmp_path: unset BENCH_DATA_ROOT, empty cache and system folders."""
    monkeypatch.delenv(standard.ENV_ROOT, raising=False)
    monkeypatch.setattr(standard, "CACHE_ROOT", tmp_path / "cache")
    monkeypatch.setattr(standard, "SYSTEM_DATA_DIR", tmp_path / "system")


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_idx_set(folder: Path, gz: bool = True, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in zip(IDX_FILES, arrays.values()):
        write_idx(folder / name, array, gz)
    return arrays


def write_pickle(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def cifar_images(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10(folder: Path, n: int = 4, protocol: int = pickle.DEFAULT_PROTOCOL) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    train_x, test_x = cifar_images(5 * n, rng), cifar_images(n, rng)
    train_x[0, :1024], train_x[0, 1024:2048], train_x[0, 2048:] = 200, 50, 10  # R, G, B planes
    train_y, test_y = rng.integers(0, 10, 5 * n), rng.integers(0, 10, n)
    for i in range(5):
        part = slice(i * n, (i + 1) * n)
        batch = {b"batch_label": b"x", b"data": train_x[part], b"labels": train_y[part].tolist()}
        write_pickle(folder / f"data_batch_{i + 1}", batch, protocol)
    write_pickle(folder / "test_batch", {b"batch_label": b"x", b"data": test_x, b"labels": test_y.tolist()}, protocol)
    write_pickle(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}, protocol)
    return train_x, train_y, test_x, test_y


def write_cifar100(folder: Path, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    train_x, test_x = cifar_images(n, rng), cifar_images(n, rng)
    train_y = [0, 99, *rng.integers(0, 100, n - 2).tolist()]
    write_pickle(folder / "train", {b"data": train_x, b"fine_labels": train_y, b"coarse_labels": [0] * n})
    write_pickle(folder / "test", {b"data": test_x, b"fine_labels": train_y, b"coarse_labels": [0] * n})
    write_pickle(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)], b"coarse_label_names": []})
    return train_x, np.array(train_y)


# --- IDX reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / "a-idx3-ubyte", array, gz), ndim=3)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(ConfigError, match=r"bad is not an IDX file: expected magic bytes 00 00 08"):
        read_idx(path)


def test_read_idx_rejects_other_data_types_and_dims(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + bytes(4))
    with pytest.raises(ConfigError, match=r"0x0d is not supported; expected 0x08"):
        read_idx(path)
    labels = write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(ConfigError, match=r"has 1 dimensions; expected 3"):
        read_idx(labels, ndim=3)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_truncated_file(tmp_path, gz):
    path = write_idx(tmp_path / "images", np.zeros((10, 28, 28), np.uint8), gz)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ConfigError, match=str(path.name)) as err:
        read_idx(path)
    assert "truncated" in str(err.value) or "cannot read IDX file" in str(err.value)


# --- MNIST / Fashion-MNIST -------------------------------------------------------------------------


@pytest.mark.parametrize("subdir", ["", "fashion-mnist", "FashionMNIST/raw"])
@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reads_every_layout(tmp_path, subdir, gz):
    folder = tmp_path / "root" / subdir
    arrays = write_idx_set(folder, gz=gz)
    ds = standard.fashion_mnist(root=str(tmp_path / "root"))
    assert ds.name == "fashion_mnist" and ds.source == str(folder.resolve())
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays["train_x"]))
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(arrays["test_x"]))
    assert ds.train_y.tolist() == arrays["train_y"].tolist() and ds.test_y.tolist() == arrays["test_y"].tolist()
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_mnist_reads_torchvision_layout(tmp_path):
    arrays = write_idx_set(tmp_path / "MNIST" / "raw", gz=False)
    ds = standard.mnist(root=str(tmp_path))
    assert ds.name == "mnist" and ds.source.endswith("MNIST/raw") and ds.class_names == [str(i) for i in range(10)]
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays["train_x"]))


def test_bench_data_root_is_searched_in_its_subfolders(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    write_idx_set(shared / "fashion-mnist", seed=1)
    write_idx_set(shared / "MNIST" / "raw", seed=2)
    monkeypatch.setenv(standard.ENV_ROOT, str(shared))
    assert standard.fashion_mnist().source == str((shared / "fashion-mnist").resolve())
    assert standard.mnist().source == str((shared / "MNIST" / "raw").resolve())


def test_files_directly_in_bench_data_root_are_ambiguous_and_ignored(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "shared")
    monkeypatch.setenv(standard.ENV_ROOT, str(tmp_path / "shared"))
    with pytest.raises(DataNotFoundError):
        standard.fashion_mnist()


def test_explicit_root_wins_over_system_package(tmp_path):
    write_idx_set(tmp_path / "system" / "fashion-mnist", seed=1)
    assert standard.fashion_mnist().source == str((tmp_path / "system" / "fashion-mnist").resolve())
    write_idx_set(tmp_path / "mine", seed=2)
    assert standard.fashion_mnist(root=str(tmp_path / "mine")).source == str((tmp_path / "mine").resolve())


def test_missing_data_lists_places_and_ways_to_supply(tmp_path):
    write_idx_set(tmp_path / "root" / "fashion-mnist")
    (tmp_path / "root" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as err:
        standard.fashion_mnist(root=str(tmp_path / "root"))
    message = str(err.value)
    for text in (
        f"{tmp_path / 'root'}  (dataset.root: no data files)",
        f"{tmp_path / 'root' / 'fashion-mnist'}  (dataset.root: missing t10k-labels-idx1-ubyte)",
        str(tmp_path / "root" / "FashionMNIST" / "raw"),
        "$BENCH_DATA_ROOT is not set",
        str(tmp_path / "cache" / "fashion-mnist"),
        str(tmp_path / "system" / "fashion-mnist"),
        "apt-get install dataset-fashion-mnist",
        "--set dataset.root=DIR",
        "--set dataset.download=true",
    ):
        assert text in message, text
    with pytest.raises(DataNotFoundError) as err:
        standard.mnist()
    assert "apt-get" not in str(err.value) and "dataset.root=DIR" in str(err.value)


def test_corrupt_file_is_named(tmp_path):
    write_idx_set(tmp_path, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte"):
        standard.fashion_mnist(root=str(tmp_path))


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx_set(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    with pytest.raises(ConfigError, match="holds 12 images but .* holds 11 labels"):
        standard.mnist(root=str(tmp_path))


def test_download_fetches_into_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, download: bool):
            calls.append((root, download))
            write_idx_set(Path(root) / "FashionMNIST" / "raw", gz=False)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    ds = standard.fashion_mnist(root=str(tmp_path / "dl"), download=True)
    assert calls == [(str(tmp_path / "dl"), True)]
    assert ds.source == str((tmp_path / "dl" / "FashionMNIST" / "raw").resolve()) and len(ds.train_y) == 12
    standard.fashion_mnist(root=str(tmp_path / "dl"), download=True)  # present now: no second download
    assert len(calls) == 1


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root: str, download: bool):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataNotFoundError, match=r"(?s)Download into .*cache failed: RuntimeError: Error downloading"):
        standard.mnist(download=True)


# --- CIFAR ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_cifar10_round_trips(tmp_path, protocol):
    train_x, train_y, test_x, test_y = write_cifar10(tmp_path / "cifar-10-batches-py", protocol=protocol)
    ds = standard.cifar10(root=str(tmp_path))
    assert ds.name == "cifar10" and ds.source == str((tmp_path / "cifar-10-batches-py").resolve())
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert torch.equal(ds.train_x.reshape(20, -1), torch.from_numpy(train_x))
    assert torch.equal(ds.test_x.reshape(4, -1), torch.from_numpy(test_x))
    assert ds.train_x[0, :, 5, 7].tolist() == [200, 50, 10]  # channel-major planes
    assert ds.train_y.tolist() == train_y.tolist() and ds.test_y.tolist() == test_y.tolist()
    assert ds.class_names == [f"class{i}" for i in range(10)] and ds.info == {"grayscale": False}


def test_cifar10_grayscale(tmp_path):
    write_cifar10(tmp_path)  # files directly in the given root
    colour = standard.cifar10(root=str(tmp_path))
    gray = standard.cifar10(root=str(tmp_path), grayscale=True)
    assert gray.name == "cifar10" and gray.info == {"grayscale": True}
    assert gray.train_x.shape == (20, 1, 32, 32) and gray.test_x.shape == (4, 1, 32, 32)
    assert torch.equal(gray.train_x, to_grayscale(colour.train_x)) and torch.equal(gray.test_y, colour.test_y)
    assert gray.train_x[0, 0, 5, 7].item() == round(0.299 * 200 + 0.587 * 50 + 0.114 * 10)


def test_cifar100_fine_labels(tmp_path, monkeypatch):
    train_x, train_y = write_cifar100(tmp_path / "cifar-100-python")
    monkeypatch.setenv(standard.ENV_ROOT, str(tmp_path))
    ds = standard.cifar100(grayscale=True)
    assert ds.num_classes == 100 and ds.class_names[99] == "f99" and ds.train_x.shape == (6, 1, 32, 32)
    assert ds.train_y.tolist() == train_y.tolist()
    assert torch.equal(ds.train_x, to_grayscale(torch.from_numpy(train_x.reshape(-1, 3, 32, 32))))


def test_cifar_missing_key_and_bad_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    write_cifar100(folder)
    write_pickle(folder / "test", {b"data": cifar_images(2, np.random.default_rng()), b"labels": [0, 1]})
    with pytest.raises(ConfigError, match=r"test: missing key\(s\) \['fine_labels'\]"):
        standard.cifar100(root=str(tmp_path))
    write_pickle(folder / "test", {b"data": cifar_images(2, np.random.default_rng()), b"fine_labels": [0, 100]})
    with pytest.raises(ConfigError, match=r"test labels span 0..100; CIFAR-100 has classes 0..99"):
        standard.cifar100(root=str(tmp_path))


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    write_pickle(tmp_path / "test_batch", {b"data": Evil(), b"labels": []})
    with pytest.raises(ConfigError, match=r"test_batch as a CIFAR python pickle: .*builtins.print is not allowed"):
        standard.cifar10(root=str(tmp_path))


# --- registry, embedded and real data ----------------------------------------------------------------


def test_loaders_are_registered_with_descriptions():
    import bench.catalog as registry

    for name in ("fashion_mnist", "mnist", "cifar10", "cifar100"):
        entry = registry.DATASETS.get(name)
        assert entry.module == "bench.data.standard" and entry.description and "\n" not in entry.description


def test_embedded_mnist_digits():
    from bench.data.embedded import mnist_digits

    ds = mnist_digits()
    assert ds.train_x.shape == (4000, 1, 28, 28) and ds.test_x.shape == (1000, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert torch.bincount(ds.train_y).tolist() == [400] * 10 and torch.bincount(ds.test_y).tolist() == [100] * 10
    assert int(ds.train_x.min()) == 0 and int(ds.train_x.max()) == 255


@pytest.mark.skipif(not REAL_FASHION_MNIST.is_dir(), reason="apt package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    ds = standard.fashion_mnist(root=str(REAL_FASHION_MNIST))
    assert len(ds.train_y) == 60000 and len(ds.test_y) == 10000 and ds.image_shape == (1, 28, 28)
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10 and torch.bincount(ds.test_y).tolist() == [1000] * 10
