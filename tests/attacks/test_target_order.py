"""Which wrong classes PGD's targeted runs aim at: the logits' order, or MALT's nearest boundary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks.gradient import PGDSettings, target_classes
from bench.attacks.threat import L2, Linf
from bench.errors import ConfigError
from bench.registry import ATTACKS


def _linear(weights: list[list[float]], bias: list[float]) -> nn.Module:
    model = nn.Linear(len(weights[0]), len(weights))
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weights))
        model.bias.copy_(torch.tensor(bias))
    return model.eval()


# four classes over two inputs; at x = 0 the logits are the biases. Class 1 is the most likely wrong class,
# but its boundary with class 0 is far (weights differ little); class 2 is less likely but its boundary is near.
MODEL = _linear([[0.0, 0.0], [0.1, 0.0], [2.0, 2.0], [0.0, 0.05]], [1.0, 0.8, 0.0, -1.0])
X = torch.zeros(1, 2)
Y = torch.tensor([0])


def test_logits_order_is_the_most_likely_wrong_classes():
    assert target_classes(MODEL, X, Y, 3, "logits").tolist() == [[1, 2, 3]]


def test_malt_order_is_the_nearest_boundary_under_a_linear_model():
    # L_inf distance to the boundary with t: (z_0 - z_t) / ||w_t - w_0||_1, computed by hand
    by_hand = {1: 0.2 / 0.1, 2: 1.0 / 4.0, 3: 2.0 / 0.05}
    assert sorted(by_hand, key=by_hand.get) == [2, 1, 3]
    assert target_classes(MODEL, X, Y, 3, "malt", Linf.dual_norm).tolist() == [[2, 1, 3]]
    assert target_classes(MODEL, X, Y, 1, "malt", Linf.dual_norm).tolist() == [[2]]


def test_malt_uses_the_threat_models_dual_norm():
    # gaps 1 and 1.2; weight differences [1, 1] and [1.8, 0]: L_inf distances 1/2 and 1.2/1.8 (class 1 first),
    # L_2 distances 1/sqrt(2) = 0.71 and 0.67 (class 2 first)
    model = _linear([[0.0, 0.0], [1.0, 1.0], [1.8, 0.0]], [0.0, -1.0, -1.2])
    assert target_classes(model, X, Y, 2, "malt", Linf.dual_norm).tolist() == [[1, 2]]
    assert target_classes(model, X, Y, 2, "malt", L2.dual_norm).tolist() == [[2, 1]]


def test_malt_never_targets_the_true_class_and_handles_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)).eval()
    x, y = torch.rand(150, 6), torch.randint(0, 5, (150,))  # more than one CPU chunk
    order = target_classes(model, x, y, 9, "malt", Linf.dual_norm)
    assert order.shape == (150, 4)  # at most every wrong class
    assert not (order == y[:, None]).any()
    assert all(len(set(row)) == 4 for row in order.tolist())
    assert target_classes(model, x[:0], y[:0], 3, "malt", Linf.dual_norm).shape == (0, 3)  # nothing left to attack


def test_target_order_and_runs_are_validated():
    assert PGDSettings.of("pgd", {"target_order": "malt", "targets": 3, "restarts": 0}).target_order == "malt"
    with pytest.raises(ConfigError, match="target_order"):
        PGDSettings.of("pgd", {"target_order": "nearest"})
    with pytest.raises(ConfigError, match="restarts"):
        PGDSettings.of("pgd", {"restarts": 0})  # no run at all


def test_pgd_with_malt_targets_fools_the_linear_model_toward_the_near_class():
    attack = ATTACKS.create("pgd", steps=20, restarts=0, targets=1, target_order="malt", target_loss="margin")
    x_adv = attack.perturb(MODEL, X, Y, 0.3, torch.Generator().manual_seed(0))
    assert MODEL(x_adv).argmax(1).item() == 2  # within 0.3 only class 2's boundary (at 0.25) is reachable
