"""White-box gradient attacks: FGSM and PGD (L_inf and L_2).

PGD keeps, per example, the first iterate that fools the model (checked on the logits the
step computes anyway), so a restart or a late iterate that un-fools an example never hides
a success. For adversarial training, ``early_stop=False`` returns the last iterate instead
(Madry et al.'s loss maximisation). Only the perturbation carries gradients; model
parameters are not differentiated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.base import Attack
from bench.attacks.params import bool_param, float_param, int_param
from bench.attacks.threat import THREAT_MODELS, Linf
from bench.registry import ATTACKS


def _input_gradient(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv)
    loss = F.cross_entropy(logits.float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_adv)
    return grad, logits.detach()


class FGSM(Attack):
    def perturb(self, model, x, y, eps, generator):
        grad, _ = _input_gradient(model, x, y)
        return (x + Linf.project(Linf.step(torch.zeros_like(x), grad, eps), eps)).clamp(0, 1)


class PGD(Attack):
    warm_start = True

    def perturb(self, model, x, y, eps, generator, start=None):
        """``start`` (images within the eps-ball of ``x``) replaces the first restart's random start."""
        threat = THREAT_MODELS[self.threat_model]
        steps, restarts = int(self.params.get("steps", 20)), int(self.params.get("restarts", 1))
        size = float(self.params.get("rel_stepsize", 0.1)) * eps
        random_start = self.params.get("random_start", True)
        if not self.params.get("early_stop", True):
            delta = threat.random_init(x, eps, generator) if random_start else torch.zeros_like(x)
            x_adv = (x + delta).clamp(0, 1)
            for _ in range(steps):
                grad, _ = _input_gradient(model, x_adv, y)
                x_adv = (x + threat.project(threat.step(x_adv - x, grad, size), eps)).clamp(0, 1)
            return x_adv
        # Early stop: only examples not yet fooled are stepped (the model is in eval mode, so
        # each example's trajectory is independent of the others in its batch).
        best = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for restart in range(restarts):
            if restart == 0 and start is not None:
                x_adv = start.clone()
            else:
                delta = threat.random_init(x, eps, generator) if random_start else torch.zeros_like(x)
                x_adv = (x + delta).clamp(0, 1)
            for step in range(steps + 1):  # the last pass only checks the final iterate
                active = (~fooled).nonzero().flatten()
                if not len(active):
                    return best
                if step == steps:
                    with torch.no_grad():
                        newly = active[model(x_adv[active]).argmax(1) != y[active]]
                    best[newly] = x_adv[newly]
                    fooled[newly] = True
                    break
                grad, logits = _input_gradient(model, x_adv[active], y[active])
                newly = logits.argmax(1) != y[active]
                best[active[newly]] = x_adv[active[newly]]
                fooled[active[newly]] = True
                keep = active[~newly]
                x_adv[keep] = (x[keep] + threat.project(threat.step(x_adv[keep] - x[keep], grad[~newly], size), eps)).clamp(0, 1)
        best[~fooled] = x_adv[~fooled]  # not fooled: the last iterate of the last restart
        return best


def _params(name: str, steps: int, rel_stepsize: float, restarts: int, random_start: bool) -> dict:
    return {"steps": int_param(name, "steps", steps), "rel_stepsize": float_param(name, "rel_stepsize", rel_stepsize),
            "restarts": int_param(name, "restarts", restarts), "random_start": bool_param(name, "random_start", random_start)}


@ATTACKS.register("fgsm", description="fast gradient sign method, L_inf, one step of size eps (Goodfellow et al. 2015)")
def fgsm() -> Attack:
    return FGSM("fgsm", "linf")


@ATTACKS.register("pgd", description="projected gradient descent, L_inf, random start, keeps each example's first success (Madry et al. 2018)")
def pgd(steps: int = 20, rel_stepsize: float = 0.1, restarts: int = 1, random_start: bool = True) -> Attack:
    return PGD("pgd", "linf", _params("pgd", steps, rel_stepsize, restarts, random_start))


@ATTACKS.register("pgd_l2", description="projected gradient descent, L_2, random start in the ball, normalised gradient steps")
def pgd_l2(steps: int = 20, rel_stepsize: float = 0.1, restarts: int = 1, random_start: bool = True) -> Attack:
    return PGD("pgd_l2", "l2", _params("pgd_l2", steps, rel_stepsize, restarts, random_start))
