"""What an attack is to the harness.

Two kinds of attack, told apart by their type (``kind`` names it in records):

* :class:`Attack` (``AttackKind.BUDGET``): ``perturb(model, x, y, eps, generator)`` returns
  images within the eps-ball of the attack's threat model; it runs once per eps of the grid.
* :class:`MinimalAttack` (``AttackKind.MINIMAL``): ``minimize(model, x, y, generator)``
  returns, per example, the smallest adversarial image it found (or the clean image when it
  found none); one run yields the whole accuracy-vs-eps curve and each example's minimal
  perturbation.

And three kinds of access to the attacked pipeline (``access``):

* ``Access.WHITE_BOX``: differentiates the pipeline's adaptive view (BPDA, EOT);
* ``Access.TRANSFER``: differentiates ``surrogate``, an undefended model of the same
  architecture that the pipeline provides, and only scores the target;
* ``Access.QUERY``: decision-based, score-based and noise attacks query the pipeline only.

An attack never decides the result: the evaluation checks every returned image (finite, in
[0, 1], within eps) and re-scores it on the deployed pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import nn

from bench.attacks.threat import THREAT_MODELS


class AttackKind(str, Enum):
    BUDGET = "budget"  # one run per eps of the grid
    MINIMAL = "minimal"  # one run gives each example's smallest adversarial perturbation


class Access(str, Enum):
    WHITE_BOX = "white_box"  # gradients of the attacked pipeline (its adaptive view)
    TRANSFER = "transfer"  # gradients of an undefended surrogate; the target is only scored
    QUERY = "query"  # outputs of the attacked pipeline only, no gradients


@dataclass
class Attack(ABC):
    """``params``: the attack's own parameters, as its factory declared and validated them. The harness's
    controls of a run are declared fields, not hidden keys: ``n_examples`` (attack only the first n
    evaluation images; None: all), ``eps_grid`` (the eps it runs at, when not its threat model's whole
    grid), ``tolerance`` (a convergence rerun: the accuracy drop that flags its attack) and ``curve``
    (how it walks the grid when not as the protocol says: the convergence rerun attacks every eps afresh)."""

    name: str
    threat_model: str  # a key of THREAT_MODELS: selects the protocol's eps grid
    params: dict[str, Any] = field(default_factory=dict)
    surrogate: nn.Module | None = field(default=None, repr=False, compare=False)
    n_examples: int | None = None
    eps_grid: tuple[float, ...] | None = None
    tolerance: float | None = None
    curve: str | None = None

    def __post_init__(self) -> None:
        """Subclasses type and validate ``params`` here (e.g. ``PGD.settings``)."""

    kind: ClassVar[AttackKind] = AttackKind.BUDGET
    access: ClassVar[Access] = Access.WHITE_BOX
    # True when perturb accepts ``start`` (images within the ball to begin from), which lets
    # the descending curve reuse a larger eps's adversarial examples.
    warm_start: ClassVar[bool] = False
    # True when the attack's gradient passes may run in bfloat16 (bench.attacks.precision):
    # it confirms every success on the exact model.
    mixed_precision: ClassVar[bool] = False

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        """Adversarial images for ``x`` (true labels ``y``) within ``eps``; ``model`` is in eval mode."""

    @property
    def needs_gradients(self) -> bool:
        """Whether the attack differentiates the attacked pipeline (and so gets its adaptive view)."""
        return self.access is Access.WHITE_BOX

    @property
    def needs_surrogate(self) -> bool:
        return self.access is Access.TRANSFER

    def controls(self) -> dict[str, Any]:
        """The harness's controls of this run that are set, as records list them beside the parameters."""
        out: dict[str, Any] = {}
        if self.n_examples is not None:
            out["n_examples"] = self.n_examples
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
        if self.eps_grid is not None:
            out["eps_grid"] = list(self.eps_grid)
        return out

    def describe(self) -> dict[str, Any]:
        """What a record says of the attack (``needs_gradients``: the target's gradients); its ``params``
        are the attack's parameters and the controls of the run."""
        return {"name": self.name, "threat_model": self.threat_model, "kind": self.kind.value,
                "needs_gradients": self.needs_gradients, "params": {**self.params, **self.controls()}}


class MinimalAttack(Attack):
    kind: ClassVar[AttackKind] = AttackKind.MINIMAL

    def perturb(self, model, x, y, eps, generator):
        """A minimal-norm result clipped to a budget: the example only if it is within eps."""
        x_adv = self.minimize(model, x, y, generator)
        within = THREAT_MODELS[self.threat_model].norm(x_adv - x) <= eps
        return torch.where(within.view(-1, *[1] * (x.dim() - 1)), x_adv, x)

    @abstractmethod
    def minimize(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per example, the smallest adversarial image found, or ``x`` itself where none was found."""
