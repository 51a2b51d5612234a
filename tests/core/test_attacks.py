import os

import pytest
import torch

from bench.attacks.threat import L2, Linf
from bench.errors import ConfigError
from bench.evaluation import evaluate_attack, predict
from bench.catalog import ATTACKS


@pytest.mark.parametrize("threat", [Linf, L2])
def test_threat_model_projection_and_init_stay_in_the_ball(threat):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28, generator=g)
    for eps in (0.0, 0.1, 2.0):
        d = threat.random_init(x, eps, g)
        assert (threat.norm(d) <= eps + 1e-6).all()
        big = torch.randn(16, 1, 28, 28, generator=g) * 10
        assert (threat.norm(threat.project(big, eps)) <= eps * (1 + 1e-6) + 1e-7).all()


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_l2"])
def test_attacks_return_valid_examples_and_eps_zero_is_identity(trained_cnn, eval_batch, name):
    attack = ATTACKS.create(name, **({} if name == "fgsm" else {"steps": 5}))
    threat = {"linf": Linf, "l2": L2}[attack.threat_model]
    x, y = eval_batch
    g = torch.Generator().manual_seed(0)
    eps = 0.1 if attack.threat_model == "linf" else 1.0
    adv = attack.perturb(trained_cnn, x, y, eps, g)
    assert torch.isfinite(adv).all() and adv.min() >= 0 and adv.max() <= 1
    assert (threat.norm(adv - x) <= eps * (1 + 1e-5) + 1e-6).all()
    assert torch.equal(attack.perturb(trained_cnn, x, y, 0.0, g), x)


