import warnings

import pytest
import torch
from attack_helpers import Constant, MeanThreshold, fooled, valid_images

import bench.attacks.decision  # noqa: F401  (registers the decision-based attacks)
from bench.attacks.threat import L2, Linf
from bench.catalog import ATTACKS

# Few steps and queries: these tests check the plumbing, not the attacks' strength.
FAST = {
    "boundary": {"steps": 20},
    "boundary_ref": {},
    "hsj": {"steps": 2, "initial_gradient_eval_steps": 20, "max_gradient_eval_steps": 40},
    "hsj_linf": {"steps": 2, "initial_gradient_eval_steps": 20, "max_gradient_eval_steps": 40},
}
# Loose bounds on the median perturbation of the digits (measured about 5.2, 5.2, 3.1 and 0.14
# with more steps; a blended-noise start without any attack step is about 8 in L_2, 0.5 in L_inf).
BOUND = {"boundary": 7.5, "boundary_ref": 7.5, "hsj": 6.0, "hsj_linf": 0.4}


@pytest.fixture(scope="module")
def noise_startable(trained_cnn, batch16):
    """batch16 without the digits of the class that uniform noise is classified as (8, for this model).

    Foolbox's initialisation draws up to 1000 noise images until one is misclassified: for those
    digits none ever is, and they would cost nearly all of a test's forward passes, only to come
    back unchanged (which the examples-without-a-starting-point test checks).
    """
    x, y = batch16
    with torch.no_grad():
        noise = torch.rand(256, *x.shape[1:], generator=torch.Generator().manual_seed(0))
        noise_class = trained_cnn(noise).argmax(1).mode().values
    keep = y != noise_class
    assert keep.sum() >= len(y) - 3
    return x[keep], y[keep]


@pytest.mark.parametrize("name", list(FAST))
def test_decision_attacks_find_small_adversarials_on_the_trained_cnn(trained_cnn, noise_startable, name):
    x, y = noise_startable
    attack = ATTACKS.create(name, **FAST[name])
    assert (attack.kind, attack.needs_gradients) == ("minimal", False)
    assert attack.threat_model == ("linf" if name == "hsj_linf" else "l2")
    adv = attack.minimize(trained_cnn, x, y, torch.Generator().manual_seed(0))
    assert valid_images(adv, x)
    hit = fooled(trained_cnn, adv, y)
    assert hit.float().mean() >= 0.8
    assert torch.equal(adv[~hit], x[~hit])
    norm = (Linf if attack.threat_model == "linf" else L2).norm(adv - x)
    assert norm[hit].median() < BOUND[name]


@pytest.mark.parametrize("name", ["boundary", "hsj", "hsj_linf"])
def test_a_model_that_cannot_be_fooled_gets_x_back_instead_of_an_error(batch16, name):
    fb = bench.attacks.decision.import_foolbox()
    x, y = batch16[0][:4], torch.full((4,), 3)
    model = Constant(label=3).eval()
    with pytest.raises(ValueError, match="init_attack failed"), pytest.warns(UserWarning, match="failed to draw"):
        fb.attacks.BoundaryAttack(steps=1)(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=None)  # foolbox alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the failure is reported by returning x, not by a warning
        adv = ATTACKS.create(name, **FAST[name]).minimize(model, x, y, torch.Generator().manual_seed(0))
    assert torch.equal(adv, x)


@pytest.mark.parametrize("name", ["boundary", "hsj"])
def test_examples_without_a_starting_point_come_back_unchanged_while_the_others_are_attacked(name):
    """Dark images (class 0) have adversarial noise (mean 0.5 -> class 1); bright ones (class 1) do not."""
    g = torch.Generator().manual_seed(0)
    dark = 0.1 + 0.05 * torch.rand(4, 1, 8, 8, generator=g)
    bright = 0.6 + 0.05 * torch.rand(4, 1, 8, 8, generator=g)
    x, y = torch.cat([dark, bright]), torch.tensor([0] * 4 + [1] * 4)
    model = MeanThreshold(0.3).eval()
    adv = ATTACKS.create(name, **FAST[name]).minimize(model, x, y, torch.Generator().manual_seed(0))
    assert valid_images(adv, x)
    assert fooled(model, adv[:4], y[:4]).all()
    assert torch.equal(adv[4:], x[4:])
    # the minimal L_2 change that lifts a dark image's mean above 0.3 is a uniform shift of about 0.175
    assert (L2.norm(adv[:4] - x[:4]) < 6.0).all()


def test_already_misclassified_examples_are_their_own_minimal_adversarial():
    """Foolbox would divide by a zero distance for them; the attack must skip them."""
    model = MeanThreshold(0.3).eval()
    x = torch.full((3, 1, 8, 8), 0.1)
    y = torch.tensor([0, 1, 0])  # the second one is misclassified already
    adv = ATTACKS.create("boundary", steps=5).minimize(model, x, y, torch.Generator().manual_seed(0))
    assert torch.equal(adv[1], x[1]) and torch.isfinite(adv).all() and fooled(model, adv, y).all()


def test_results_that_are_not_valid_adversarials_are_replaced_by_x():
    """What foolbox returns is not trusted: non-finite or non-fooling images become failures (x)."""
    model = MeanThreshold(0.3).eval()
    x, y = torch.full((4, 1, 4, 4), 0.1), torch.zeros(4, dtype=torch.long)
    candidates = torch.stack([torch.full((1, 4, 4), 0.5), torch.full((1, 4, 4), 0.2),
                              torch.full((1, 4, 4), float("nan")), torch.full((1, 4, 4), 1.5)])
    kept = bench.attacks.decision.keep_adversarial(model, x, y, candidates)
    assert torch.equal(kept[0], candidates[0])  # fools: kept
    assert torch.equal(kept[1], x[1]) and torch.equal(kept[2], x[2])  # does not fool / not finite
    assert torch.equal(kept[3], torch.ones(1, 4, 4))  # clipped into [0, 1], still fools


def test_decision_attacks_are_reproducible_and_leave_the_global_rng_alone(trained_cnn, batch16):
    x, y = batch16[0][:6], batch16[1][:6]
    attack = ATTACKS.create("boundary", steps=10)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = attack.minimize(trained_cnn, x, y, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)
    b = attack.minimize(trained_cnn, x, y, torch.Generator().manual_seed(7))
    c = attack.minimize(trained_cnn, x, y, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_boundary_ref_is_the_fixed_50_step_reference():
    attack = ATTACKS.create("boundary_ref")
    assert attack.params == {"steps": 50, "spherical_step": 0.01, "source_step": 0.01} and attack.n_examples is None
    assert ATTACKS.create("boundary_ref", n_examples=1000).n_examples == 1000
    assert ATTACKS.create("boundary_ref", n_examples=1000).describe()["params"]["n_examples"] == 1000  # as records show it
    assert "far too weak" in ATTACKS.get("boundary_ref").description
    with pytest.raises(TypeError):  # the runner reports this as a ConfigError naming the parameter
        ATTACKS.create("boundary_ref", steps=5000)

