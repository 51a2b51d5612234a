import numpy as np
import pytest
import torch

from regularizers import (
    average_similarity,
    label_target,
    neural_similarity,
    pixel_similarity,
    reliability_weights,
    shuffled_target,
    threshold_similarity,
    to_grayscale,
)


def numpy_centred_cosine(x):
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(axis=0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_pixel_similarity_luma_matches_numpy():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 6, 5, generator=g)
    s = pixel_similarity(x)
    xn = x.numpy().astype(np.float64)
    gray = 0.299 * xn[:, 0] + 0.587 * xn[:, 1] + 0.114 * xn[:, 2]
    assert s.dtype == torch.float32 and s.shape == (40, 40)
    np.testing.assert_allclose(s.numpy(), numpy_centred_cosine(gray), atol=2e-6)
    np.testing.assert_allclose(np.diag(s.numpy()), 1.0, atol=1e-6)


def test_pixel_similarity_mean_and_single_channel():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(30, 3, 4, 4, generator=g)
    np.testing.assert_allclose(
        pixel_similarity(x, color="mean").numpy(), numpy_centred_cosine(x.numpy().mean(axis=1)), atol=2e-6
    )
    one = x[:, :1]
    np.testing.assert_allclose(pixel_similarity(one).numpy(), numpy_centred_cosine(one.numpy()), atol=2e-6)
    assert torch.equal(to_grayscale(one), one)


def test_pixel_similarity_image_equal_to_mean_gives_zeros_not_nan():
    # Multiples of 1/16, three images summing to 3 x image 3: every sum and mean is exact in float32
    # whatever the summation order, so image 3 is the mean image and exactly zero after centring.
    x = torch.tensor([[1, 6, 3, 12], [4, 2, 9, 0], [7, 4, 6, 9], [4, 4, 6, 7]], dtype=torch.float32).view(4, 1, 2, 2) / 16
    assert torch.equal(x[:3].sum(0), 3 * x[3])
    s = pixel_similarity(x)
    assert torch.isfinite(s).all()
    assert torch.all(s[3] == 0) and torch.all(s[:, 3] == 0)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(5, 4, 4), r"\[N, C, H, W\]"),
        ((torch.rand(5, 1, 4, 4) * 255).to(torch.uint8), "float"),
        (torch.rand(5, 1, 4, 4) * 2, r"\[0, 1\]"),
        (torch.rand(1, 1, 4, 4), "at least 2"),
    ],
)
def test_pixel_similarity_rejects_bad_images(bad, match):
    with pytest.raises(ValueError, match=match):
        pixel_similarity(bad)


def test_pixel_similarity_unknown_color():
    with pytest.raises(ValueError, match="luma, mean"):
        pixel_similarity(torch.rand(4, 3, 2, 2), color="hsv")


def test_threshold_similarity_hand_made():
    s = torch.tensor(
        [
            [1.0, 0.9, -0.9, 0.5],
            [0.9, 1.0, 0.8, -0.8],
            [-0.9, 0.8, 0.3, 0.0],
            [0.5, -0.8, 0.0, 1.0],
        ]
    )
    out = threshold_similarity(s, 0.8)
    expected = torch.tensor(
        [
            [1.0, 1, -1, 0],
            [1, 1, 0, 0],  # 0.8 is not > 0.8
            [-1, 0, 1, 0],  # diagonal forced to 1 although S_22 = 0.3
            [0, 0, 0, 1],
        ]
    )
    assert torch.equal(out, expected)
    as_int8 = threshold_similarity(s, 0.8, dtype=torch.int8)
    assert as_int8.dtype == torch.int8 and torch.equal(as_int8.float(), expected)
    assert torch.equal(threshold_similarity(s, 0.0), torch.tensor(
        [[1.0, 1, -1, 1], [1, 1, 1, -1], [-1, 1, 1, 0], [1, -1, 0, 1]]))
    with pytest.raises(ValueError, match="th must be >= 0"):
        threshold_similarity(s, -0.1)


def numpy_neural(responses, repeats):
    r = np.asarray(responses, dtype=np.float64)
    if repeats is not None:
        rep = np.asarray(repeats, dtype=np.float64)
        sigma = np.sqrt(rep.mean(axis=0).var(axis=0, ddof=1))
        eta = np.sqrt(rep.var(axis=0, ddof=1).mean(axis=0))
        r = r * (sigma / eta)
    return numpy_centred_cosine(r)


