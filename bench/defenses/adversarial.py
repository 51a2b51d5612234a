"""``adv_train``: PGD adversarial training (Madry et al. 2018), the robust reference.

Every training step crafts PGD examples against the current model with the harness's own
attack (``bench.attacks.gradient.PGD``) and minimises the cross-entropy on them.

- Crafting runs in eval mode, then the model's mode is restored: in train mode each of the
  attack's ``steps`` forward passes would pull the BatchNorm running statistics towards the
  attacked batch, and the perturbation would be fitted to batch statistics the deployed
  model never uses. (Early in training the running statistics are still poor, so the
  attack then targets a slightly different function than the one trained.)
- The random start draws from the global torch RNG (``generator=None``), which the training
  loop seeds per epoch, so a resumed run replays exactly.
- As in Madry et al., crafting returns the last PGD iterate (``early_stop=False``), which
  maximises the loss, not the first fooling iterate the evaluation keeps.
- ``mix_clean``: the fraction of each (shuffled) batch, its first examples, kept clean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.gradient import PGD
from bench.defenses.base import Defense, Objective, TrainingContext
from bench.defenses.transforms import check_bool, check_choice, check_int, check_number, check_positive
from bench.registry import DEFENSES

DEFAULT_EPS = {"linf": 0.3, "l2": 2.0}  # MNIST-like scales; protocols set their own


class PGDTraining(Objective):
    """Cross-entropy on PGD examples crafted against the model in eval mode."""

    def __init__(self, attack: PGD, eps: float, mix_clean: float = 0.0):
        super().__init__()
        self.attack, self.eps, self.mix_clean = attack, eps, mix_clean

    def craft(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD examples within ``eps`` of ``x``; BatchNorm statistics untouched, the model's mode restored."""
        was_training = model.training
        model.eval()
        try:
            return self.attack.perturb(model, x, y, self.eps, None).detach()
        finally:
            model.train(was_training)

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        n_clean = int(round(self.mix_clean * len(x)))
        inputs = torch.cat([x[:n_clean], self.craft(model, x[n_clean:], y[n_clean:])])
        logits = model(inputs)
        loss = F.cross_entropy(logits.float(), y)
        adv_correct = logits[n_clean:].argmax(1) == y[n_clean:]
        adv_acc = adv_correct.float().mean().item() if len(adv_correct) else math.nan
        return loss, logits, {"adv_acc": adv_acc}


class AdversarialTraining(Defense):
    """Trains with :class:`PGDTraining`; the deployed pipeline is the trained model itself."""

    def objective(self, ctx: TrainingContext) -> Objective:
        p = self.params
        attack = PGD("pgd" if p["threat_model"] == "linf" else "pgd_l2", p["threat_model"],
                     {"steps": p["steps"], "rel_stepsize": p["rel_stepsize"], "restarts": 1, "random_start": p["random_start"],
                      "early_stop": False})
        return PGDTraining(attack, p["eps"], p["mix_clean"])


@DEFENSES.register("adv_train", description="PGD adversarial training (Madry et al. 2018), crafted in eval mode: the robust reference")
def adv_train(eps: float | None = None, steps: int = 10, rel_stepsize: float | None = None, threat_model: str = "linf",
              mix_clean: float = 0.0, random_start: bool = True) -> Defense:
    """``eps`` defaults to 0.3 (linf) or 2.0 (l2), ``rel_stepsize`` to 2.5 / steps (Madry et al.)."""
    name = "adv_train"
    check_choice(name, "threat_model", threat_model, tuple(DEFAULT_EPS))
    steps = check_int(name, "steps", steps, 1, 1000)
    params = {
        "eps": DEFAULT_EPS[threat_model] if eps is None else check_positive(name, "eps", eps),
        "steps": steps,
        "rel_stepsize": 2.5 / steps if rel_stepsize is None else check_number(name, "rel_stepsize", rel_stepsize, 0.0, 2.0, low_open=True),
        "threat_model": threat_model,
        "mix_clean": check_number(name, "mix_clean", mix_clean, 0.0, 0.99),
        "random_start": check_bool(name, "random_start", random_start),
    }
    return AdversarialTraining(name, params)
