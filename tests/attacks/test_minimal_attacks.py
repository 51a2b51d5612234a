import copy

import pytest
import torch
from attack_helpers import Constant, fooled, valid_images

import bench.attacks.gradient  # noqa: F401  (registers pgd)
import bench.attacks.minimal  # noqa: F401  (registers the minimal-norm attacks)
from bench.attacks.threat import L2, Linf
from bench.catalog import ATTACKS

STEPS = 20
# Loose bounds on the median minimal perturbation of the 16 digits (measured about 0.09 / 1.7 / 1.1).
BOUND = {"fmn": 0.25, "fmn_l2": 3.0, "ddn": 3.0}


@pytest.mark.parametrize("name", list(BOUND))
def test_minimal_attacks_find_small_adversarials_and_leave_no_parameter_gradients(trained_cnn, batch16, name):
    x, y = batch16
    model = copy.deepcopy(trained_cnn)
    model.zero_grad(set_to_none=True)
    attack = ATTACKS.create(name, steps=STEPS)
    assert (attack.kind, attack.needs_gradients, attack.threat_model) == ("minimal", True, "linf" if name == "fmn" else "l2")
    adv = attack.minimize(model, x, y, torch.Generator().manual_seed(0))
    assert valid_images(adv, x)
    hit = fooled(model, adv, y)
    assert hit.float().mean() >= 0.8
    assert torch.equal(adv[~hit], x[~hit])
    norm = (Linf if attack.threat_model == "linf" else L2).norm(adv - x)
    assert 0 < norm[hit].median() < BOUND[name]
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", list(BOUND))
def test_a_model_that_cannot_be_fooled_gets_x_back(batch16, name):
    x, y = batch16[0][:4], torch.full((4,), 3)
    adv = ATTACKS.create(name, steps=5).minimize(Constant(label=3).eval(), x, y, torch.Generator())
    assert torch.equal(adv, x)


def test_fmn_median_is_consistent_with_pgd(trained_cnn, batch16):
    """PGD with 1.5x FMN's median L_inf norm as budget must break at least about half the examples;
    FMN's result clipped to its own median breaks about half by construction."""
    x, y = batch16
    fmn = ATTACKS.create("fmn", steps=STEPS)
    adv = fmn.minimize(trained_cnn, x, y, torch.Generator().manual_seed(0))
    median = Linf.norm(adv - x)[fooled(trained_cnn, adv, y)].median().item()
    eps = 1.5 * median
    pgd = ATTACKS.create("pgd", steps=10, rel_stepsize=0.25).perturb(trained_cnn, x, y, eps, torch.Generator().manual_seed(0))
    assert fooled(trained_cnn, pgd, y).float().mean() >= 0.45
    clipped = fmn.perturb(trained_cnn, x, y, median, torch.Generator().manual_seed(0))
    assert 0.4 <= fooled(trained_cnn, clipped, y).float().mean() <= 0.7