def test_neural_similarity_with_reliability_matches_numpy():
    g = torch.Generator().manual_seed(2)
    signal = torch.randn(25, 12, generator=g) * torch.linspace(0.2, 3.0, 12)
    noise_sd = torch.linspace(2.0, 0.1, 12)
    repeats = signal + noise_sd * torch.randn(6, 25, 12, generator=g)
    responses = repeats.mean(dim=0)
    s = neural_similarity(responses, repeats)
    np.testing.assert_allclose(s.numpy(), numpy_neural(responses.numpy(), repeats.numpy()), atol=3e-6)
    # The weighting matters: without it the matrix differs.
    plain = neural_similarity(responses, repeats, reliability_weighting=False)
    np.testing.assert_allclose(plain.numpy(), numpy_neural(responses.numpy(), None), atol=3e-6)
    assert (s - plain).abs().max() > 0.05
    # Without repeats there is nothing to weight by.
    assert torch.allclose(neural_similarity(responses), plain)


def test_reliability_weights_from_a_different_image_set_and_ordering():
    g = torch.Generator().manual_seed(3)
    signal = torch.randn(10, 4, generator=g)
    noise = torch.tensor([0.1, 1.0, 0.1, 3.0])
    repeats = signal * torch.tensor([1.0, 1.0, 3.0, 1.0]) + noise * torch.randn(8, 10, 4, generator=g)
    w = reliability_weights(repeats)
    np.testing.assert_allclose(
        w.numpy(),
        np.sqrt(repeats.numpy().astype(np.float64).mean(0).var(0, ddof=1))
        / np.sqrt(repeats.numpy().astype(np.float64).var(0, ddof=1).mean(0)),
        rtol=1e-5,
    )
    assert w[2] > w[0] > w[1] > w[3]
    # repeats over 10 "oracle" images, responses over 30 images: only the neuron axis must match
    s = neural_similarity(torch.randn(30, 4, generator=g), repeats)
    assert s.shape == (30, 30)
    with pytest.raises(ValueError, match="neurons"):
        neural_similarity(torch.randn(30, 5, generator=g), repeats)


def test_reliability_weights_guard_zero_noise():
    g = torch.Generator().manual_seed(4)
    base = torch.randn(5, 3, generator=g)
    repeats = base.expand(4, 5, 3).clone()
    repeats[:, :, 0] += 0.5 * torch.randn(4, 5, generator=g)  # noisy neuron
    repeats[:, :, 2] = 7.0  # constant neuron: sigma = 0, eta = 0
    w = reliability_weights(repeats)
    assert torch.isfinite(w).all()
    assert w[2] == 0.0  # constant neuron dropped
    assert w[1] > 1e3 * w[0]  # noiseless, varying neuron dominates (eta floored, not zero)
    # all noiseless: equal weights for every varying neuron
    w_all = reliability_weights(base.expand(4, 5, 3).clone())
    assert torch.equal(w_all, torch.ones(3))
    with pytest.raises(ValueError, match=">= 2 repeats"):
        reliability_weights(base[None])


def test_average_similarity():
    a, b = torch.eye(3), torch.full((3, 3), 0.5)
    assert torch.allclose(average_similarity([a, b]), (a + b) / 2)
    with pytest.raises(ValueError, match="shape"):
        average_similarity([a, torch.eye(4)])
    with pytest.raises(ValueError, match="at least one"):
        average_similarity([])


def test_shuffled_target_permutes_rows_and_columns_together():
    g = torch.Generator().manual_seed(5)
    s = pixel_similarity(torch.rand(20, 1, 3, 3, generator=g))
    out = shuffled_target(s, torch.Generator().manual_seed(9))
    p = torch.randperm(20, generator=torch.Generator().manual_seed(9))
    assert not torch.equal(p, torch.arange(20))
    for a in range(20):
        for b in range(20):
            assert out[a, b] == s[p[a], p[b]]
    assert torch.allclose(out, out.T, atol=1e-6)
    assert torch.equal(torch.sort(out.flatten()).values, torch.sort(s.flatten()).values)
    assert not torch.allclose(out, s)


def test_label_target():
    labels = torch.tensor([0, 1, 0, 2])
    out = label_target(labels)
    expected = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    assert torch.equal(out, expected)
    neg = label_target(labels, different=-0.5)
    assert neg[0, 1] == -0.5 and neg[0, 2] == 1 and torch.all(torch.diag(neg) == 1)
    with pytest.raises(ValueError, match="1-D"):
        label_target(labels[None])
