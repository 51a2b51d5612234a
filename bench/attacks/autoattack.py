"""AutoAttack (Croce & Hein 2020) through the ``pyautoattack`` package, as a budget attack.

A thin adapter: ``AutoAttack(model, norm=, eps=, version=, seed=, device=)`` then
``run_standard_evaluation(x, y, batch_size=)``. The standard version runs APGD-CE, APGD-T
(9 target classes, so the model needs >= 10 classes), FAB-T and Square (5000 queries) on
the examples still robust after the previous ones; it is the RobustBench reference
(docs/methods.md#68-autoattack) and expensive on a CPU, hence ``n_examples``: the protocol evaluates
only the first ``n_examples`` of the evaluation set with it (a control of the run, declared on
``Attack``: the evaluation reads it).

Reproducibility: the seed handed to pyautoattack is drawn from the harness's ``generator``;
APGD re-seeds torch's global RNG with it, which happens inside ``fork_rng`` so the caller's
RNG state is untouched. Results then repeat given the generator's state, the batch, the
device and deterministic kernels. pyautoattack's own checks (randomised or dynamic model,
Square more successful than the gradient attacks) still log warnings on the "auto-attack"
logger: they flag gradient masking and are kept.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from bench.attacks.base import Attack
from bench.attacks.decision import drawn_seed, input_gradients_only, seeded_global_rng
from bench.attacks.params import choice_param, int_param, param_error
from bench.registry import ATTACKS

VERSIONS = ("standard", "plus", "rand", "custom")
ATTACK_NAMES = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
NORMS = {"linf": "Linf", "l2": "L2"}


class AutoAttackAdapter(Attack):
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        seed = drawn_seed(generator)  # one draw per call whatever eps: the generator advances alike
        if eps == 0 or len(x) == 0:
            return x
        from pyautoattack import AutoAttack

        adversary = AutoAttack(model, norm=self.params["norm"], eps=float(eps), version=self.params["version"],
                               attacks=self.params["attacks"], seed=seed, device=x.device)
        adversary.verbose = False  # progress lines only; the checks' warnings are logged regardless
        tracer = sys.gettrace()  # its dynamic-defense check calls sys.settrace(None): keep coverage/debuggers alive
        try:
            with seeded_global_rng(seed, x.device), input_gradients_only(model):
                result = adversary.run_standard_evaluation(x, y, batch_size=self.params["batch_size"])
        finally:
            sys.settrace(tracer)
        x_adv = result[0] if isinstance(result, tuple) else result  # 0.2.0 returns (x_adv, y_adv)
        return x_adv.detach().to(x.device, x.dtype)


def _params(name: str, threat_model: str, version: str, attacks: list[str] | None, batch_size: int) -> dict[str, Any]:
    version = choice_param(name, "version", version, VERSIONS)
    if version == "custom":
        if not isinstance(attacks, (list, tuple)) or not attacks or any(a not in ATTACK_NAMES for a in attacks):
            raise param_error(name, "attacks", attacks, "with version 'custom', a non-empty list of " + ", ".join(ATTACK_NAMES))
        attacks = list(attacks)
    elif attacks is not None:
        raise param_error(name, "attacks", attacks, f"null unless version is 'custom' (version {version!r} fixes its attacks)")
    return {"norm": NORMS[threat_model], "version": version, "attacks": attacks, "batch_size": int_param(name, "batch_size", batch_size)}


@ATTACKS.register("autoattack", description="AutoAttack, L_inf (Croce & Hein 2020; pyautoattack): APGD-CE, APGD-T, FAB-T, Square on the first n_examples")
def autoattack(version: str = "standard", attacks: list[str] | None = None, n_examples: int = 200, batch_size: int = 250) -> Attack:
    """``attacks`` chooses the attacks of ``version: custom``; ``n_examples`` is the evaluation subset size."""
    return AutoAttackAdapter("autoattack", "linf", _params("autoattack", "linf", version, attacks, batch_size),
                             n_examples=int_param("autoattack", "n_examples", n_examples))


@ATTACKS.register("autoattack_l2", description="AutoAttack, L_2 (Croce & Hein 2020; pyautoattack): APGD-CE, APGD-T, FAB-T, Square on the first n_examples")
def autoattack_l2(version: str = "standard", attacks: list[str] | None = None, n_examples: int = 200, batch_size: int = 250) -> Attack:
    """As ``autoattack`` for the L_2 norm."""
    return AutoAttackAdapter("autoattack_l2", "l2", _params("autoattack_l2", "l2", version, attacks, batch_size),
                             n_examples=int_param("autoattack_l2", "n_examples", n_examples))
