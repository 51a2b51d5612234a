import pytest
import torch

from bench.attacks.gradient import PGD
from attack_helpers import Forbidden, valid_images

import bench.attacks.gradient  # noqa: F401  (registers pgd, fgsm)
import bench.attacks.transfer  # noqa: F401  (registers the transfer attacks)
from bench.attacks.threat import Linf
from bench.errors import ConfigError
from bench.catalog import ATTACKS


@pytest.mark.parametrize("name", ["transfer_pgd", "transfer_fgsm"])
def test_transfer_attacks_need_a_surrogate(batch16, name):
    attack = ATTACKS.create(name)
    assert (attack.kind, attack.threat_model, attack.needs_surrogate, attack.needs_gradients) == ("budget", "linf", True, False)
    x, y = batch16
    with pytest.raises(ConfigError, match="runner must provide a surrogate"):
        attack.perturb(Forbidden(), x, y, 0.1, torch.Generator())


@pytest.mark.parametrize("name, white_box", [("transfer_pgd", "pgd"), ("transfer_fgsm", "fgsm")])
def test_transfer_from_the_target_itself_equals_the_white_box_attack(trained_cnn, batch16, name, white_box):
    x, y = batch16
    params = {"steps": 5, "rel_stepsize": 0.25} if white_box == "pgd" else {}
    attack = ATTACKS.create(name, **params)
    attack.surrogate = trained_cnn
    ours = attack.perturb(Forbidden(), x, y, 0.1, torch.Generator().manual_seed(3))  # the target is never queried
    white = ATTACKS.create(white_box, **params)
    if white_box == "pgd":  # transferred PGD returns the last iterate, not the first that fools the surrogate
        white = PGD("pgd", "linf", {**white.params, "early_stop": False})
    reference = white.perturb(trained_cnn, x, y, 0.1, torch.Generator().manual_seed(3))
    assert torch.equal(ours, reference)
    assert valid_images(ours, x) and (Linf.norm(ours - x) <= 0.1 + 1e-6).all()


def test_transfer_uses_the_surrogates_gradients(trained_cnn, batch16):
    """Two surrogates give two different results; with eps 0 the images are unchanged."""
    x, y = batch16
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    torch.nn.init.normal_(other[1].weight, generator=torch.Generator().manual_seed(0))
    attack = ATTACKS.create("transfer_fgsm")
    attack.surrogate = trained_cnn
    from_cnn = attack.perturb(Forbidden(), x, y, 0.1, torch.Generator())
    attack.surrogate = other
    from_linear = attack.perturb(Forbidden(), x, y, 0.1, torch.Generator())
    assert not torch.equal(from_cnn, from_linear)
    assert torch.equal(attack.perturb(Forbidden(), x, y, 0.0, torch.Generator()), x)
