"""AutoAttack's components as attacks of their own (Croce & Hein 2020; ``pyautoattack``).

* ``apgd_ce``: APGD on the cross-entropy loss (step size halved when progress stalls, momentum,
  restarts from the best point);
* ``apgd_t``: APGD on the targeted DLR loss, once per target class among the ``n_target_classes``
  most likely wrong ones; the DLR loss is invariant to shifting and scaling the logits, so a
  saturated softmax does not hide its gradient;
* ``square``: the Square attack, score-based and gradient-free (random square-shaped updates
  accepted when they lower the margin of the true class): it sees the deployed pipeline's
  outputs only, so masked gradients do not blind it.

These are the library's own implementations, driven exactly as ``AutoAttack`` drives them
(``tests/attacks/test_autopgd.py`` checks that each gives, example by example, what
``AutoAttack(version="custom", attacks=[...])`` gives with the same seed). Each call seeds the
library from a value drawn with the harness's generator inside ``fork_rng`` (see
``bench.attacks.decision``). ``n_examples`` restricts the attack to the first examples of the
evaluation set (the records say so), for the expensive ones.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from bench.attacks.base import Access, Attack
from bench.attacks.decision import drawn_seed, input_gradients_only, seeded_global_rng
from bench.attacks.params import int_param, optional_count
from bench.attacks.precision import fast_view
from bench.errors import ConfigError
from bench.registry import ATTACKS

NORMS = {"linf": "Linf", "l2": "L2"}


def _differentiable(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether the model's output depends differentiably on its input (the library would crash otherwise)."""
    with torch.enable_grad(), input_gradients_only(model):
        return model(x.detach().clone().requires_grad_(True)).requires_grad


class _Library(Attack):
    """Runs one of pyautoattack's attack classes on the examples the model classifies correctly."""

    @abstractmethod
    def build(self, model: nn.Module, eps: float, seed: int, device: torch.device) -> Any:
        """The library's attack object for one call."""

    def perturb(self, model, x, y, eps, generator):
        seed = drawn_seed(generator)  # one draw per call whatever eps: the generator advances alike
        if eps == 0 or len(x) == 0:
            return x
        if self.needs_gradients and not _differentiable(model, x[:1]):
            return x  # nothing flows back to the input: a failed attack (the gradient check flags the pipeline)
        model = fast_view(model)  # bfloat16 where the evaluation asked for it (APGD only)
        adversary = self.build(model, float(eps), seed, x.device)
        with seeded_global_rng(seed, x.device), input_gradients_only(model):
            x_adv = adversary.perturb(x.detach().float(), y)
        return x_adv.detach().to(x.device, x.dtype)


class APGD(_Library):
    # bfloat16 passes: APGD goes on raising the loss after its first success and keeps its last
    # fooling iterate, so a success rarely sits within bfloat16's rounding of the boundary.
    mixed_precision: ClassVar[bool] = True

    def build(self, model, eps, seed, device):
        from pyautoattack.autopgd_base import APGDAttack

        return APGDAttack(model, n_iter=self.params["steps"], norm=NORMS[self.threat_model], n_restarts=self.params["restarts"],
                          eps=eps, seed=seed, loss="ce", eot_iter=1, rho=0.75, device=device)


class APGDTargeted(_Library):
    mixed_precision: ClassVar[bool] = True

    def build(self, model, eps, seed, device):
        from pyautoattack.autopgd_base import APGDAttack_targeted

        # at most every wrong class (as AutoAttack does on datasets with fewer than 10 classes)
        targets = min(self.params["n_target_classes"], self.classes - 1)
        return APGDAttack_targeted(model, n_iter=self.params["steps"], norm=NORMS[self.threat_model],
                                   n_restarts=self.params["restarts"], eps=eps, seed=seed, eot_iter=1, rho=0.75,
                                   n_target_classes=targets, device=device)

    def perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(x) == 0:
            return super().perturb(model, x, y, eps, generator)
        with torch.no_grad():
            self.classes = model(x[:1]).shape[1]
        if self.classes < 4:
            raise ConfigError(f"attack {self.name!r} needs a model with at least 4 classes (the DLR loss divides by the gap "
                              f"between the largest and the 3rd and 4th largest logits); this one has {self.classes}. "
                              "Use apgd_ce or pgd with loss margin")
        return super().perturb(model, x, y, eps, generator)


