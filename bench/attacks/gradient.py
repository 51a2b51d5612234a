"""White-box gradient attacks: FGSM and PGD (L_inf and L_2).

PGD keeps, per example, the first iterate that fools the model (checked on the logits the
step computes anyway), so a restart or a late iterate that un-fools an example never hides
a success. For adversarial training, ``early_stop=False`` returns the last iterate instead
(Madry et al.'s loss maximisation). Only the perturbation carries gradients; model
parameters are not differentiated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.base import Attack
from bench.attacks.params import bool_param, choice_param, float_param, int_param
from bench.attacks.precision import confirm_fooled, gradient_forward
from bench.attacks.threat import THREAT_MODELS, Linf
from bench.errors import ConfigError
from bench.registry import ATTACKS


LOSSES = ("ce", "margin", "dlr")
TARGET_LOSSES = ("margin", "dlr")
TARGET_ORDERS = ("logits", "malt")


def attack_loss(logits: torch.Tensor, y: torch.Tensor, loss: str = "ce", target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example loss the attack ascends: cross-entropy; the logit margin (largest wrong logit
    minus the true one; toward ``target`` when given); or the margin divided by the spread of the
    sorted logits (Croce & Hein's DLR: z_1 - z_3 untargeted, z_1 - (z_3 + z_4) / 2 targeted), which
    makes it invariant to the logits' scale. The margin's gradient does not vanish when the softmax
    saturates, and a positive margin (or DLR) means the example is fooled."""
    logits = logits.float()
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    true = logits.gather(1, y[:, None]).squeeze(1)
    if target is not None:
        margin = logits.gather(1, target[:, None]).squeeze(1) - true
    else:
        margin = logits.scatter(1, y[:, None], float("-inf")).max(1).values - true
    if loss == "margin":
        return margin
    top = logits.sort(dim=1, descending=True).values
    spread = top[:, 0] - (top[:, 2] if target is None else (top[:, 2] + top[:, 3]) / 2)
    return margin / (spread + 1e-12)


# On a CPU a gradient pass costs more per image in large batches (activations leave the caches):
# benchmarks/gradient_chunk.py, quick's CNN, 2 threads, bfloat16 channels-last: 0.18 ms per image
# in chunks of 64, 0.29-0.32 ms in one pass of 500; but one pass of 128 beat two chunks of 64, so
# only batches over twice the chunk are split. Each example's gradient is its own (eval mode), so
# splitting is exact.
CPU_GRADIENT_CHUNK = 64


