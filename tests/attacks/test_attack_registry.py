"""Every attack of the five modules: registered, described, valid output, clear parameter errors."""

import re

import pytest
import torch
from attack_helpers import valid_images

import bench.attacks.autoattack  # noqa: F401
import bench.attacks.decision  # noqa: F401
import bench.attacks.minimal  # noqa: F401
import bench.attacks.noise  # noqa: F401
import bench.attacks.transfer  # noqa: F401
from bench.attacks.threat import THREAT_MODELS
from bench.errors import ConfigError
from bench.catalog import ATTACKS

# name -> (cheap parameters, threat model, kind)
CHEAP = {
    "boundary": ({"steps": 5}, "l2", "minimal"),
    "boundary_ref": ({}, "l2", "minimal"),
    "hsj": ({"steps": 1, "initial_gradient_eval_steps": 10, "max_gradient_eval_steps": 10}, "l2", "minimal"),
    "hsj_linf": ({"steps": 1, "initial_gradient_eval_steps": 10, "max_gradient_eval_steps": 10}, "linf", "minimal"),
    "fmn": ({"steps": 5}, "linf", "minimal"),
    "fmn_l2": ({"steps": 5}, "l2", "minimal"),
    "ddn": ({"steps": 5}, "l2", "minimal"),
    "gaussian_noise": ({"repeats": 2}, "gaussian_noise", "budget"),
    "uniform_noise": ({"repeats": 2}, "uniform_noise", "budget"),
    "salt_pepper": ({"repeats": 2}, "salt_pepper", "budget"),
    "transfer_pgd": ({"steps": 2}, "linf", "budget"),
    "transfer_fgsm": ({}, "linf", "budget"),
    "autoattack": ({"version": "custom", "attacks": ["apgd-ce"]}, "linf", "budget"),
    "autoattack_l2": ({"version": "custom", "attacks": ["apgd-ce"]}, "l2", "budget"),
}
EPS = {"linf": 0.1, "l2": 1.0, "gaussian_noise": 0.2, "uniform_noise": 0.2, "salt_pepper": 0.1}


def test_the_five_modules_register_these_attacks_with_descriptions():
    modules = {f"bench.attacks.{m}" for m in ("decision", "minimal", "noise", "transfer", "autoattack")}
    ours = {e.name: e for e in ATTACKS if e.module in modules}
    assert set(ours) == set(CHEAP)
    for entry in ours.values():
        assert entry.description and "\n" not in entry.description


# AutoAttack L_2 runs the same code as L_inf (test_autopgd matches it example by example): slow only
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "autoattack_l2" else n for n in CHEAP])
def test_every_attack_returns_valid_images(trained_cnn, batch16, name):
    params, threat_model, kind = CHEAP[name]
    attack = ATTACKS.create(name, **params)
    assert (attack.threat_model, attack.kind) == (threat_model, kind)
    assert attack.describe()["params"] == {**attack.params, **attack.controls()}  # parameters and controls of the run
    x, y = batch16[0][:8], batch16[1][:8]
    if attack.needs_surrogate:
        attack.surrogate = trained_cnn
    g = torch.Generator().manual_seed(0)
    if kind == "minimal":
        adv = attack.minimize(trained_cnn, x, y, g)
    else:
        eps = EPS[threat_model]
        adv = attack.perturb(trained_cnn, x, y, eps, g)
        if THREAT_MODELS[threat_model].bounded:
            assert (THREAT_MODELS[threat_model].norm(adv - x) <= eps * (1 + 1e-5) + 1e-6).all()
    assert valid_images(adv, x)
    assert not torch.equal(adv, x)  # each attack changed something on these 8 digits


BAD = [
    ("boundary", {"steps": 0}, "'steps' = 0", "integer >= 1"),
    ("boundary", {"steps": 100.0}, "'steps' = 100.0", "integer >= 1"),
    ("boundary", {"steps": True}, "'steps' = True", "integer >= 1"),
    ("boundary", {"spherical_step": -0.01}, "'spherical_step' = -0.01", r"finite number in \(0, inf\)"),
    ("boundary", {"source_step": float("nan")}, "'source_step' = nan", "finite number"),
    ("hsj", {"gamma": 0}, "'gamma' = 0", r"\(0, inf\)"),
    ("hsj_linf", {"initial_gradient_eval_steps": 200, "max_gradient_eval_steps": 100},
     "'max_gradient_eval_steps' = 100", r"integer >= initial_gradient_eval_steps \(200\)"),
    ("fmn", {"gamma": 1.0}, "'gamma' = 1.0", r"\(0, 1\)"),
    ("fmn_l2", {"max_stepsize": "1"}, "'max_stepsize' = '1'", "finite number"),
    ("ddn", {"init_epsilon": 0.0}, "'init_epsilon' = 0.0", "finite number"),
    ("gaussian_noise", {"repeats": 0}, "'repeats' = 0", "integer >= 1"),
    ("salt_pepper", {"repeats": 2.5}, "'repeats' = 2.5", "integer >= 1"),
    ("transfer_pgd", {"rel_stepsize": 0}, "'rel_stepsize' = 0", "finite number"),
    ("transfer_pgd", {"random_start": "yes"}, "'random_start' = 'yes'", "true or false"),
    ("transfer_pgd", {"restarts": -1}, "'restarts' = -1", "integer >= 1"),
    ("autoattack", {"version": "fast"}, "'version' = 'fast'", "'standard', 'plus', 'rand', 'custom'"),
    ("autoattack", {"attacks": ["apgd-ce"]}, "'attacks' = \\['apgd-ce'\\]", "null unless version is 'custom'"),
    ("autoattack_l2", {"version": "custom"}, "'attacks' = None", "non-empty list of apgd-ce"),
    ("autoattack", {"version": "custom", "attacks": ["pgd"]}, "'attacks' = \\['pgd'\\]", "non-empty list"),
    ("autoattack", {"n_examples": 0}, "'n_examples' = 0", "integer >= 1"),
    ("autoattack_l2", {"batch_size": None}, "'batch_size' = None", "integer >= 1"),
]


@pytest.mark.parametrize("name, params, bad, accepted", BAD, ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BAD])
def test_bad_parameters_raise_a_config_error_naming_parameter_value_and_what_is_accepted(name, params, bad, accepted):
    with pytest.raises(ConfigError) as info:
        ATTACKS.create(name, **params)
    message = str(info.value)
    assert repr(name) in message
    assert re.search(bad, message), message
    assert re.search(accepted, message), message
