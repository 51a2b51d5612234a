"""The pipeline checks against each way of masking gradients (masking_plugins.py), on the trained CNN:
every masking pipeline is flagged by at least one check, the honest model by none."""

import pytest
import torch

from bench.attacks.gradient import PGD
from bench.evaluation.model_checks import gradient_health, loss_increases_along_path, model_checks, unbounded_attack_succeeds
from masking_plugins import Wrapped

KINDS = ["zero", "shattered", "saturated", "nondiff"]


@pytest.fixture(scope="module")
def batch(eval_batch):
    x, y = eval_batch
    return x[:64], y[:64]


def test_honest_model_passes_every_pipeline_check(trained_cnn, batch):
    x, y = batch
    found = model_checks(trained_cnn, x, y, 10, 64, 0, eps=0.15)
    assert [c["name"] for c in found] == ["gradients_informative", "repeated_passes_agree", "loss_increases_along_path",
                                          "unbounded_attack_succeeds"]
    assert all(c["status"] == "pass" for c in found), found


@pytest.mark.parametrize("kind,expected", [
    ("zero", {"gradients_informative", "loss_increases_along_path"}),
    ("shattered", {"loss_increases_along_path", "unbounded_attack_succeeds"}),
    ("saturated", {"gradients_informative"}),
    ("nondiff", {"gradients_informative", "loss_increases_along_path", "unbounded_attack_succeeds"}),
])
def test_each_masking_pipeline_is_flagged(trained_cnn, batch, kind, expected):
    x, y = batch
    masked = Wrapped(trained_cnn, kind).eval()
    with torch.no_grad():
        assert (masked(x).argmax(1) == trained_cnn(x).argmax(1)).float().mean() >= 0.9  # predictions (almost) unchanged
    flagged = {c["name"] for c in model_checks(masked, x, y, 10, 64, 0, eps=0.15) if c["status"] == "flag"}
    assert expected <= flagged


def test_a_chance_level_unbounded_result_does_not_pass(trained_cnn, batch):
    """Random images are right one time in ten: chance accuracy is what an attack that does nothing gets."""
    x, y = batch
    masked = Wrapped(trained_cnn, "nondiff").eval()
    c = unbounded_attack_succeeds(masked, x, y, 10, 64, 0)
    assert c["status"] == "flag" and c["limit"] == 0.02 and c["accuracy"] > c["limit"]
    assert unbounded_attack_succeeds(trained_cnn, x, y, 10, 64, 0)["accuracy"] == 0.0


def test_gradient_check_survives_a_pipeline_without_gradient_path(trained_cnn, batch):
    x, y = batch
    c = gradient_health(Wrapped(trained_cnn, "nondiff"), x, y, 64)
    assert c["status"] == "flag" and c["zero_gradient_fraction"] == 1.0


def test_loss_path_check_reports_its_figures(trained_cnn, batch):
    x, y = batch
    c = loss_increases_along_path(trained_cnn, x, y, 64, 0, 0.15)
    assert c["fraction"] >= 0.8 and c["median_gradient_gain"] > c["median_random_gain"] and c["n_examples"] > 50


def test_margin_loss_pgd_breaks_the_saturated_softmax_that_cross_entropy_cannot(trained_cnn, batch):
    x, y = batch
    masked = Wrapped(trained_cnn, "saturated").eval()

    def robust(loss):
        attack = PGD("pgd", "linf", {"steps": 20, "rel_stepsize": 0.1, "restarts": 1, "loss": loss})
        adv = attack.perturb(masked, x, y, 0.2, torch.Generator().manual_seed(0))
        with torch.no_grad():
            return (masked(adv).argmax(1) == y).float().mean().item()

    assert robust("margin") < robust("ce") - 0.2
