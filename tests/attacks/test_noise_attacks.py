import math

import pytest
import torch
from attack_helpers import Forbidden, MeanThreshold, valid_images

import bench.attacks.noise  # noqa: F401  (registers the noise attacks)
from bench.errors import ConfigError
from bench.catalog import ATTACKS

NOISE = ["gaussian_noise", "uniform_noise", "salt_pepper"]


def grey(n: int = 64, channels: int = 1, size: int = 28) -> torch.Tensor:
    return torch.full((n, channels, size, size), 0.5)


@pytest.mark.parametrize("name", NOISE)
def test_noise_is_valid_zero_level_is_identity_and_the_model_is_not_queried(name):
    attack = ATTACKS.create(name)
    assert (attack.kind, attack.threat_model, attack.needs_gradients) == ("budget", name, False)
    x = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(8, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    adv = attack.perturb(Forbidden(), x, y, 0.3, g)  # repeats = 1: one draw, no query
    assert valid_images(adv, x) and not torch.equal(adv, x)
    assert torch.equal(attack.perturb(Forbidden(), x, y, 0.0, g), x)


@pytest.mark.parametrize("name", NOISE)
def test_noise_is_reproducible_from_the_generator(name):
    attack, x, y = ATTACKS.create(name), grey(4), torch.zeros(4, dtype=torch.long)
    a = attack.perturb(Forbidden(), x, y, 0.2, torch.Generator().manual_seed(5))
    b = attack.perturb(Forbidden(), x, y, 0.2, torch.Generator().manual_seed(5))
    c = attack.perturb(Forbidden(), x, y, 0.2, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gaussian_noise_has_the_level_as_std():
    x = grey()  # 0.5 +- 10 sigma stays inside [0, 1]: clipping never happens
    delta = ATTACKS.create("gaussian_noise").perturb(Forbidden(), x, torch.zeros(64, dtype=torch.long), 0.05,
                                                     torch.Generator().manual_seed(0)) - x
    assert abs(delta.std().item() - 0.05) < 0.05 * 0.02
    assert abs(delta.mean().item()) < 0.001


def test_uniform_noise_spans_minus_level_to_level():
    x, eps = grey(), 0.2
    delta = ATTACKS.create("uniform_noise").perturb(Forbidden(), x, torch.zeros(64, dtype=torch.long), eps,
                                                    torch.Generator().manual_seed(0)) - x
    assert delta.abs().max() <= eps + 1e-6 and delta.abs().max() > 0.99 * eps
    assert abs(delta.std().item() - eps / math.sqrt(3)) < 0.02 * eps / math.sqrt(3)


def test_salt_and_pepper_hits_the_level_fraction_of_locations_on_all_channels():
    x, p = grey(64, channels=3, size=16), 0.2
    adv = ATTACKS.create("salt_pepper").perturb(Forbidden(), x, torch.zeros(64, dtype=torch.long), p,
                                                torch.Generator().manual_seed(0))
    changed = adv != x
    assert torch.equal(changed.all(1), changed.any(1))  # a location is hit on every channel or none
    hit = changed.all(1)
    assert abs(hit.float().mean().item() - p) < 0.01  # 16384 locations: std of the fraction is 0.003
    values = adv.permute(0, 2, 3, 1)[hit]  # (hits, channels)
    assert ((values == 0) | (values == 1)).all() and (values == values[:, :1]).all()  # black or white pixels
    assert abs((values[:, 0] == 1).float().mean().item() - 0.5) < 0.03


def test_salt_and_pepper_level_one_replaces_every_pixel():
    x = grey(4, channels=3)
    adv = ATTACKS.create("salt_pepper").perturb(Forbidden(), x, torch.zeros(4, dtype=torch.long), 1.0,
                                                torch.Generator().manual_seed(0))
    assert ((adv == 0) | (adv == 1)).all()


@pytest.mark.parametrize("name", NOISE)
def test_repeats_returns_each_examples_first_fooling_draw_else_its_last(name):
    """A model fooled when the noise brightens the image: each draw fools about half the examples."""
    model, repeats, eps = MeanThreshold(0.5).eval(), 4, 0.3
    x, y = grey(64, size=8), torch.zeros(64, dtype=torch.long)  # mean 0.5 -> exactly on the threshold
    noise = ATTACKS.create(name)
    adv = ATTACKS.create(name, repeats=repeats).perturb(model, x, y, eps, torch.Generator().manual_seed(0))
    replay = torch.Generator().manual_seed(0)
    draws = [noise.perturb(Forbidden(), x, y, eps, replay) for _ in range(repeats)]
    fools = torch.stack([model(d).argmax(1) != y for d in draws])  # (repeats, n)
    assert 0.25 < fools[0].float().mean() < 0.75  # one draw alone fools about half
    first = torch.where(fools.any(0), fools.float().argmax(0), torch.full((64,), repeats - 1))
    expected = torch.stack(draws)[first, torch.arange(64)]
    assert torch.equal(adv, expected)
    assert (model(adv).argmax(1) != y).float().mean() > fools[0].float().mean() + 0.15  # the worst case of 4 draws


def test_noise_levels_outside_the_accepted_range_are_rejected():
    x, y, g = grey(2), torch.zeros(2, dtype=torch.long), torch.Generator()
    with pytest.raises(ConfigError, match="eps = -0.1.*>= 0"):
        ATTACKS.create("gaussian_noise").perturb(Forbidden(), x, y, -0.1, g)
    with pytest.raises(ConfigError, match="eps = 1.5.*<= 1"):
        ATTACKS.create("salt_pepper").perturb(Forbidden(), x, y, 1.5, g)
    with pytest.raises(ConfigError, match="eps = nan"):
        ATTACKS.create("uniform_noise").perturb(Forbidden(), x, y, float("nan"), g)
