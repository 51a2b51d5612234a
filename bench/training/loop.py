"""The training loop: deterministic, resumable, with best-checkpoint selection.

Determinism and resumption come from one rule: every epoch draws its randomness (shuffling,
augmentation, anything an objective samples) from a generator seeded by (seed, epoch), and
the learning rate is a pure function of the epoch. A run killed at any point and restarted
from the last per-epoch checkpoint therefore replays exactly the epochs an uninterrupted run
would, and ends with the same weights.

:func:`train` reads as its phases: resume, then per epoch :func:`train_epoch` (the steps,
with on-device running sums and the divergence check), :func:`evaluate_loss` on the
validation split and :func:`save_epoch`; at the end :func:`finish` restores the best epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from bench.data.augment import augment
from bench.data.base import to_float
from bench.defenses.base import Objective, TrainingContext
from bench.errors import CheckpointError, TrainingDivergedError, first_line
from bench.hardware import compute_context
from bench.protocol import TrainingSpec
from bench.training.checkpoint import load_checkpoint, save_checkpoint

LAST, BEST, FINAL = "last.pt", "best.pt", "final.pt"
SYNC_EVERY_CUDA = 50  # training steps between host reads of the running loss on a GPU


@dataclass
class TrainResult:
    model: nn.Module
    summary: dict[str, Any]  # epochs, best epoch, history, timings: goes into every record


@dataclass
class TrainState:
    """What a per-epoch checkpoint carries beside the weights, so that a resumed run goes on exactly."""

    epoch: int = 0  # epochs finished
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_epoch: int = -1
    train_seconds: float = 0.0


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def learning_rate(spec: TrainingSpec, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): a pure function of the epoch, see docs/methods.md#13-training."""
    if spec.schedule == "cosine":
        return spec.lr * 0.5 * (1 + math.cos(math.pi * epoch / spec.epochs))
    if spec.schedule == "cyclic":  # Attias et al.'s reference: 0.3x every 4 epochs, restarting every 20
        return spec.lr * 0.3 ** ((epoch % 20) // 4)
    return spec.lr  # constant (the protocol admits no other value)


def make_optimizer(spec: TrainingSpec, params) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


@torch.no_grad()
def evaluate_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on uint8 images."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        x = to_float(images[start : start + batch_size], device)
        y = labels[start : start + batch_size].to(device)
        logits = model(x).float()
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    n = max(len(labels), 1)
    return total_loss / n, correct / n


def resume(last: Path, model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, device: torch.device) -> TrainState:
    """The state of an interrupted run from its per-epoch checkpoint (a fresh state without one)."""
    if not last.exists():
        return TrainState()
    state = load_checkpoint(last, device)
    model.load_state_dict(state["model"])
    objective.load_state_dict(state["objective"])
    optimizer.load_state_dict(state["optimizer"])
    return TrainState(int(state["epoch"]), list(state["history"]), float(state["best_val_loss"]), int(state["best_epoch"]),
                      float(state["train_seconds"]))


class RunningSums:
    """Per-epoch sums of the loss, accuracy and diagnostics, kept on the device.

    The host reads them (a GPU sync) only every ``sync_every`` steps, for the progress bar and
    the divergence check; a non-finite loss propagates into the sum, so no step escapes it.
    """

    def __init__(self, device: torch.device):
        self.sums: dict[str, Any] = {"loss": torch.zeros((), dtype=torch.float64, device=device),
                                     "acc": torch.zeros((), dtype=torch.float64, device=device)}
        self.n = 0

    @torch.no_grad()
    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, logs: dict[str, Any]) -> None:
        b = len(y)
        self.n += b
        self.sums["loss"] += loss.detach().double() * b
        self.sums["acc"] += (logits.argmax(1) == y).sum()
        self.add_logs(logs, b)

    @torch.no_grad()
    def add_logs(self, logs: dict[str, Any], b: int) -> None:
        """Add per-batch diagnostics (tensors stay on the device), weighted by the batch size ``b``."""
        for key, value in logs.items():
            value = value.detach().double() if torch.is_tensor(value) else float(value)
            self.sums[key] = self.sums.get(key, 0.0) + value * b

    def finite(self) -> bool:
        return bool(torch.isfinite(self.sums["loss"]))

    def mean(self, key: str) -> float:
        return float(self.sums[key]) / max(self.n, 1)

    def means(self) -> dict[str, float]:
        return {f"train_{key}": self.mean(key) for key in self.sums}


