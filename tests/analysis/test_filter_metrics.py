"""Conv-filter statistics against independent NumPy computations, hand-made layers and torchconvquality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.analysis import filters as fq
from bench.defenses.transforms import GaussianBlur, TransformedModel
from bench.models.base import Classifier
from bench.models.resnet import ResNet18
from bench.models.small_cnn import SmallCNN


def np_sparsity(w: np.ndarray) -> tuple[float, np.ndarray]:
    kernels = w.reshape(w.shape[0] * w.shape[1], -1)
    t = 0.01 * np.abs(w).max()
    mask = np.array([np.abs(k).max() <= t for k in kernels])
    return mask.mean(), mask


def np_entropy(w: np.ndarray) -> tuple[float, float]:
    _, mask = np_sparsity(w)
    kernels = w.reshape(w.shape[0] * w.shape[1], -1)[~mask]
    scaled = np.stack([k / np.abs(k).max() for k in kernels])
    cov = np.cov(scaled, rowvar=False)  # 9 x 9, divides by n' - 1 like lambda = s^2 / (n' - 1)
    lam = np.clip(np.linalg.eigvalsh(cov), 0, None)
    p = lam / lam.sum()
    p = p[p > 1e-15]
    h = float(-(p * np.log10(p)).sum())
    n = len(kernels)
    tau = 1.2618047 / (1 + math.exp(-0.88767525 * (math.log2(n) - 2.30436435))) - 0.31050834
    return h, h / tau


def np_orthogonality(w: np.ndarray) -> float:
    f = w.reshape(w.shape[0], -1)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    c = len(f)
    total = sum(abs(f[i] @ f[j]) for i in range(c) for j in range(c) if i != j)
    return 1 - total / (c * (c - 1))


def random_layer(c_out: int, c_in: int, seed: int, zero_fraction: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, 3, 3, generator=g) * torch.rand(c_out, c_in, 1, 1, generator=g)
    w[torch.rand(c_out, c_in, generator=g) < zero_fraction] *= 1e-4  # near-zero kernels: sparse
    return w


@pytest.mark.parametrize("shape,seed", [((16, 8), 0), ((5, 3), 1), ((32, 1), 2)])
def test_metrics_match_numpy_on_random_layers(shape, seed):
    w = random_layer(*shape, seed)
    out = fq.layer_quality(w)
    w64 = w.numpy().astype(np.float64)
    s, _ = np_sparsity(w64)
    h, h_norm = np_entropy(w64)
    assert out["sparsity"] == pytest.approx(s) and 0 < s < 1
    assert out["n_kernels"] == shape[0] * shape[1] and out["n_nonsparse"] == round((1 - s) * out["n_kernels"])
    assert out["variance_entropy"] == pytest.approx(h, abs=1e-9)
    assert out["variance_entropy_norm"] == pytest.approx(h_norm, abs=1e-9)
    assert out["orthogonality"] == pytest.approx(np_orthogonality(w64), abs=1e-9)


def test_all_zero_kernels_but_one_are_sparse():
    w = torch.zeros(4, 3, 3, 3)
    w[2, 1] = torch.randn(3, 3)
    assert fq.sparsity(w) == pytest.approx(11 / 12)
    # a kernel whose largest weight is 1 % of the layer's maximum counts as sparse, 1.5 % does not
    w[0, 0, 1, 1] = 0.01 * w.abs().max()
    w[1, 0, 1, 1] = 0.015 * w.abs().max()
    assert fq.sparsity(w) == pytest.approx(10 / 12)
    assert fq.sparsity(torch.zeros(2, 2, 3, 3)) == 1.0
    assert fq.variance_entropy(torch.zeros(2, 2, 3, 3)) == (None, None)


def test_entropy_needs_two_kernels_and_a_positive_bound():
    one = torch.zeros(3, 3, 3, 3)
    one[0, 0] = torch.randn(3, 3)
    assert fq.variance_entropy(one) == (None, None)
    two = one.clone()
    two[1, 2] = torch.randn(3, 3)
    h, h_norm = fq.variance_entropy(two)  # two points span one direction: H = 0; tau(2) < 0
    assert h == pytest.approx(0.0, abs=1e-12) and h_norm is None and fq.randomness_bound(2) < 0 < fq.randomness_bound(3)


def test_identical_filters_have_orthogonality_zero():
    filt = torch.randn(1, 5, 3, 3)
    assert fq.orthogonality(filt.repeat(6, 1, 1, 1)) == pytest.approx(0.0, abs=1e-12)
    assert fq.orthogonality(torch.cat([filt, -3 * filt])) == pytest.approx(0.0, abs=1e-12)  # |cos| = 1 either sign
    assert fq.orthogonality(filt) is None


def test_orthonormal_filters_have_orthogonality_one():
    q, _ = torch.linalg.qr(torch.randn(2 * 9, 6, dtype=torch.float64))  # 6 orthonormal columns in R^18
    w = (q.T * torch.tensor([1.0, 2, 3, 4, 5, 6], dtype=torch.float64).view(-1, 1)).reshape(6, 2, 3, 3)  # any lengths
    assert fq.orthogonality(w) == pytest.approx(1.0, abs=1e-12)


def test_entropy_of_scalar_multiples_of_one_kernel_is_zero():
    k = torch.randn(3, 3)
    scales = torch.tensor([0.5, -2.0, 3.0, -0.1, 7.0, 1.0, -4.0, 0.3])
    w = (scales.view(4, 2, 1, 1) * k).double()
    h, h_norm = fq.variance_entropy(w)
    assert h == pytest.approx(0.0, abs=1e-9) and h_norm == pytest.approx(0.0, abs=1e-9)
    h_pos, _ = fq.variance_entropy(w.abs() * k.sign())  # all positive multiples: no variance at all
    assert h_pos == 0.0


def test_entropy_of_one_hot_kernels_is_log10_8():
    """Nine one-hot kernels: the centred set spans 8 equal directions, so H = log10 8."""
    w = torch.eye(9).view(9, 1, 3, 3) * torch.arange(1.0, 10.0).view(9, 1, 1, 1)  # each scaled by its own max
    h, _ = fq.variance_entropy(w)
    assert h == pytest.approx(math.log10(8), abs=1e-12)
    h_random, _ = fq.variance_entropy(torch.randn(256, 16, 3, 3))
    assert 0.9 < h_random <= math.log10(9)


def test_model_table_depth_deciles_and_skipped_layers():
    model = Classifier(ResNet18(3, 10, width=4), [0.5] * 3, [0.25] * 3)
    result = fq.model_filter_quality(model)
    names = [row["name"] for row in result["layers"]]
    assert len(names) == 16 and names[0] == "net.layer1.0.conv1" and names[-1] == "net.layer4.1.conv2"
    assert {row["name"] for row in result["skipped"]} == {"net.stem.0", "net.layer2.0.shortcut.0", "net.layer3.0.shortcut.0",
                                                         "net.layer4.0.shortcut.0"}
    assert [s["kernel_size"] for s in result["skipped"]][0] == [7, 7]
    depths = [row["depth"] for row in result["layers"]]
    assert depths[0] == 0 and depths[-1] == 1 and depths == sorted(depths)
    assert [row["depth_index"] for row in result["layers"]] == list(range(16))
    assert result["first_layer"]["name"] == names[0]
    assert sum(d["n_layers"] for d in result["deciles"]) == 16
    for d in result["deciles"]:
        rows = [row for row in result["layers"] if d["depth_range"][0] <= row["depth"] < d["depth_range"][1] or
                (d["decile"] == 9 and row["depth"] == 1)]
        assert d["layers"] == [row["name"] for row in rows]
        assert d["orthogonality"] == pytest.approx(np.mean([row["orthogonality"] for row in rows]))
        assert d["sparsity"] == pytest.approx(np.mean([row["sparsity"] for row in rows]))
    table = fq.layer_table(result)
    assert list(table["name"]) == names and table["variance_entropy"].between(0, math.log10(9)).all()


def test_unwrap_finds_the_classifier_inside_a_transform_pipeline():
    classifier = Classifier(SmallCNN(1, 10, width=4), [0.5], [0.25])
    pipeline = TransformedModel(classifier, GaussianBlur(1.0, 7))
    assert fq.unwrap_classifier(pipeline) == (classifier, "model")
    assert fq.unwrap_classifier(classifier) == (classifier, "")
    with pytest.raises(ValueError, match="wraps no classifier"):
        fq.unwrap_classifier(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_cross_check_with_torchconvquality():
    # exc_type=ImportError: the package imports distutils, gone from Python 3.12 on
    tcq = pytest.importorskip("torchconvquality", reason="torchconvquality (PyPI) is not importable", exc_type=ImportError)
    for seed, shape in enumerate([(16, 8), (7, 5), (64, 32)]):
        w = random_layer(*shape, seed)
        s_ref, mask_ref = tcq.sparsity(w)
        assert fq.sparsity(w) == pytest.approx(s_ref)
        assert torch.equal(fq.sparse_kernel_mask(w), mask_ref)
        assert fq.orthogonality(w) == pytest.approx(tcq.orthogonality(w), abs=1e-5)
        # the package does not scale kernels by their max-abs: give it the scaled kernels and the mask
        kernels = w.flatten(0, 1)
        kernels = kernels.double()
        scaled = (kernels / kernels.abs().amax(dim=(1, 2), keepdim=True)).view_as(w)
        h_ref, h_norm_ref = tcq.variance_entropy(scaled, mask=~mask_ref)
        h, h_norm = fq.variance_entropy(w)
        assert h == pytest.approx(h_ref, abs=1e-9) and h_norm == pytest.approx(h_norm_ref, abs=1e-9)
    model = Classifier(SmallCNN(1, 10, width=8), [0.5], [0.25])
    reference = tcq.measure_quality(model)
    ours = fq.model_filter_quality(model)
    assert [row["name"] for row in ours["layers"]] == list(reference)
    for row in ours["layers"]:
        assert row["sparsity"] == pytest.approx(reference[row["name"]]["sparsity"])
        assert row["orthogonality"] == pytest.approx(reference[row["name"]]["orthogonality"], abs=1e-5)
