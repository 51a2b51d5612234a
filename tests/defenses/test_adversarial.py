"""adv_train: PGD examples crafted in eval mode within eps, and a real robustness gain."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import bench.defenses.adversarial  # noqa: F401  (registers the defense)
from bench.attacks.threat import L2, Linf
from bench.defenses.adversarial import PGDTraining
from bench.defenses.base import CrossEntropy
from bench.evaluation import evaluate_attack
from bench.catalog import ATTACKS, DEFENSES


def test_defaults_are_recorded():
    assert DEFENSES.create("adv_train").params == {"eps": 0.3, "steps": 10, "rel_stepsize": 0.25, "threat_model": "linf",
                                                   "mix_clean": 0.0, "random_start": True}
    assert DEFENSES.create("adv_train", threat_model="l2", steps=5).params["eps"] == 2.0
    assert DEFENSES.create("adv_train").base is None  # a trained defense, not a wrapper


@pytest.mark.parametrize("threat_model, eps, norm", [("linf", 0.2, Linf.norm), ("l2", 1.5, L2.norm)])
def test_crafting_stays_in_the_ball_and_leaves_batchnorm_and_mode_alone(trained_cnn, eval_batch, threat_model, eps, norm):
    model = copy.deepcopy(trained_cnn).train()
    objective = DEFENSES.create("adv_train", eps=eps, steps=4, threat_model=threat_model).objective(None)
    assert isinstance(objective, PGDTraining)
    x, y = eval_batch[0][:32], eval_batch[1][:32]
    stats = {n: b.clone() for n, b in model.named_buffers()}
    assert any(n.endswith("running_mean") for n in stats)  # the model has batch norm statistics to protect
    x_adv = objective.craft(model, x, y)
    assert model.training
    assert all(torch.equal(b, stats[n]) for n, b in model.named_buffers())  # eval-mode crafting
    assert torch.isfinite(x_adv).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (norm(x_adv - x) <= eps * (1 + 1e-5) + 1e-6).all() and (x_adv != x).any()
    model.eval()
    with torch.no_grad():
        assert (model(x_adv).argmax(1) == y).float().mean() < (model(x).argmax(1) == y).float().mean()


def test_objective_returns_adversarial_logits_finite_loss_and_replays_exactly(trained_cnn, eval_batch):
    model = copy.deepcopy(trained_cnn).eval()  # eval mode here so logits are comparable example by example
    x, y = eval_batch[0][:32], eval_batch[1][:32]
    objective = DEFENSES.create("adv_train", eps=0.2, steps=4, mix_clean=0.25).objective(None)
    torch.manual_seed(3)  # the training loop seeds the global RNG per epoch; crafting draws from it
    loss, logits, logs = objective(model, x, y)
    torch.manual_seed(3)
    loss2, logits2, _ = objective(model, x, y)
    torch.testing.assert_close(logits, logits2)
    assert math.isfinite(loss.item()) and logits.shape == (32, 10)
    with torch.no_grad():
        torch.testing.assert_close(logits[:8], model(x[:8]))  # mix_clean: the first quarter stays clean
        clean_acc = (model(x[8:]).argmax(1) == y[8:]).float().mean().item()
    assert logs["adv_acc"] == pytest.approx((logits[8:].argmax(1) == y[8:]).float().mean().item())
    assert logs["adv_acc"] < clean_acc
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_few_adversarial_steps_beat_the_same_steps_of_plain_training(trained_cnn, digits, eval_batch):
    """Fine-tune the trained model for 10 steps with adv_train vs cross-entropy; compare PGD accuracy."""
    eps = 0.15
    x, y = eval_batch
    robust = {}
    for name, objective in [("adv", DEFENSES.create("adv_train", eps=eps, steps=3).objective(None)), ("ce", CrossEntropy())]:
        model = copy.deepcopy(trained_cnn).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        for _ in range(10):
            idx = torch.randint(0, len(digits.train_y), (64,), generator=g)
            loss, _, _ = objective(model, digits.train_x[idx].float() / 255, digits.train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        outcome = evaluate_attack(model.eval(), ATTACKS.create("pgd", steps=5, rel_stepsize=0.3), x, y, [eps], 120, seed=0)
        assert outcome.clean_accuracy() > 0.8  # adversarial training trades a little clean accuracy
        robust[name] = outcome.robust_accuracy()[eps]
    assert robust["adv"] > robust["ce"] + 0.2, robust
