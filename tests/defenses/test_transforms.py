"""Input-transformation defenses and their adaptive attack views (BPDA, EOT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import bench.defenses.transforms  # noqa: F401  (registers the defenses)
from bench.defenses.base import attack_view
from bench.defenses.transforms import AdaptiveView, GaussianBlur, MedianFilter, TransformedModel
from bench.evaluation import evaluate_attack
from bench.catalog import ATTACKS, DEFENSES


def input_grad(module, x, y):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(module(x), y, reduction="sum"), x)
    return grad


def test_gaussian_blur_is_attacked_end_to_end_with_the_true_gradient(trained_cnn, eval_batch):
    x, y = eval_batch[0][:8], eval_batch[1][:8]
    pipe = DEFENSES.create("gaussian_blur", sigma=1.0).wrap(trained_cnn)
    assert pipe.transform.kernel.sum().item() == pytest.approx(1.0) and pipe.transform.kernel.numel() == 7
    assert attack_view(pipe) is pipe
    # The blur as an explicit 784 x 784 matrix (columns: blurred basis images); the chain
    # rule through it must equal autograd through the depthwise convolutions.
    basis = torch.eye(28 * 28).view(-1, 1, 28, 28)
    matrix = pipe.transform(basis).view(28 * 28, 28 * 28)  # row i = blur(e_i)
    blurred = pipe.transform(x).detach()
    grad_at_blurred = input_grad(trained_cnn, blurred, y)
    expected = (grad_at_blurred.view(8, -1) @ matrix.T).view_as(x)
    grad = input_grad(pipe, x, y)
    assert grad.abs().sum() > 0
    # float32 sums of 784 terms in two different orders: agree to rounding, relative to the gradient's scale
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    assert not torch.allclose(grad, grad_at_blurred, atol=1e-4)  # the blur's Jacobian is really applied
    small = torch.rand(2, 2, 9, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(GaussianBlur(0.8, 5).double(), (small,))
    torch.testing.assert_close(pipe.transform(torch.full((1, 3, 10, 10), 0.3)), torch.full((1, 3, 10, 10), 0.3))


def test_median_filter_matches_scipy_and_bpda_passes_the_gradient_straight_through(trained_cnn, eval_batch):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 17, 13, generator=g)
    for k in (3, 5):
        ours = MedianFilter(k)(images).numpy()
        ref = ndimage.median_filter(images.numpy(), size=(1, 1, k, k), mode="nearest")
        np.testing.assert_array_equal(ours, ref)
        interior = ndimage.median_filter(images.numpy(), size=(1, 1, k, k))[..., k:-k, k:-k]
        np.testing.assert_array_equal(ours[..., k:-k, k:-k], interior)
    x, y = eval_batch[0][:16], eval_batch[1][:16]
    pipe = DEFENSES.create("median_filter").wrap(trained_cnn)
    view = attack_view(pipe)
    assert isinstance(view, AdaptiveView)
    # The straight-through value x + (t(x) - x).detach() equals t(x) only to float rounding (an
    # ulp of the pixels), so the logits and gradients agree to tolerances, not bit for bit.
    torch.testing.assert_close(view(x), pipe(x), rtol=1e-5, atol=1e-5)
    grad = input_grad(view, x, y)
    assert grad.abs().sum() > 0
    expected = input_grad(trained_cnn, pipe.transform(x), y)  # identity backward at t(x)
    # An ulp in the forward value can flip a max-pool or ReLU tie, which moves a few gradient entries:
    # the two agree up to those few (seen: 37 of 12544 entries, on one CPU and not on another).
    close = torch.isclose(grad, expected, rtol=1e-3, atol=1e-5 * expected.abs().max().item())
    assert close.float().mean() > 0.99
    assert torch.nn.functional.cosine_similarity(grad.flatten(), expected.flatten(), dim=0) > 0.999
    assert not torch.allclose(grad, input_grad(trained_cnn, x, y), rtol=1e-3, atol=1e-3 * expected.abs().max().item())
    assert attack_view(DEFENSES.create("median_filter", gradient="exact").wrap(trained_cnn)) is not view


def test_quantize_masks_gradients_and_only_bpda_sees_through_it(trained_cnn, eval_batch):
    """The exact gradient of rounding is zero: a naive PGD reports near-clean robustness, BPDA does not."""
    x, y = eval_batch[0][:64], eval_batch[1][:64]
    naive = DEFENSES.create("quantize", bits=3, gradient="exact").wrap(trained_cnn)
    adaptive = DEFENSES.create("quantize", bits=3).wrap(trained_cnn)
    assert torch.isin(adaptive.transform(x), torch.arange(8) / 7).all()
    assert input_grad(attack_view(naive), x, y).abs().max() == 0
    assert input_grad(attack_view(adaptive), x, y).abs().max() > 0
    pgd, eps = ATTACKS.create("pgd", steps=5, rel_stepsize=0.25), 0.15
    masked = evaluate_attack(naive, pgd, x, y, [eps], 64, seed=0)
    real = evaluate_attack(adaptive, pgd, x, y, [eps], 64, seed=0)
    clean = masked.clean_accuracy()
    assert clean > 0.9 and real.clean_accuracy() == clean
    assert masked.robust_accuracy()[eps] >= clean - 0.1, masked.robust_accuracy()
    assert real.robust_accuracy()[eps] <= masked.robust_accuracy()[eps] - 0.4, (real.robust_accuracy(), masked.robust_accuracy())


def test_random_noise_is_random_and_its_eot_view_averages_the_draws(trained_cnn, eval_batch):
    x, y = eval_batch[0][:6], eval_batch[1][:6]
    defense = DEFENSES.create("random_noise", sigma=0.2, eot_samples=5)
    pipe = defense.wrap(trained_cnn)
    with torch.no_grad():
        assert not torch.equal(pipe(x), pipe(x))
    view = attack_view(pipe)
    assert isinstance(view, AdaptiveView)
    # A fresh pipeline's generator starts from the recorded seed: redo its 5 draws by hand.
    noise = torch.randn((5 * 6, *x.shape[1:]), generator=torch.Generator().manual_seed(defense.params["seed"]))
    with torch.no_grad():
        draws = trained_cnn(x.repeat(5, 1, 1, 1) + 0.2 * noise).view(5, 6, -1)
        torch.testing.assert_close(attack_view(defense.wrap(trained_cnn))(x), draws.mean(0))
        probs = DEFENSES.create("random_noise", sigma=0.2, eot_samples=5, eot_reduce="probs").wrap(trained_cnn)
        torch.testing.assert_close(attack_view(probs)(x).exp(), draws.softmax(-1).mean(0))
    grad = input_grad(view, x, y)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    single = DEFENSES.create("random_noise", eot_samples=1).wrap(trained_cnn)
    assert attack_view(single) is single  # differentiable, one draw: attacked as it is


def test_chained_transforms_stay_adaptive(trained_cnn, eval_batch):
    """median_filter on top of quantize: the outer view must use the inner BPDA, not its zero gradient."""
    x, y = eval_batch[0][:8], eval_batch[1][:8]
    inner = DEFENSES.create("quantize").wrap(trained_cnn)
    outer = DEFENSES.create("median_filter", base="quantize").wrap(inner)
    assert isinstance(outer, TransformedModel) and outer.taps == {k: f"model.model.{v}" for k, v in trained_cnn.taps.items()}
    view = attack_view(outer)
    torch.testing.assert_close(view(x), outer(x))
    assert input_grad(view, x, y).abs().sum() > 0
