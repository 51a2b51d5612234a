"""Gradient-based minimal-norm attacks (foolbox): FMN (L_inf, L_2) and DDN (L_2).

One run gives each example's smallest adversarial perturbation, the metric Li et al. (2019)
report as the median minimal perturbation, and with it the whole accuracy-vs-eps curve.
These attacks draw no random numbers (they start from x), so given a batch they are
deterministic up to non-deterministic GPU kernels; ``generator`` is not used. Examples the
attack does not break come back unchanged. Parameters are frozen during the run so that
foolbox's ``loss.backward()`` leaves no ``.grad`` on the model.
"""

from __future__ import annotations

from typing import Any

from bench.attacks.base import MinimalAttack
from bench.attacks.decision import import_foolbox, input_gradients_only, keep_adversarial
from bench.attacks.params import float_param, int_param
from bench.registry import ATTACKS


class FoolboxMinimal(MinimalAttack):
    """A foolbox minimization attack named by ``params['algorithm']`` with its keyword parameters."""

    def minimize(self, model, x, y, generator):
        fb = import_foolbox()
        options = {k: v for k, v in self.params.items() if k != "algorithm"}
        attack = getattr(fb.attacks, self.params["algorithm"])(**options)
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        with input_gradients_only(model):
            found, _, _ = attack(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
        return keep_adversarial(model, x, y, found.detach())


def _fmn_params(name: str, algorithm: str, steps: int, max_stepsize: float, gamma: float) -> dict[str, Any]:
    return {"algorithm": algorithm, "steps": int_param(name, "steps", steps),
            "max_stepsize": float_param(name, "max_stepsize", max_stepsize),
            "gamma": float_param(name, "gamma", gamma, high=1.0, high_inclusive=False)}


@ATTACKS.register("fmn", description="fast minimum-norm attack, L_inf minimal, gradient-based (Pintor et al. 2021; foolbox), 100 steps")
def fmn(steps: int = 100, max_stepsize: float = 1.0, gamma: float = 0.05) -> MinimalAttack:
    """Foolbox's defaults; ``gamma`` is the initial relative change of the norm bound per step."""
    return FoolboxMinimal("fmn", "linf", _fmn_params("fmn", "LInfFMNAttack", steps, max_stepsize, gamma))


@ATTACKS.register("fmn_l2", description="fast minimum-norm attack, L_2 minimal, gradient-based (Pintor et al. 2021; foolbox), 100 steps")
def fmn_l2(steps: int = 100, max_stepsize: float = 1.0, gamma: float = 0.05) -> MinimalAttack:
    """As ``fmn`` for the L_2 norm."""
    return FoolboxMinimal("fmn_l2", "l2", _fmn_params("fmn_l2", "L2FMNAttack", steps, max_stepsize, gamma))


@ATTACKS.register("ddn", description="decoupled direction and norm attack, L_2 minimal, gradient-based (Rony et al. 2019; foolbox), 100 steps")
def ddn(steps: int = 100, init_epsilon: float = 1.0, gamma: float = 0.05) -> MinimalAttack:
    """Foolbox's defaults."""
    return FoolboxMinimal("ddn", "l2", {"algorithm": "DDNAttack", "steps": int_param("ddn", "steps", steps),
                                        "init_epsilon": float_param("ddn", "init_epsilon", init_epsilon),
                                        "gamma": float_param("ddn", "gamma", gamma, high=1.0, high_inclusive=False)})