@torch.no_grad()
def clip_gradient(optimizer: torch.optim.Optimizer, max_norm: float, sums: RunningSums, batch: int) -> None:
    """Scale the step's whole gradient to L2 norm ``max_norm`` at most (a rare huge gradient, e.g.
    from a regulariser whose loss is steep near its bounds, would otherwise wreck the network in
    one step); the norm before clipping and the share of clipped steps go into the epoch's history."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, max_norm)
    sums.add_logs({"grad_norm": norm, "clipped": (norm > max_norm).double()}, batch)


def train_epoch(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, ctx: TrainingContext,
                spec: TrainingSpec, epoch: int, images: torch.Tensor, labels: torch.Tensor, checkpoint_dir: Path,
                progress: bool) -> RunningSums:
    """One epoch of steps in the order drawn from (seed, epoch); raises on a diverging loss."""
    device = ctx.device
    generator = torch.Generator().manual_seed(epoch_seed(ctx.seed, epoch))
    torch.manual_seed(epoch_seed(ctx.seed, epoch) + 1)  # any randomness objectives draw
    lr = learning_rate(spec, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    order = ctx.train_indices[torch.randperm(len(ctx.train_indices), generator=generator)]
    model.train()
    objective.train()
    sums = RunningSums(device)
    sync_every = SYNC_EVERY_CUDA if device.type == "cuda" else 1
    checked = 0
    batches = range(0, len(order), spec.batch_size)
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{spec.epochs}", leave=False, disable=None if progress else True, unit="batch")
    for step, start in enumerate(bar):
        idx = order[start : start + spec.batch_size]
        x = augment(to_float(images[idx], device), spec.augment, generator)
        y = labels[idx].to(device)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, logits, logs = objective(model, x, y)
        sums.add(loss, logits, y, logs)
        if (step + 1) % sync_every == 0 or step + 1 == len(batches):
            if not sums.finite():
                where = f"step {step + 1}" if sync_every == 1 else f"between steps {checked + 1} and {step + 1}"
                raise TrainingDivergedError(
                    f"training loss became {loss.item() if sync_every == 1 else float(sums.sums['loss'])} at epoch {epoch + 1}, "
                    f"{where} (lr {lr:g}). Lower training.lr or the defense's loss weight. "
                    f"Checkpoints in {checkpoint_dir} were left as they were."
                )
            checked = step + 1
            bar.set_postfix(loss=f"{sums.mean('loss'):.3f}", acc=f"{sums.mean('acc'):.3f}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.grad_clip is not None:
            clip_gradient(optimizer, spec.grad_clip, sums, len(y))
        optimizer.step()
    bar.close()
    return sums


def save_epoch(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, state: TrainState,
               checkpoint_dir: Path, improved: bool) -> None:
    """``best.pt`` when the validation loss improved, and ``last.pt`` (everything a resume needs) always."""
    if improved:
        save_checkpoint({"model": model.state_dict(), "epoch": state.epoch}, checkpoint_dir / BEST)
    save_checkpoint(
        {"model": model.state_dict(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
         "epoch": state.epoch, "history": state.history, "best_val_loss": state.best_val_loss, "best_epoch": state.best_epoch,
         "train_seconds": state.train_seconds},
        checkpoint_dir / LAST,
    )


def finish(model: nn.Module, state: TrainState, spec: TrainingSpec, checkpoint_dir: Path, device: torch.device) -> TrainResult:
    """Restore the best epoch's weights and write ``final.pt``, which marks the model finished."""
    best = load_checkpoint(checkpoint_dir / BEST, device)
    model.load_state_dict(best["model"])
    summary = {"epochs": spec.epochs, "best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss,
               "train_seconds": state.train_seconds, "history": state.history,
               "finished_on": compute_context(device)}  # weights differ with the CPU kind and thread count
    save_checkpoint({"model": model.state_dict(), "summary": summary}, checkpoint_dir / FINAL)
    model.eval()
    return TrainResult(model, summary)


def train(
    model: nn.Module,
    objective: Objective,
    ctx: TrainingContext,
    val_indices: torch.Tensor,
    spec: TrainingSpec,
    checkpoint_dir: Path,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` with ``objective``; resume from ``checkpoint_dir/last.pt`` when present."""
    device, data = ctx.device, ctx.dataset
    model.to(device)
    objective.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in list(model.parameters()) + list(objective.parameters()) if p.requires_grad]
    optimizer = make_optimizer(spec, params)
    state = resume(checkpoint_dir / LAST, model, objective, optimizer, device)
    if state.epoch and progress:
        print(f"resuming training from {checkpoint_dir / LAST} at epoch {state.epoch}/{spec.epochs}")

    images, labels = data.train_x, data.train_y
    if device.type == "cuda":  # uint8 images are small: keep them on the GPU, no per-batch copies
        images, labels = images.to(device), labels.to(device)
    for epoch in range(state.epoch, spec.epochs):
        t0 = time.perf_counter()
        sums = train_epoch(model, objective, optimizer, ctx, spec, epoch, images, labels, checkpoint_dir, progress)
        val_loss, val_acc = evaluate_loss(model, images[val_indices], labels[val_indices], device)
        seconds = time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "lr": learning_rate(spec, epoch), "seconds": seconds, **sums.means(),
                 "val_loss": val_loss, "val_acc": val_acc, **objective.epoch_summary()}
        improved = val_loss < state.best_val_loss or not len(val_indices)
        state.epoch, state.train_seconds = epoch + 1, state.train_seconds + seconds
        state.history.append(entry)
        if improved:
            state.best_val_loss, state.best_epoch = val_loss, epoch + 1
        if progress:
            print(f"epoch {epoch + 1}/{spec.epochs}: train loss {entry['train_loss']:.4f} acc {entry['train_acc']:.4f} | "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} | {seconds:.1f}s")
        save_epoch(model, objective, optimizer, state, checkpoint_dir, improved)
    return finish(model, state, spec, checkpoint_dir, device)


def load_trained(model: nn.Module, checkpoint_dir: Path, device: torch.device) -> TrainResult | None:
    """The finished model of an earlier run, or None when training has not completed."""
    final = checkpoint_dir / FINAL
    if not final.exists():
        return None
    state = load_checkpoint(final, device)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:  # a valid dict of other shapes or keys
        raise CheckpointError(f"checkpoint {final} does not fit this protocol's model ({type(exc).__name__}: "
                              f"{first_line(exc)[:200]}); it was left untouched: move it away to retrain, or rerun with "
                              "--force to retrain from scratch") from None
    if "summary" not in state or not isinstance(state["summary"], dict):
        raise CheckpointError(f"checkpoint {final} has no training summary: it is not a finished model of this harness; "
                              "move it away to retrain, or rerun with --force")
    model.to(device).eval()
    return TrainResult(model, dict(state["summary"]))
