import pytest
import torch
from attack_helpers import Forbidden, fooled, valid_images

import bench.attacks.autoattack  # noqa: F401  (registers autoattack, autoattack_l2)
import bench.attacks.gradient  # noqa: F401  (registers pgd)
from bench.attacks.threat import Linf
from bench.catalog import ATTACKS

APGD_CE = {"version": "custom", "attacks": ["apgd-ce"]}  # one of standard AutoAttack's four attacks: seconds, not minutes


def pgd5_accuracy(model, x, y, eps: float) -> float:
    adv = ATTACKS.create("pgd", steps=5).perturb(model, x, y, eps, torch.Generator().manual_seed(0))
    return 1 - fooled(model, adv, y).float().mean().item()


def check_autoattack(model, x, y, eps: float, **params) -> torch.Tensor:
    attack = ATTACKS.create("autoattack", **params)
    assert (attack.kind, attack.threat_model, attack.needs_gradients, attack.n_examples) == ("budget", "linf", True, 200)
    torch.manual_seed(123)  # a state no earlier attack call can have left behind
    state = torch.get_rng_state()
    adv = attack.perturb(model, x, y, eps, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)  # APGD re-seeds torch: the caller must not notice
    assert valid_images(adv, x) and (Linf.norm(adv - x) <= eps + 1e-6).all()
    robust = 1 - fooled(model, adv, y).float().mean().item()
    assert robust <= pgd5_accuracy(model, x, y, eps)
    return adv


@pytest.mark.slow
def test_apgd_ce_through_autoattack_is_valid_and_at_least_as_strong_as_pgd5(trained_cnn, batch16):
    x, y = batch16
    adv = check_autoattack(trained_cnn, x, y, 0.1, **APGD_CE)
    again = ATTACKS.create("autoattack", **APGD_CE).perturb(trained_cnn, x, y, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(adv, again)  # seeded from the generator


@pytest.mark.slow
def test_standard_autoattack_is_valid_and_at_least_as_strong_as_pgd5(trained_cnn, batch16):
    """About 300 s on 16 digits on a busy 2-core CPU: FAB-T and Square dominate."""
    check_autoattack(trained_cnn, *batch16, 0.1)


@pytest.mark.parametrize("name", ["autoattack", "autoattack_l2"])
def test_eps_zero_returns_x_without_running(batch16, name):
    x, y = batch16
    attack = ATTACKS.create(name)
    assert attack.params["norm"] == {"autoattack": "Linf", "autoattack_l2": "L2"}[name]
    assert attack.perturb(Forbidden(), x, y, 0.0, torch.Generator()) is x
