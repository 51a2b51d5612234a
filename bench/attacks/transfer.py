"""Transfer attacks: examples crafted on an undefended surrogate, scored on the target.

Regularised models are attacked with transfer too (Carlini et al. 2019;
docs/methods.md#65-transfer-attacks): a defense that only obfuscates its own gradients does not hide from examples made on a
model of the same architecture trained without it. The pixel_sim reference transfers FGSM
this way. The runner sets ``surrogate`` (in eval mode, on the data's device); the target is
never differentiated, so these attacks work on non-differentiable pipelines as well.
The crafting reuses :class:`bench.attacks.gradient.PGD` and ``FGSM``; PGD returns its last
iterate (``early_stop=False``): an example that barely fools the surrogate transfers poorly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from bench.attacks.base import Access, Attack
from bench.attacks.gradient import FGSM, PGD
from bench.attacks.params import bool_param, float_param, int_param
from bench.errors import ConfigError
from bench.registry import ATTACKS


class Transfer(Attack):
    """Runs the white-box ``crafter`` on the surrogate with this attack's parameters; ``model`` is not queried."""

    access = Access.TRANSFER
    crafter: ClassVar[type[Attack]]
    # the surrogate's gradients run in bfloat16 when the evaluation asks for it (the evaluation
    # wraps the surrogate, not the target, which is only scored)
    mixed_precision: ClassVar[bool] = True

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        if self.surrogate is None:
            raise ConfigError(f"attack {self.name!r} is a transfer attack: the runner must provide a surrogate "
                              "(an undefended model of the same architecture) in attack.surrogate")
        return self.crafter(self.name, self.threat_model, self.params).perturb(self.surrogate.eval(), x, y, eps, generator)


class TransferPGD(Transfer):
    crafter = PGD


class TransferFGSM(Transfer):
    crafter = FGSM


@ATTACKS.register("transfer_pgd", description="PGD L_inf crafted on an undefended surrogate model and transferred to the target")
def transfer_pgd(steps: int = 20, rel_stepsize: float = 0.1, restarts: int = 1, random_start: bool = True) -> Attack:
    name = "transfer_pgd"
    params = {"steps": int_param(name, "steps", steps), "rel_stepsize": float_param(name, "rel_stepsize", rel_stepsize),
              "restarts": int_param(name, "restarts", restarts), "random_start": bool_param(name, "random_start", random_start),
              "early_stop": False}
    return TransferPGD(name, "linf", params)


@ATTACKS.register("transfer_fgsm", description="FGSM crafted on an undefended surrogate model and transferred to the target (the pixel_sim reference's transfer attack)")
def transfer_fgsm() -> Attack:
    return TransferFGSM("transfer_fgsm", "linf")
