"""Fixed first-layer frontends: buffers not parameters, trainable models, checkpoint round trips."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import bench.defenses.frontend  # noqa: F401  (registers the defenses)
from bench.defenses.base import CrossEntropy, attack_view
from bench.defenses.frontend import gabor_bank
from bench.errors import ConfigError
from bench.pipeline import build_model
from bench.catalog import DEFENSES


def fresh_model(digits, name: str, **params):
    torch.manual_seed(0)
    model = build_model({"name": "small_cnn", "normalization": "dataset", "width": 8}, 1, 10, digits.channel_stats())
    defense = DEFENSES.create(name, **params)
    defense.prepare(model)
    return model, defense


def test_gabor_bank_is_zero_mean_unit_norm_with_a_lowpass_map():
    bank = gabor_bank(orientations=4, phases=2, frequencies=[0.15, 0.3], kernel_size=7, sigma=2.0, include_lowpass=True)
    assert bank.shape == (17, 1, 7, 7)
    gabors = bank[:-1].flatten(1)
    torch.testing.assert_close(gabors.sum(1), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(gabors.norm(dim=1), torch.ones(16))
    assert bank[-1].sum().item() == pytest.approx(1.0) and (bank[-1] > 0).all()
    assert torch.linalg.matrix_rank(gabors.double()) == 16  # every orientation/phase/frequency is a distinct filter
    vertical = torch.zeros(1, 1, 15, 15)
    vertical[..., ::4] = 1  # vertical stripes, period 4 px: the theta = 0, f = 0.25 filters respond most
    bank4 = gabor_bank(4, 1, [0.25], 7, 2.0, include_lowpass=False)
    assert F.conv2d(vertical, bank4)[0].abs().mean((1, 2)).argmax().item() == 0


@pytest.mark.parametrize("name, fixed, trainable", [("lowpass_frontend", {"kernel"}, set()),
                                                    ("gabor_frontend", {"bank"}, {"mix.weight", "mix.bias"})])
def test_frontend_is_fixed_trainable_around_it_and_round_trips(digits, name, fixed, trainable):
    model, defense = fresh_model(digits, name)
    front = model.frontend
    assert {n for n, _ in front.named_buffers()} == fixed
    assert {n for n, _ in front.named_parameters()} == trainable
    assert all(f"frontend.{n}" in model.state_dict() for n in fixed | trainable)
    frozen = {n: b.clone() for n, b in front.named_buffers()}
    x, y = digits.train_x[:64].float() / 255, digits.train_y[:64]
    objective = defense.objective(None)
    assert isinstance(objective, CrossEntropy)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(30):
        loss, logits, _ = objective(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert math.isfinite(losses[-1]) and losses[-1] < 0.6 * losses[0], losses
    assert all(torch.equal(b, frozen[n]) for n, b in front.named_buffers())
    if trainable:
        assert front.mix.weight.grad is not None and front.mix.weight.grad.abs().sum() > 0
    model.eval()
    reloaded, _ = fresh_model(digits, name)
    reloaded.load_state_dict(model.state_dict())
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x))
    assert attack_view(model) is model  # differentiable: attacked end to end
    xg = x[:4].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y[:4]), xg)
    assert grad.abs().sum() > 0


def test_lowpass_frontend_blurs_after_normalisation(digits):
    model, _ = fresh_model(digits, "lowpass_frontend", sigma=1.5)
    x = digits.test_x[:2].float() / 255
    normalised = model.normalize(x)
    blurred = model.frontend(normalised)
    assert blurred.shape == normalised.shape
    assert blurred.diff(dim=-1).abs().mean() < 0.7 * normalised.diff(dim=-1).abs().mean()  # high frequencies damped
    assert model.frontend.kernel.numel() == 11


def test_frontend_needs_a_classifier():
    with pytest.raises(ConfigError, match="Classifier"):
        DEFENSES.create("lowpass_frontend").prepare(torch.nn.Linear(2, 2))