def input_gradient(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, loss: str = "ce",
                    target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of the summed loss with respect to the input, and the logits. A pipeline with
    no differentiable path to its input (a non-differentiable step without a declared gradient)
    has a zero gradient, which the gradient check flags. Where ``model`` offers a fast
    (reduced-precision) forward pass, the gradient and the logits come from it. On a CPU, batches
    over twice ``CPU_GRADIENT_CHUNK`` go through in chunks of it."""
    n = CPU_GRADIENT_CHUNK
    if x_adv.device.type == "cpu" and len(x_adv) > 2 * n:
        parts = [input_gradient(model, x_adv[i:i + n], y[i:i + n], loss, None if target is None else target[i:i + n])
                 for i in range(0, len(x_adv), n)]
        return torch.cat([g for g, _ in parts]), torch.cat([lg for _, lg in parts])
    x_adv = x_adv.detach().requires_grad_(True)
    logits = gradient_forward(model)(x_adv)
    value = attack_loss(logits, y, loss, target).sum()
    if not value.requires_grad:
        return torch.zeros_like(x_adv), logits.detach()
    (grad,) = torch.autograd.grad(value, x_adv, allow_unused=True)
    return (torch.zeros_like(x_adv) if grad is None else grad), logits.detach()


def step_sizes(size: float, steps: int, schedule: str) -> list[float]:
    """Per-step sizes: constant, or cosine-annealed from twice ``size`` (large steps explore, small
    ones refine near the boundary; the mean size stays ``size``). The ``adaptive`` schedule sets
    its sizes per example as it goes (``adaptive_checkpoints``); its list starts from ``size``."""
    if schedule in ("constant", "adaptive"):
        return [size] * steps
    return [size * (1 + math.cos(math.pi * t / steps)) for t in range(steps)]


def adaptive_checkpoints(steps: int) -> set[int]:
    """The iterations after which APGD may halve an example's step (Croce & Hein 2020, section 3.2):
    the first after 22 % of the steps, then each gap 3 % of the steps shorter than the last, but at
    least 6 % (in whole steps, as AutoAttack counts them)."""
    gap, shrink, shortest = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks, at = set(), gap
    while at < steps:
        marks.add(at)
        gap = max(gap - shrink, shortest)
        at += gap
    return marks


ADAPTIVE_RHO = 0.75  # halve the step where fewer than this fraction of steps since the last checkpoint raised the loss
ADAPTIVE_MOMENTUM = 0.75


def target_classes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, order: str = "logits",
                   dual_norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The ``k`` wrong classes (at most all of them) each example's targeted runs aim at, best first.

    ``logits``: the most likely wrong classes of the clean input (APGD-T's choice). ``malt``: the
    classes whose decision boundary is nearest under a linear model of the logits at the input,
    (z_y - z_t) / ||grad z_y - grad z_t||_* with the threat's dual norm (MALT, Melamed, Yehudai &
    Shamir 2024): a class the logits rank low but whose margin a small perturbation closes comes
    first. One gradient pass per class, on the clean inputs."""
    with torch.no_grad():
        logits = model(x).float()
    k = min(k, logits.shape[1] - 1)
    if order == "logits" or not len(x):
        return logits.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices
    n = CPU_GRADIENT_CHUNK if x.device.type == "cpu" else len(x)
    parts = []
    for i in range(0, len(x), n):
        xs, ys = x[i:i + n].detach().requires_grad_(True), y[i:i + n]
        with torch.enable_grad():
            z = gradient_forward(model)(xs).float()
            if not z.requires_grad:  # no gradient reaches the input: fall back to the logits' order
                parts.append(z.detach().scatter(1, ys[:, None], float("-inf")).topk(k, dim=1).indices)
                continue
            grads = torch.stack([torch.autograd.grad(z[:, c].sum(), xs, retain_graph=c < z.shape[1] - 1)[0]
                                 for c in range(z.shape[1])], dim=1)  # [b, classes, ...]
        zd = z.detach()
        gap = zd.gather(1, ys[:, None]) - zd  # z_y - z_t >= 0 for wrong classes of a correct example
        diff = (grads - grads[torch.arange(len(ys)), ys][:, None]).flatten(2)
        scale = dual_norm(diff.flatten(0, 1)).view(len(ys), -1)
        distance = gap / (scale + 1e-12)
        distance = distance.scatter(1, ys[:, None], float("inf"))
        parts.append(distance.topk(k, dim=1, largest=False).indices)
    return torch.cat(parts)


class FGSM(Attack):
    mixed_precision = True

    def perturb(self, model, x, y, eps, generator):
        grad, _ = input_gradient(model, x, y)
        return (x + Linf.project(Linf.step(torch.zeros_like(x), grad, eps), eps)).clamp(0, 1)


SCHEDULES = ("constant", "cosine", "adaptive")


@dataclass(frozen=True)
class PGDSettings:
    """PGD's parameters, declared once (defaults, types and ranges): the factories ``pgd`` and ``pgd_l2``,
    adversarial training, the transfer attack and the pipeline checks all build PGD through it."""

    steps: int = 20
    rel_stepsize: float = 0.1  # step size as a fraction of eps
    restarts: int = 1
    random_start: bool = True
    loss: str = "ce"
    targets: int = 0  # targeted runs toward the most likely wrong classes, after the restarts
    schedule: str = "constant"
    momentum: float = 0.0
    target_loss: str = "margin"
    target_order: str = "logits"  # which wrong classes the targeted runs aim at: the most likely, or MALT's nearest
    early_stop: bool = True  # keep each example's first success; False: the last iterate (adversarial training)

    @classmethod
    def of(cls, attack: str, params: Mapping[str, Any]) -> PGDSettings:
        """Validated settings from a parameter mapping; unknown keys are refused, naming the accepted ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(f"attack {attack!r} does not take the parameter(s) {', '.join(unknown)}; "
                              f"accepted: {', '.join(known)}")
        s = cls(**params)
        int_param(attack, "steps", s.steps)
        float_param(attack, "rel_stepsize", s.rel_stepsize)
        int_param(attack, "restarts", s.restarts, minimum=0 if s.targets else 1)
        bool_param(attack, "random_start", s.random_start)
        choice_param(attack, "loss", s.loss, LOSSES)
        int_param(attack, "targets", s.targets, minimum=0)
        choice_param(attack, "schedule", s.schedule, SCHEDULES)
        float_param(attack, "momentum", s.momentum, low_inclusive=True, high=1.0, high_inclusive=False)
        choice_param(attack, "target_loss", s.target_loss, TARGET_LOSSES)
        choice_param(attack, "target_order", s.target_order, TARGET_ORDERS)
        bool_param(attack, "early_stop", s.early_stop)
        return replace(s, rel_stepsize=float(s.rel_stepsize), momentum=float(s.momentum))


class PGD(Attack):
    """Runs, in order: ``restarts`` untargeted runs on ``loss``, then one run on the targeted margin
    toward each of the ``targets`` most likely wrong classes (of the clean input); each run steps
    only the examples no earlier run has fooled. ``params`` are validated into ``settings``
    (:class:`PGDSettings`) when the attack is built, whoever builds it."""

    warm_start = True
    mixed_precision = True

    def __post_init__(self) -> None:
        self.settings = PGDSettings.of(self.name, self.params)

    def perturb(self, model, x, y, eps, generator, start=None):
        """``start`` (images within the eps-ball of ``x``) replaces the first restart's random start.
        At eps = 0 the ball holds ``x`` alone, so no step is spent: the eps = 0 check still rescores
        it through the pipeline, without the full attack's cost on examples that cannot be fooled."""
        if eps == 0:
            return x.clone()
        threat = THREAT_MODELS[self.threat_model]
        p = self.settings
        steps, restarts = p.steps, p.restarts
        sizes = step_sizes(p.rel_stepsize * eps, steps, p.schedule)
        random_start, loss = p.random_start, p.loss
        momentum = p.momentum
        if not p.early_stop:
            delta = threat.random_init(x, eps, generator) if random_start else torch.zeros_like(x)
            x_adv = (x + delta).clamp(0, 1)
            for size in sizes:
                grad, _ = input_gradient(model, x_adv, y, loss)
                x_adv = (x + threat.project(threat.step(x_adv - x, grad, size), eps)).clamp(0, 1)
            return x_adv
        target_loss = p.target_loss
        runs: list[tuple[str, int | None]] = [(loss, None)] * restarts + [(target_loss, k) for k in range(p.targets)]
        targets = None
        if len(runs) > restarts:
            targets = target_classes(model, x, y, len(runs) - restarts, p.target_order, threat.dual_norm)
            runs = runs[: restarts + targets.shape[1]]
        # Early stop: only examples not yet fooled are stepped (the model is in eval mode, so
        # each example's trajectory is independent of the others in its batch).
        best = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        x_adv = x.clone()
        for run, (run_loss, k) in enumerate(runs):
            if run == 0 and start is not None:
                x_adv = start.clone()
            else:
                delta = threat.random_init(x, eps, generator) if random_start else torch.zeros_like(x)
                x_adv = (x + delta).clamp(0, 1)
            if p.schedule == "adaptive":
                if self._adaptive_run(model, x, y, eps, x_adv, run_loss, None if k is None else targets[:, k], best, fooled, steps):
                    return best
                continue
            previous = x_adv.clone() if momentum else None
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
                target = None if k is None else targets[active, k]
                grad, logits = input_gradient(model, x_adv[active], y[active], run_loss, target)
                newly = confirm_fooled(model, x_adv[active], y[active], logits.argmax(1) != y[active])
                best[active[newly]] = x_adv[active[newly]]
                fooled[active[newly]] = True
                keep = active[~newly]
                delta = x_adv[keep] - x[keep]
                stepped = threat.project(threat.step(delta, grad[~newly], sizes[step]), eps)
                if momentum:  # APGD's heavy ball: part of the last move is repeated (none at the first step)
                    if step:
                        stepped = threat.project(stepped + momentum * (delta - (previous[keep] - x[keep])) - momentum * (stepped - delta), eps)
                    previous[keep] = x_adv[keep]
                x_adv[keep] = (x[keep] + stepped).clamp(0, 1)
        best[~fooled] = x_adv[~fooled]  # not fooled: the last iterate of the last run
        return best

    def _adaptive_run(self, model, x, y, eps, x_adv, loss, target, best, fooled, steps) -> bool:
        """One run with APGD's step-size rule on the examples not yet fooled: start at 2 eps, step with
        momentum 0.75, and at each checkpoint halve an example's step, and go back to its best point,
        where the loss rose on at most 75 % of the steps since the last checkpoint, or where the step
        was not halved at the last checkpoint and the best loss has not risen since (the rule as
        AutoAttack's reference implementation applies it, box clipping before the momentum mix
        included). Fooled examples are kept in ``best`` and marked in ``fooled``; the others leave
        their highest-loss point there. Returns whether every example is fooled."""
        threat = THREAT_MODELS[self.threat_model]
        idx = (~fooled).nonzero().flatten()
        if not len(idx):
            return True
        xs, ys = x[idx], y[idx]
        tg = None if target is None else target[idx]
        shape = (len(idx),) + (1,) * (x.dim() - 1)
        cur = x_adv[idx].clone()
        eta = torch.full(shape, 2.0 * eps, device=x.device)
        grad, logits = input_gradient(model, cur, ys, loss, tg)
        value = attack_loss(logits, ys, loss, tg).detach()
        best_x, best_loss, best_grad = cur.clone(), value.clone(), grad.clone()
        previous = cur.clone()
        alive = torch.ones(len(idx), dtype=torch.bool, device=x.device)
        rises = torch.zeros(len(idx), device=x.device)
        # as if halved at a checkpoint before the first: the no-gain rule starts at the second
        reduced = torch.ones(len(idx), dtype=torch.bool, device=x.device)
        mark_loss, mark = best_loss.clone(), 0
        checkpoints = adaptive_checkpoints(steps)

        def keep_fooled(a: torch.Tensor, points: torch.Tensor, lg: torch.Tensor) -> None:
            newly = confirm_fooled(model, points, ys[a], lg.argmax(1) != ys[a])
            best[idx[a[newly]]] = points[newly]
            fooled[idx[a[newly]]] = True
            alive[a[newly]] = False

        keep_fooled(torch.arange(len(idx), device=x.device), cur, logits)
        for step in range(steps):
            a = alive.nonzero().flatten()
            if not len(a):
                break
            delta = cur[a] - xs[a]
            z = threat.project(threat.step(delta, grad[a], eta[a]), eps)
            z = (xs[a] + z).clamp(0, 1) - xs[a]  # the plain step inside the image box before the mix
            if step:
                z = threat.project(delta + ADAPTIVE_MOMENTUM * (z - delta) + (1 - ADAPTIVE_MOMENTUM) * (delta - (previous[a] - xs[a])), eps)
            previous[a] = cur[a]
            cur[a] = (xs[a] + z).clamp(0, 1)
            g, lg = input_gradient(model, cur[a], ys[a], loss, None if tg is None else tg[a])
            v = attack_loss(lg, ys[a], loss, None if tg is None else tg[a]).detach()
            grad[a] = g
            rises[a] += (v > value[a]).float()
            value[a] = v
            up = v > best_loss[a]
            best_x[a[up]], best_loss[a[up]], best_grad[a[up]] = cur[a[up]], v[up], g[up]
            keep_fooled(a, cur[a], lg)
            if step + 1 in checkpoints:
                stalled = (rises <= ADAPTIVE_RHO * (step + 1 - mark)) | (~reduced & (best_loss <= mark_loss))
                halve = (stalled & alive).nonzero().flatten()
                eta[halve] /= 2
                cur[halve], grad[halve] = best_x[halve], best_grad[halve]  # momentum still from the last move
                reduced, mark_loss, mark = stalled, best_loss.clone(), step + 1
                rises.zero_()
        left = alive.nonzero().flatten()
        x_adv[idx[left]] = best_x[left]
        best[idx[left]] = best_x[left]
        return bool(fooled.all())


def _params(name: str, **given: Any) -> dict[str, Any]:
    """The recorded parameters of a PGD factory: every declared setting but ``early_stop``, validated."""
    settings = asdict(PGDSettings.of(name, given))
    settings.pop("early_stop")
    return settings


_D = PGDSettings  # the factories' defaults are the settings' own


@ATTACKS.register("fgsm", description="fast gradient sign method, L_inf, one step of size eps (Goodfellow et al. 2015)")
def fgsm() -> Attack:
    return FGSM("fgsm", "linf")


@ATTACKS.register("pgd", description="projected gradient descent, L_inf, random start, keeps each example's first success (Madry et al. 2018)")
def pgd(steps: int = _D.steps, rel_stepsize: float = _D.rel_stepsize, restarts: int = _D.restarts,
        random_start: bool = _D.random_start, loss: str = _D.loss, targets: int = _D.targets, schedule: str = _D.schedule,
        momentum: float = _D.momentum, target_loss: str = _D.target_loss, target_order: str = _D.target_order) -> Attack:
    return PGD("pgd", "linf", _params("pgd", steps=steps, rel_stepsize=rel_stepsize, restarts=restarts, random_start=random_start,
                                      loss=loss, targets=targets, schedule=schedule, momentum=momentum, target_loss=target_loss,
                                      target_order=target_order))


@ATTACKS.register("pgd_l2", description="projected gradient descent, L_2, random start in the ball, normalised gradient steps")
def pgd_l2(steps: int = _D.steps, rel_stepsize: float = _D.rel_stepsize, restarts: int = _D.restarts,
           random_start: bool = _D.random_start, loss: str = _D.loss, targets: int = _D.targets, schedule: str = _D.schedule,
           momentum: float = _D.momentum, target_loss: str = _D.target_loss, target_order: str = _D.target_order) -> Attack:
    return PGD("pgd_l2", "l2", _params("pgd_l2", steps=steps, rel_stepsize=rel_stepsize, restarts=restarts,
                                       random_start=random_start, loss=loss, targets=targets, schedule=schedule, momentum=momentum,
                                       target_loss=target_loss, target_order=target_order))
