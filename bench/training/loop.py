"""The training loop: deterministic, resumable, with best-checkpoint selection.

Determinism and resumption come from one rule: every epoch draws its randomness (shuffling,
augmentation, anything an objective samples) from a generator seeded by (seed, epoch), and
the learning rate is a pure function of the epoch. A run killed at any point and restarted
from the last per-epoch checkpoint therefore replays exactly the epochs an uninterrupted run
would, and ends with the same weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from bench.data.base import to_float
from bench.defenses.base import Objective, TrainingContext
from bench.errors import ConfigError, TrainingDivergedError
from bench.training.checkpoint import load_checkpoint, save_checkpoint

LAST, BEST, FINAL = "last.pt", "best.pt", "final.pt"
SYNC_EVERY_CUDA = 50  # training steps between host reads of the running loss on a GPU


@dataclass
class TrainResult:
    model: nn.Module
    summary: dict[str, Any]  # epochs, best epoch, history, timings: goes into every record


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def learning_rate(cfg: dict[str, Any], epoch: int) -> float:
    base, schedule, epochs = float(cfg["lr"]), cfg.get("schedule", "constant"), int(cfg["epochs"])
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "cyclic":  # Attias et al.'s reference: 0.3x every 4 epochs, restarting every 20
        return base * 0.3 ** ((epoch % 20) // 4)
    raise ConfigError(f"training.schedule must be one of constant, cosine, cyclic; got {schedule!r}")


def make_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    name = cfg.get("optimizer", "sgd")
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg.get("momentum", 0.0), weight_decay=cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    raise ConfigError(f"training.optimizer must be sgd or adam; got {name!r}")


def augment(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Batched augmentation on the device: random 4-px reflect-padded crop and horizontal flip."""
    if mode == "none":
        return x
    if mode != "crop_flip":
        raise ConfigError(f"training.augment must be none or crop_flip; got {mode!r}")
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    dy = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(-1, x.shape[1], -1, w + 8)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(-1, x.shape[1], h, -1)
    out = out.gather(3, cols)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)


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


def train(
    model: nn.Module,
    objective: Objective,
    ctx: TrainingContext,
    val_indices: torch.Tensor,
    cfg: dict[str, Any],
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
    optimizer = make_optimizer(cfg, params)
    epochs, batch_size = int(cfg["epochs"]), int(cfg["batch_size"])
    history: list[dict[str, Any]] = []
    start_epoch, best_val, best_epoch, elapsed = 0, math.inf, -1, 0.0

    last = checkpoint_dir / LAST
    if last.exists():
        state = load_checkpoint(last, device)
        model.load_state_dict(state["model"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        best_val, best_epoch, elapsed = float(state["best_val_loss"]), int(state["best_epoch"]), float(state["train_seconds"])
        if progress:
            print(f"resuming training from {last} at epoch {start_epoch}/{epochs}")

    train_x, train_y = data.train_x, data.train_y
    if device.type == "cuda":  # uint8 images are small: keep them on the GPU, no per-batch copies
        train_x, train_y = train_x.to(device), train_y.to(device)
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        generator = torch.Generator().manual_seed(epoch_seed(ctx.seed, epoch))
        torch.manual_seed(epoch_seed(ctx.seed, epoch) + 1)  # any randomness objectives draw
        lr = learning_rate(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = ctx.train_indices[torch.randperm(len(ctx.train_indices), generator=generator)]
        model.train()
        objective.train()
        # Running sums stay on the device; the host reads them (a GPU sync) only every
        # `sync_every` steps, for the progress bar and the divergence check. A non-finite loss
        # propagates into the sum, so no step escapes the check.
        sums: dict[str, torch.Tensor] = {"loss": torch.zeros((), dtype=torch.float64, device=device),
                                         "acc": torch.zeros((), dtype=torch.float64, device=device)}
        sync_every = SYNC_EVERY_CUDA if device.type == "cuda" else 1
        n_seen, checked = 0, 0
        batches = range(0, len(order), batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=None if progress else True, unit="batch")
        for step, start in enumerate(bar):
            idx = order[start : start + batch_size]
            x = augment(to_float(train_x[idx], device), cfg.get("augment", "none"), generator)
            y = train_y[idx].to(device)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss, logits, logs = objective(model, x, y)
            b = len(idx)
            n_seen += b
            with torch.no_grad():
                sums["loss"] += loss.detach().double() * b
                sums["acc"] += (logits.argmax(1) == y).sum()
                for key, value in logs.items():
                    value = value.detach().double() if torch.is_tensor(value) else float(value)
                    sums[key] = sums.get(key, 0.0) + value * b
            if (step + 1) % sync_every == 0 or step + 1 == len(batches):
                if not torch.isfinite(sums["loss"]):
                    where = f"step {step + 1}" if sync_every == 1 else f"between steps {checked + 1} and {step + 1}"
                    raise TrainingDivergedError(
                        f"training loss became {loss.item() if sync_every == 1 else sums['loss'].item()} at epoch {epoch + 1}, {where} (lr {lr:g}). "
                        f"Lower training.lr or the defense's loss weight. Checkpoints in {checkpoint_dir} were left as they were."
                    )
                checked = step + 1
                bar.set_postfix(loss=f"{sums['loss'].item() / n_seen:.3f}", acc=f"{sums['acc'].item() / n_seen:.3f}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        bar.close()
        val_loss, val_acc = evaluate_loss(model, train_x[val_indices], train_y[val_indices], device)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        entry = {"epoch": epoch + 1, "lr": lr, "seconds": seconds, **{f"train_{k}": float(v) / max(n_seen, 1) for k, v in sums.items()},
                 "val_loss": val_loss, "val_acc": val_acc, **objective.epoch_summary()}
        history.append(entry)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: train loss {entry['train_loss']:.4f} acc {entry['train_acc']:.4f} | "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} | {seconds:.1f}s")
        if val_loss < best_val or not len(val_indices):
            best_val, best_epoch = val_loss, epoch + 1
            save_checkpoint({"model": model.state_dict(), "epoch": epoch + 1}, checkpoint_dir / BEST)
        save_checkpoint(
            {"model": model.state_dict(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
             "epoch": epoch + 1, "history": history, "best_val_loss": best_val, "best_epoch": best_epoch,
             "train_seconds": elapsed},
            last,
        )

    best = load_checkpoint(checkpoint_dir / BEST, device)
    model.load_state_dict(best["model"])
    summary = {"epochs": epochs, "best_epoch": best_epoch, "best_val_loss": best_val, "train_seconds": elapsed, "history": history}
    save_checkpoint({"model": model.state_dict(), "summary": summary}, checkpoint_dir / FINAL)
    model.eval()
    return TrainResult(model, summary)


def load_trained(model: nn.Module, checkpoint_dir: Path, device: torch.device) -> TrainResult | None:
    """The finished model of an earlier run, or None when training has not completed."""
    final = checkpoint_dir / FINAL
    if not final.exists():
        return None
    state = load_checkpoint(final, device)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return TrainResult(model, dict(state["summary"]))