@pytest.mark.parametrize("name", ["pgd", "pgd_l2"])
def test_pgd_spends_no_pass_at_eps_zero(trained_cnn, eval_batch, name):
    """The zero ball holds the clean image alone: a 10-run, 100-step attack there would cost as much
    as the hardest eps of the grid and could fool nothing."""
    class Queried(Exception):
        pass

    def refuse(*_):
        raise Queried

    counted = torch.nn.Sequential(trained_cnn)
    counted.register_forward_hook(refuse)
    x, y = eval_batch
    attack = ATTACKS.create(name, steps=100, targets=9, schedule="adaptive")
    adv = attack.perturb(counted, x, y, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(adv, x) and adv is not x
    with pytest.raises(Queried):  # the hook works: at eps > 0 the model is queried (stopped at the first pass)
        attack.perturb(counted, x[:4], y[:4], 0.01 if name == "pgd" else 0.1, torch.Generator().manual_seed(0))


def test_pgd_beats_fgsm_and_accuracy_falls_with_eps(trained_cnn, eval_batch):
    x, y = eval_batch
    grid = [0.0, 0.05, 0.2]
    pgd = evaluate_attack(trained_cnn, ATTACKS.create("pgd", steps=8, rel_stepsize=0.25), x, y, grid, 120, seed=0)
    fgsm = evaluate_attack(trained_cnn, ATTACKS.create("fgsm"), x, y, grid, 120, seed=0)
    assert pgd.clean_accuracy() > 0.9
    p, f = pgd.robust_accuracy(), fgsm.robust_accuracy()
    assert p[0.0] == pgd.clean_accuracy()
    for eps in grid[1:]:
        assert p[eps] <= f[eps]
    assert p[0.2] < 0.2 < p[0.05]
    assert pgd.checks and all(c["status"] == "pass" for c in pgd.checks), pgd.checks


@pytest.mark.slow
def test_pgd_is_at_least_as_strong_as_foolbox(trained_cnn, eval_batch):
    """Cross-check against an independent implementation on the same model and data: without a random
    start the two are the same algorithm and must agree (up to one example: the two compute the loss,
    its gradient and the accuracy with different float operations, which can tip a borderline example,
    and the same count of successes comes out as float32 means that differ in the last bit); with one,
    only the random draws differ."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox as fb

    x, y = eval_batch
    eps = 0.1
    fmodel = fb.PyTorchModel(trained_cnn, bounds=(0, 1))
    for random_start, tolerance in ((False, 1 / len(y)), (True, 0.05)):
        _, _, success = fb.attacks.LinfPGD(steps=10, rel_stepsize=0.25, random_start=random_start)(fmodel, x, y, epsilons=eps)
        theirs = 1 - success.float().mean().item()
        attack = ATTACKS.create("pgd", steps=10, rel_stepsize=0.25, random_start=random_start)
        ours = evaluate_attack(trained_cnn, attack, x, y, [eps], 120, seed=0).robust_accuracy()[eps]
        assert ours <= theirs + tolerance, (random_start, ours, theirs)


def test_invalid_adversarial_examples_are_flagged_and_never_count(trained_cnn, eval_batch):
    from bench.attacks.base import Attack

    class Cheating(Attack):
        def perturb(self, model, x, y, eps, generator):
            return (x + 3 * eps).clamp(0, 1) if eps > 0 else x  # leaves the eps-ball

    x, y = eval_batch
    out = evaluate_attack(trained_cnn, Cheating("cheat", "linf"), x, y, [0.0, 0.2], 120, seed=0)
    flags = {c["name"]: c for c in out.checks}
    assert flags["adversarial_examples_valid"]["status"] == "flag"
    assert flags["adversarial_examples_valid"]["n_invalid"] > 0
    assert out.robust_accuracy()[0.2] == out.clean_accuracy()  # invalid ones count as failed attacks


def test_monotonicity_check_flags_an_attack_weaker_at_larger_eps(trained_cnn, eval_batch):
    from bench.attacks.base import Attack
    from bench.attacks.gradient import PGD

    class Erratic(Attack):
        def perturb(self, model, x, y, eps, generator):
            if eps > 0.15:
                return x  # gives up at large eps
            return PGD("pgd", "linf", {"steps": 5}).perturb(model, x, y, eps, generator)

    x, y = eval_batch
    out = evaluate_attack(trained_cnn, Erratic("erratic", "linf"), x, y, [0.0, 0.1, 0.2], 120, seed=0)
    flags = {c["name"]: c for c in out.checks}
    assert flags["monotone_in_eps"]["status"] == "flag"
    acc = out.robust_accuracy()
    assert acc[0.2] == acc[0.1] < out.clean_accuracy()  # worst case carried over from the smaller eps


def test_predict_runs_in_batches(trained_cnn, eval_batch):
    x, _ = eval_batch
    assert torch.equal(predict(trained_cnn, x, 7), predict(trained_cnn, x, 200))


def test_a_model_that_gets_everything_wrong_is_evaluated_without_attacking(eval_batch):
    class Wrong(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 0] = 1
            return logits + 0 * x.sum()

    def never(*args, **kwargs):
        raise AssertionError("an example that is misclassified when clean was attacked")

    x, y = eval_batch
    keep = y != 0
    for name in ("pgd", "fmn"):
        attack = ATTACKS.create(name, steps=2)
        attack.perturb = attack.minimize = never
        out = evaluate_attack(Wrong(), attack, x[keep], y[keep], [0.0, 0.1], 64, seed=0)
        assert out.clean_accuracy() == 0 and out.robust_accuracy() == {0.0: 0.0, 0.1: 0.0}


def test_pgd_restarts_only_add_successes_and_early_exit_matches_full_batches(trained_cnn, eval_batch):
    x, y = eval_batch
    one = ATTACKS.create("pgd", steps=5, restarts=1).perturb(trained_cnn, x, y, 0.08, torch.Generator().manual_seed(1))
    three = ATTACKS.create("pgd", steps=5, restarts=3).perturb(trained_cnn, x, y, 0.08, torch.Generator().manual_seed(1))
    fooled_one = predict(trained_cnn, one, 120) != y
    fooled_three = predict(trained_cnn, three, 120) != y
    assert (fooled_one & ~fooled_three).sum() == 0 and fooled_three.sum() >= fooled_one.sum()
    # examples are independent in eval mode: attacking a subset gives the same images as attacking the batch
    part = ATTACKS.create("pgd", steps=5, random_start=False).perturb(trained_cnn, x[:30], y[:30], 0.08, torch.Generator())
    whole = ATTACKS.create("pgd", steps=5, random_start=False).perturb(trained_cnn, x, y, 0.08, torch.Generator())
    assert torch.allclose(part, whole[:30], atol=1e-6)


@pytest.mark.slow
def test_survivors_curve_matches_the_independent_worst_case(trained_cnn, eval_batch):
    """Attacking only the survivors of the previous eps gives nearly the same worst-case curve
    (only the random starts differ) and skips the eps = 0 attack and the monotonicity check."""
    x, y = eval_batch
    grid = [0.0, 0.05, 0.1, 0.2]
    attack = ATTACKS.create("pgd", steps=5, rel_stepsize=0.25)
    ind = evaluate_attack(trained_cnn, attack, x, y, grid, 120, seed=0)
    sur = evaluate_attack(trained_cnn, attack, x, y, grid, 120, seed=0, curve="survivors")
    assert sur.robust_accuracy()[0.0] == ind.clean_accuracy()
    for eps in grid[1:]:
        assert abs(sur.robust_accuracy()[eps] - ind.robust_accuracy()[eps]) <= 0.05
    assert "monotone_in_eps" not in {c["name"] for c in sur.checks}
    assert sur.checks and all(c["status"] == "pass" for c in sur.checks), sur.checks


@pytest.mark.slow
def test_descending_curve_matches_the_independent_worst_case_at_a_fraction_of_the_gradients(trained_cnn, eval_batch):
    """Largest eps first, warm-started from the larger eps's adversarial: never weaker than
    attacking every eps afresh (beyond noise; the warm start often finds more, and every
    image is still validated and re-scored), for well under half the gradient evaluations."""
    x, y = eval_batch
    grid = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    attack = ATTACKS.create("pgd", steps=5, rel_stepsize=0.25)
    gradients = []
    hook = trained_cnn.register_forward_hook(lambda m, inp, out: gradients.append(len(inp[0])) if torch.is_grad_enabled() else None)
    try:
        ind = evaluate_attack(trained_cnn, attack, x, y, grid, 120, seed=0)
        ind_cost, gradients[:] = sum(gradients), []
        desc = evaluate_attack(trained_cnn, attack, x, y, grid, 120, seed=0, curve="descending")
        desc_cost = sum(gradients)
    finally:
        hook.remove()
    assert desc.curve == "descending" and ind.curve == "independent"
    assert desc.robust_accuracy()[0.0] == ind.clean_accuracy()
    for eps in grid[1:]:
        assert desc.robust_accuracy()[eps] <= ind.robust_accuracy()[eps] + 0.025
    assert 0 < desc_cost < ind_cost / 2
    assert "monotone_in_eps" not in {c["name"] for c in desc.checks}
    assert desc.checks and all(c["status"] == "pass" for c in desc.checks), desc.checks
    # the ranks respect the nesting of the balls: fooled at eps implies fooled at every larger eps
    fooled = torch.stack([desc.ranks[e] != 1 for e in grid[1:]])
    assert (fooled[:-1] <= fooled[1:]).all()


def test_descending_curve_falls_back_to_survivors_for_attacks_without_warm_start(trained_cnn, eval_batch):
    x, y = eval_batch
    out = evaluate_attack(trained_cnn, ATTACKS.create("fgsm"), x, y, [0.0, 0.1, 0.2], 120, seed=0, curve="descending")
    assert out.curve == "survivors"


def test_pgd_warm_start_keeps_an_adversarial_start_without_stepping(trained_cnn, eval_batch):
    x, y = eval_batch
    adv = ATTACKS.create("pgd", steps=10).perturb(trained_cnn, x, y, 0.2, torch.Generator().manual_seed(0))
    fooled = predict(trained_cnn, adv, 120) != y
    again = ATTACKS.create("pgd", steps=10).perturb(trained_cnn, x[fooled], y[fooled], 0.2, torch.Generator(), start=adv[fooled])
    assert torch.equal(again, adv[fooled])


def test_unknown_curve_mode_is_refused_with_the_accepted_ones(trained_cnn, eval_batch):
    x, y = eval_batch
    with pytest.raises(ConfigError, match="independent, survivors, descending"):
        evaluate_attack(trained_cnn, ATTACKS.create("fgsm"), x, y, [0.1], 120, seed=0, curve="bisect")


@pytest.mark.slow
def test_compiled_attack_target_gives_the_same_curve(trained_cnn, eval_batch):
    """``bench run --compile``: torch.compile changes the speed, not the evaluation (C++ toolchain needed on CPU)."""
    x, y = eval_batch
    attack = ATTACKS.create("pgd", steps=3, random_start=False)
    plain = evaluate_attack(trained_cnn, attack, x, y, [0.0, 0.1], 120, seed=0)
    compiled = evaluate_attack(trained_cnn, attack, x, y, [0.0, 0.1], 120, seed=0, compile=True)
    assert compiled.compiled and not plain.compiled
    assert abs(compiled.robust_accuracy()[0.1] - plain.robust_accuracy()[0.1]) <= 1 / len(y)


def test_pgd_momentum_stays_in_the_ball_and_is_validated(trained_cnn, eval_batch):
    x, y = eval_batch
    heavy = ATTACKS.create("pgd", steps=5, rel_stepsize=0.25, momentum=0.25)
    adv = heavy.perturb(trained_cnn, x[:40], y[:40], 0.1, torch.Generator().manual_seed(0))
    assert float((adv - x[:40]).abs().max()) <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    for bad in (-0.1, 1.0, True):
        with pytest.raises(ConfigError, match="momentum"):
            ATTACKS.create("pgd", momentum=bad)


@pytest.mark.slow
def test_pgd_momentum_does_not_weaken_a_short_attack(trained_cnn, eval_batch):
    x, y = eval_batch
    plain = ATTACKS.create("pgd", steps=10, rel_stepsize=0.25)
    heavy = ATTACKS.create("pgd", steps=10, rel_stepsize=0.25, momentum=0.25)
    grid = [0.0, 0.05, 0.1]
    a = evaluate_attack(trained_cnn, plain, x, y, grid, 120, seed=0).robust_accuracy()
    b = evaluate_attack(trained_cnn, heavy, x, y, grid, 120, seed=0).robust_accuracy()
    assert all(b[e] <= a[e] + 0.025 for e in grid)


def test_adaptive_checkpoints_follow_apgd():
    from bench.attacks.gradient import adaptive_checkpoints

    # Croce & Hein's p_j: 0, 0.22, 0.41, 0.57, 0.7, 0.8, 0.87, 0.93, 0.99 of the iterations
    assert sorted(adaptive_checkpoints(100)) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert all(0 < c < 10 for c in adaptive_checkpoints(10))


def test_pgd_adaptive_run_takes_the_same_steps_as_autoattacks_apgd_ce(trained_cnn, eval_batch, eps=0.15):
    """One untargeted ``adaptive`` run from a given start is APGD-CE: the same step-size halvings,
    returns to the best point and momentum, so the same images survive as under pyautoattack's
    own APGD-CE from that start (ours just stops stepping an image once it is fooled)."""
    from pyautoattack.autopgd_base import APGDAttack

    x, y = eval_batch
    start = (x + (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) - 1) * eps).clamp(0, 1)
    ours = ATTACKS.create("pgd", steps=25, schedule="adaptive", restarts=1, targets=0)
    mine = ours.perturb(trained_cnn, x, y, eps, torch.Generator().manual_seed(1), start=start)
    apgd = APGDAttack(trained_cnn, n_iter=25, norm="Linf", eps=eps, loss="ce", n_restarts=1, seed=0, device="cpu")
    apgd.init_hyperparam(x)
    _, _, _, theirs = apgd.attack_single_run(x, y, x_init=start)
    with torch.no_grad():
        survived_ours, survived_theirs = trained_cnn(mine).argmax(1) == y, trained_cnn(theirs).argmax(1) == y
    assert 0 < int(survived_theirs.sum()) < int((trained_cnn(x).argmax(1) == y).sum())  # a partly robust setting
    assert torch.equal(survived_ours, survived_theirs)


def test_pgd_adaptive_schedule_and_dlr_targets_stay_in_the_ball_and_are_validated(trained_cnn, eval_batch):
    x, y = eval_batch
    adaptive = ATTACKS.create("pgd", steps=5, schedule="adaptive", targets=1, target_loss="dlr")
    adv = adaptive.perturb(trained_cnn, x[:40], y[:40], 0.1, torch.Generator().manual_seed(0))
    assert float((adv - x[:40]).abs().max()) <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with pytest.raises(ConfigError, match="target_loss"):
        ATTACKS.create("pgd", target_loss="ce")


@pytest.mark.slow
def test_pgd_adaptive_schedule_with_dlr_targets_is_as_strong_as_the_cosine_default(trained_cnn, eval_batch):
    x, y = eval_batch
    grid = [0.0, 0.05, 0.1]
    cosine = ATTACKS.create("pgd", steps=20, rel_stepsize=0.25, schedule="cosine", targets=1)
    adaptive = ATTACKS.create("pgd", steps=20, schedule="adaptive", targets=1, target_loss="dlr")
    a = evaluate_attack(trained_cnn, cosine, x, y, grid, 120, seed=0).robust_accuracy()
    b = evaluate_attack(trained_cnn, adaptive, x, y, grid, 120, seed=0).robust_accuracy()
    assert b[0.0] == a[0.0] and b[0.1] < b[0.0]  # it attacks, and clean points are untouched
    assert all(abs(b[e] - a[e]) <= 0.05 for e in grid)  # as strong as the tuned default, within a few examples


def test_dlr_loss_is_scale_invariant_and_positive_when_fooled():
    from bench.attacks.gradient import attack_loss

    logits = torch.tensor([[3.0, 1.0, 0.5, 0.0, -1.0], [0.0, 2.0, 1.0, 0.5, -1.0]])
    y = torch.tensor([0, 0])
    plain = attack_loss(logits, y, "dlr")
    assert torch.allclose(attack_loss(7 * logits + 3, y, "dlr"), plain)
    assert plain[0] < 0 < plain[1]  # the second example is misclassified
    target = torch.tensor([2, 2])
    assert torch.allclose(attack_loss(5 * logits, y, "dlr", target), attack_loss(logits, y, "dlr", target))