class Square(_Library):
    access: ClassVar[Access] = Access.QUERY

    def build(self, model, eps, seed, device):
        from pyautoattack.square import SquareAttack

        # as AutoAttack runs it: p_init 0.8, the margin loss, no rescaled schedule
        return SquareAttack(model, norm=NORMS[self.threat_model], n_queries=self.params["n_queries"], eps=eps, p_init=0.8,
                            n_restarts=self.params["restarts"], seed=seed, verbose=False, loss="margin", resc_schedule=False,
                            device=device)

    def perturb(self, model, x, y, eps, generator):
        with torch.no_grad():  # queries only: no graph is ever built
            return super().perturb(model, x, y, eps, generator)


def _apgd(name: str, threat: str, steps: int, restarts: int, n_examples: int | None) -> Attack:
    return APGD(name, threat, {"steps": int_param(name, "steps", steps), "restarts": int_param(name, "restarts", restarts)},
                n_examples=optional_count(name, "n_examples", n_examples))


def _apgd_t(name: str, threat: str, steps: int, restarts: int, n_target_classes: int, n_examples: int | None) -> Attack:
    return APGDTargeted(name, threat, {"steps": int_param(name, "steps", steps), "restarts": int_param(name, "restarts", restarts),
                                       "n_target_classes": int_param(name, "n_target_classes", n_target_classes)},
                        n_examples=optional_count(name, "n_examples", n_examples))


def _square(name: str, threat: str, n_queries: int, restarts: int, n_examples: int | None) -> Attack:
    return Square(name, threat, {"n_queries": int_param(name, "n_queries", n_queries),
                                 "restarts": int_param(name, "restarts", restarts)},
                  n_examples=optional_count(name, "n_examples", n_examples))


@ATTACKS.register("apgd_ce", description="APGD on cross-entropy, L_inf (Croce & Hein 2020; AutoAttack's first attack, pyautoattack)")
def apgd_ce(steps: int = 100, restarts: int = 1, n_examples: int | None = None) -> Attack:
    return _apgd("apgd_ce", "linf", steps, restarts, n_examples)


@ATTACKS.register("apgd_ce_l2", description="APGD on cross-entropy, L_2 (Croce & Hein 2020; pyautoattack)")
def apgd_ce_l2(steps: int = 100, restarts: int = 1, n_examples: int | None = None) -> Attack:
    return _apgd("apgd_ce_l2", "l2", steps, restarts, n_examples)


@ATTACKS.register("apgd_t", description="APGD on the targeted DLR loss, L_inf, one run per likely target class (AutoAttack's second attack)")
def apgd_t(steps: int = 100, restarts: int = 1, n_target_classes: int = 9, n_examples: int | None = None) -> Attack:
    return _apgd_t("apgd_t", "linf", steps, restarts, n_target_classes, n_examples)


@ATTACKS.register("apgd_t_l2", description="APGD on the targeted DLR loss, L_2, one run per likely target class (pyautoattack)")
def apgd_t_l2(steps: int = 100, restarts: int = 1, n_target_classes: int = 9, n_examples: int | None = None) -> Attack:
    return _apgd_t("apgd_t_l2", "l2", steps, restarts, n_target_classes, n_examples)


@ATTACKS.register("square", description="Square attack, L_inf: score-based, gradient-free random search (Andriushchenko et al. 2020)")
def square(n_queries: int = 5000, restarts: int = 1, n_examples: int | None = None) -> Attack:
    return _square("square", "linf", n_queries, restarts, n_examples)


@ATTACKS.register("square_l2", description="Square attack, L_2: score-based, gradient-free random search (Andriushchenko et al. 2020)")
def square_l2(n_queries: int = 5000, restarts: int = 1, n_examples: int | None = None) -> Attack:
    return _square("square_l2", "l2", n_queries, restarts, n_examples)
