"""Decision-based minimal-norm attacks (foolbox): Boundary and HopSkipJump.

They only query the model's top-1 decision, so they attack the deployed pipeline without
gradients, which makes them the harness's check for gradient masking (Carlini et al. 2019).
Foolbox refuses a whole batch ("init_attack failed") when its random starting point is not
adversarial for a single example, e.g. on a model predicting one class everywhere; here the
starting points are drawn first and the attack runs on the examples that have one, every
other example comes back unchanged (a failed attack, as MinimalAttack prescribes).

Reproducibility: foolbox draws its noise through eagerpy from torch's global generator of
x's device (numpy's generator is not used by these attacks, so it is left alone). Each call
seeds that generator from a value drawn with the harness's ``generator`` inside
``torch.random.fork_rng``, so the caller's global RNG state is untouched and a call is
repeatable given the generator's state, the batch and the device. Not reproducible: results
across batch sizes or batch compositions (examples of a batch share draws and, in
BoundaryAttack, step-size statistics), and across devices or non-deterministic GPU kernels.

This module also holds the parameter checks and RNG/gradient helpers shared by the other
attack modules (noise, minimal, transfer, autoattack).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from abc import abstractmethod
from typing import Any, Iterator

import torch
from torch import nn

from bench.attacks.base import Access, MinimalAttack
from bench.attacks.params import float_param, int_param, optional_count, param_error
from bench.registry import ATTACKS

# --- randomness, gradients and results of third-party attacks ----------------------------


def drawn_seed(generator: torch.Generator) -> int:
    """A seed for a library that only takes ints, drawn from (and advancing) the harness's generator."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item())


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG for a library that draws from it, restoring the caller's state after."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def input_gradients_only(model: nn.Module) -> Iterator[None]:
    """Libraries that call ``loss.backward()`` would fill the parameters' ``.grad``; freeze them meanwhile."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


@torch.no_grad()
def keep_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """``x_adv`` where it is a valid image the model misclassifies, else ``x`` (a failed attack)."""
    x_adv = x_adv.to(x.device, x.dtype)
    finite = torch.isfinite(x_adv).flatten(1).all(1)
    x_adv = torch.where(finite.view(-1, *[1] * (x.dim() - 1)), x_adv, x).clamp(0, 1)
    fooled = model(x_adv).argmax(1) != y
    return torch.where(fooled.view(-1, *[1] * (x.dim() - 1)), x_adv, x)


def import_foolbox():
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython, which wants git
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # foolbox 3.3.4 imports scipy.ndimage.filters
        import foolbox

    return foolbox


# --- the attacks ----------------------------------------------------------------------------


class _DecisionAttack(MinimalAttack):
    access = Access.QUERY

    @abstractmethod
    def _foolbox_attack(self, fb):
        """The configured foolbox MinimizationAttack."""

    def minimize(self, model, x, y, generator):
        fb = import_foolbox()
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        with torch.no_grad():
            correct = model(x).argmax(1) == y  # x itself is the minimal adversarial of the others
        with seeded_global_rng(drawn_seed(generator), x.device), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*failed to draw sufficient random inputs.*")
            criterion = fb.criteria.Misclassification(y)
            # foolbox's own default initialisation, run here so that failures stay per example
            starts = fb.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50).run(fmodel, x, criterion)
            with torch.no_grad():
                todo = correct & (model(starts).argmax(1) != y)
            x_adv = x.clone()
            if todo.any():
                idx = todo.nonzero().flatten()
                found, _, _ = self._foolbox_attack(fb)(
                    fmodel, x[idx], fb.criteria.Misclassification(y[idx]), epsilons=None, starting_points=starts[idx])
                x_adv[idx] = found.to(x.dtype)
        return keep_adversarial(model, x, y, x_adv)


class Boundary(_DecisionAttack):
    def _foolbox_attack(self, fb):
        p = self.params
        return fb.attacks.BoundaryAttack(steps=p["steps"], spherical_step=p["spherical_step"], source_step=p["source_step"])


class HopSkipJump(_DecisionAttack):
    def _foolbox_attack(self, fb):
        p = self.params
        return fb.attacks.HopSkipJumpAttack(
            steps=p["steps"], initial_gradient_eval_steps=p["initial_gradient_eval_steps"],
            max_gradient_eval_steps=p["max_gradient_eval_steps"], gamma=p["gamma"],
            constraint="linf" if self.threat_model == "linf" else "l2")


def _boundary_params(name: str, steps: int, spherical_step: float, source_step: float) -> dict[str, Any]:
    return {"steps": int_param(name, "steps", steps),
            "spherical_step": float_param(name, "spherical_step", spherical_step),
            "source_step": float_param(name, "source_step", source_step)}


@ATTACKS.register("boundary", description="Boundary attack, L_2 minimal, decision-based (Brendel et al. 2018; foolbox), 1000 steps by default")
def boundary(steps: int = 1000, spherical_step: float = 0.01, source_step: float = 0.01, n_examples: int | None = None) -> MinimalAttack:
    """Foolbox's default is 25000 steps; 1000 (about 1100 forward passes of the batch) is a CPU-sane default.
    ``n_examples``: attack only the first n evaluation images (None: all)."""
    return Boundary("boundary", "l2", _boundary_params("boundary", steps, spherical_step, source_step),
                    n_examples=optional_count("boundary", "n_examples", n_examples))


@ATTACKS.register("boundary_ref", description="the pixel_sim reference's Boundary attack, 50 steps: far too weak to be a robustness reference, run for comparability")
def boundary_ref(n_examples: int | None = None) -> MinimalAttack:
    """Attias et al.'s evaluation (foolbox BoundaryAttack, 50 steps, default step sizes, 1000 images); the
    steps are fixed on purpose, ``n_examples`` limits the images."""
    return Boundary("boundary_ref", "l2", _boundary_params("boundary_ref", 50, 0.01, 0.01),
                    n_examples=optional_count("boundary_ref", "n_examples", n_examples))


def _hsj(name: str, threat_model: str, steps: int, initial_gradient_eval_steps: int,
         max_gradient_eval_steps: int, gamma: float, n_examples: int | None) -> MinimalAttack:
    params = {"steps": int_param(name, "steps", steps),
              "initial_gradient_eval_steps": int_param(name, "initial_gradient_eval_steps", initial_gradient_eval_steps),
              "max_gradient_eval_steps": int_param(name, "max_gradient_eval_steps", max_gradient_eval_steps),
              "gamma": float_param(name, "gamma", gamma)}
    if params["max_gradient_eval_steps"] < params["initial_gradient_eval_steps"]:
        raise param_error(name, "max_gradient_eval_steps", max_gradient_eval_steps,
                      f"an integer >= initial_gradient_eval_steps ({initial_gradient_eval_steps})")
    return HopSkipJump(name, threat_model, params, n_examples=optional_count(name, "n_examples", n_examples))


@ATTACKS.register("hsj", description="HopSkipJump, L_2 minimal, decision-based (Chen et al. 2020; foolbox), 10 steps by default")
def hsj(steps: int = 10, initial_gradient_eval_steps: int = 100, max_gradient_eval_steps: int = 1000, gamma: float = 1.0,
        n_examples: int | None = None) -> MinimalAttack:
    """Foolbox's defaults are 64 steps and up to 10000 queries per gradient estimate; step k costs about
    100 * sqrt(k) forward passes of the batch, so 10 steps (about 2500 passes) is the CPU-sane default;
    raise ``steps`` on a GPU."""
    return _hsj("hsj", "l2", steps, initial_gradient_eval_steps, max_gradient_eval_steps, gamma, n_examples)


@ATTACKS.register("hsj_linf", description="HopSkipJump, L_inf minimal, decision-based (Chen et al. 2020; foolbox), 10 steps by default")
def hsj_linf(steps: int = 10, initial_gradient_eval_steps: int = 100, max_gradient_eval_steps: int = 1000, gamma: float = 1.0,
        n_examples: int | None = None) -> MinimalAttack:
    """As ``hsj`` with foolbox's ``constraint="linf"``."""
    return _hsj("hsj_linf", "linf", steps, initial_gradient_eval_steps, max_gradient_eval_steps, gamma, n_examples)
