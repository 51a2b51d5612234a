"""heat_blur: heatmaps, clean accuracy of the pipeline, and attacks through its BPDA-on-the-mask view."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bench.defenses.heat_blur  # noqa: F401  (registers the defense)
from bench.defenses.base import attack_view
from bench.errors import ConfigError
from bench.evaluation import evaluate_attack, predict
from bench.catalog import ATTACKS, DEFENSES


@pytest.mark.parametrize("attribution", ["grad_x_input", "smoothgrad", "gradcam"])
def test_heatmaps_are_normalised_deterministic_per_image_and_on_the_digit(trained_cnn, eval_batch, attribution):
    x = eval_batch[0][:24]
    heat_blur = DEFENSES.create("heat_blur", attribution=attribution, smoothgrad_samples=4).wrap(trained_cnn).transform
    grads_before = [None if p.grad is None else p.grad.clone() for p in trained_cnn.parameters()]
    with torch.no_grad():  # scoring runs under no_grad: the attribution must enable gradients itself
        heat = heat_blur.heatmap(x)
    assert heat.shape == (24, 1, 28, 28) and torch.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1
    torch.testing.assert_close(heat.flatten(1).amax(1), torch.ones(24))
    torch.testing.assert_close(heat_blur.heatmap(x[5:9]), heat[5:9])  # independent of the batch around it
    assert heat[x > 0.5].mean() > 2 * heat[x == 0].mean()  # the evidence lies on the strokes
    for p, before in zip(trained_cnn.parameters(), grads_before):  # attribution differentiates the input only
        assert (p.grad is None and before is None) or torch.equal(p.grad, before)
    assert not trained_cnn.training


@pytest.mark.parametrize("mode", ["blur_background", "soft"])
def test_blend_keeps_the_hot_pixels_and_blurs_the_rest(trained_cnn, eval_batch, mode):
    x = eval_batch[0][:16]
    heat_blur = DEFENSES.create("heat_blur", mode=mode, keep=0.3).wrap(trained_cnn).transform
    with torch.no_grad():
        w = heat_blur.mask(heat_blur.heatmap(x))
        out, blurred = heat_blur(x), heat_blur.blur(x)
    assert w.min() >= 0 and w.max() <= 1
    hard = w.flatten(1)
    kept = (hard == 1).float().mean(1)
    assert (kept >= 0.25).all() and (kept <= 0.4).all(), kept  # about `keep` of the pixels stay sharp
    if mode == "blur_background":
        assert ((w == 0) | (w == 1)).all()
    else:
        assert ((w > 0) & (w < 1)).any()
    torch.testing.assert_close(out, w * x + (1 - w) * blurred)
    assert ((out - x).abs() * (w < 0.5)).amax() > 0.2  # pixels with little heat really are blurred


def test_pipeline_keeps_clean_accuracy_of_the_base_model(trained_cnn, eval_batch):
    x, y = eval_batch
    base = (predict(trained_cnn, x, 120) == y).float().mean().item()
    for params in ({}, {"mode": "soft"}, {"attribution": "gradcam"}):
        pipe = DEFENSES.create("heat_blur", **params).wrap(trained_cnn)
        acc = (predict(pipe, x, 120) == y).float().mean().item()
        assert acc >= base - 0.08, (params, acc, base)


def test_attack_view_is_bpda_on_the_mask_and_attacks_produce_valid_examples(trained_cnn, eval_batch):
    x, y = eval_batch[0][:32], eval_batch[1][:32]
    pipe = DEFENSES.create("heat_blur").wrap(trained_cnn)
    view = attack_view(pipe)
    assert view is not pipe
    torch.testing.assert_close(view(x), pipe(x))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(view(xg), y), xg)
    # By hand: the same blend with the mask frozen, differentiated through blur and model.
    w = pipe.transform.mask(pipe.transform.heatmap(x))
    xh = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.cross_entropy(trained_cnn(w * xh + (1 - w) * pipe.transform.blur(xh)), y), xh)
    torch.testing.assert_close(grad, expected)
    assert grad.abs().sum() > 0
    outcome = evaluate_attack(pipe, ATTACKS.create("pgd", steps=3, rel_stepsize=0.4), x, y, [0.0, 0.2], 32, seed=0)
    assert outcome.checks and all(c["status"] == "pass" for c in outcome.checks), outcome.checks
    assert outcome.robust_accuracy()[0.2] < outcome.clean_accuracy() - 0.4, outcome.robust_accuracy()


def test_gradcam_needs_feature_taps():
    defense = DEFENSES.create("heat_blur", attribution="gradcam")
    with pytest.raises(ConfigError, match="taps"):
        defense.wrap(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))
