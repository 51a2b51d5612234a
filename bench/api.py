"""Evaluating any trained network: ``bench.evaluate(model, images, labels, ...)``.

A model that maps images in [0, 1] to logits is attacked exactly as a registered defense is:
the protocol's attacks with their parameters, the adaptive view when the model declares one,
every sanity check, the per-example worst case over the attacks, and typed records that
``bench report`` shows beside the defenses (named by the user). ``bench eval`` is this
function on the command line. See docs/methods.md#7-evaluation-rules.

What it refuses, before any attack runs: images outside [0, 1] (normalisation belongs inside
the model), images the model does not accept, labels beyond the model's classes, non-finite
values. A model in train mode is switched to eval mode, and the records say that it was.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from bench.attacks.base import Access
from bench.attacks.precision import resolve_precision
from bench.data.base import EvaluationData
from bench.defenses.base import Defense
from bench.errors import ConfigError, first_line
from bench.evaluation import evaluate_attack
from bench.evaluation.intervals import accuracy_interval
from bench.evaluation.model_checks import model_checks
from bench.pipeline import attack_eps_grid, check_protocol, make_attack
from bench.protocol import Protocol, load_protocol, middle_eps, parse
from bench.records import AttackRecord, ModelSummary, record_path, write_record
from bench.records.build import attack_record_of
from bench.records.store import SUMMARY_NAME
from bench.records.summary import summarize

__all__ = ["EvaluationResult", "evaluate"]

NORMALISATION_HINT = ("put the normalisation inside the model (e.g. nn.Sequential(bench.models.Normalize(mean, std), net)) "
                      "and pass images in [0, 1]")


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate`` measured; ``robust_accuracy[eps]`` is the per-example worst case over the attacks."""

    name: str
    threat_model: str
    protocol: Protocol
    seed: int
    records: tuple[AttackRecord, ...]
    summary: ModelSummary
    n_examples: int
    switched_to_eval: bool  # the model was in train mode and was evaluated in eval mode
    clean_accuracy: float = 0.0
    robust_accuracy: dict[float, float] = field(default_factory=dict)
    per_attack: dict[str, dict[float, float]] = field(default_factory=dict)

    @property
    def checks(self) -> list[dict[str, Any]]:
        """Every sanity check, per attack and across attacks, with its status and numbers."""
        per_attack = [{**c.to_dict(), "attack": rec.attack.name} for rec in self.records for c in rec.checks]
        return per_attack + [c.to_dict() for c in self.summary.cross_attack_checks]

    @property
    def flagged(self) -> list[str]:
        return sorted({c["name"] for c in self.checks if c["status"] != "pass"})

    def interval(self, eps: float, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson interval over the examples for ``robust_accuracy[eps]`` (eps = 0: the clean accuracy)."""
        return accuracy_interval(self.robust_accuracy[float(eps)], self.n_examples, confidence)

    def to_record(self, results_dir: str | Path = "results") -> list[Path]:
        """Write every attack record and the summary where ``bench report`` finds them:
        ``<results_dir>/<protocol>-<hash12>/<name>/seed<seed>/``."""
        paths = []
        for rec in self.records:
            path = record_path(Path(results_dir), self.protocol.name, self.protocol.hash, self.name, self.seed, rec.attack.name)
            write_record(path, rec)
            paths.append(path)
        summary = paths[0].parent / SUMMARY_NAME
        write_record(summary, self.summary)
        return paths + [summary]


def _as_images(images: Any) -> torch.Tensor:
    """Float images in [0, 1], [N, C, H, W]; uint8 is divided by 255."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not torch.is_tensor(images):
        raise ConfigError(f"images must be a torch tensor or numpy array [N, C, H, W], got {type(images).__name__}")
    if images.dim() == 3:  # [N, H, W]: one channel
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[0] == 0:
        raise ConfigError(f"images must have shape [N, C, H, W] (or [N, H, W] for one channel) with N >= 1, got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float().div(255)
    if not images.is_floating_point():
        raise ConfigError(f"images must be uint8 (0-255) or float in [0, 1], got {images.dtype}")
    images = images.float()
    if not torch.isfinite(images).all():
        raise ConfigError("images contain NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise ConfigError(f"images must lie in [0, 1], got values from {low:.3g} to {high:.3g}: {NORMALISATION_HINT}")
    return images


def _as_labels(labels: Any, n: int) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not torch.is_tensor(labels) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ConfigError(f"labels must be an integer tensor or array [N], got {getattr(labels, 'dtype', type(labels).__name__)}")
    labels = labels.long().flatten()
    if labels.numel() != n:
        raise ConfigError(f"labels must have one entry per image: {n} images, {labels.numel()} labels")
    if int(labels.min()) < 0:
        raise ConfigError(f"labels must be class indices >= 0, got {int(labels.min())}")
    return labels


def _num_classes(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> int:
    """The model's number of logits, found on the first image; refuses a model that rejects the images."""
    try:
        with torch.no_grad():
            logits = model(x[:1])
    except Exception as exc:  # the user's model: any error means it does not accept these images
        raise ConfigError(f"the model does not accept images of shape {list(x.shape[1:])} (C, H, W) in [0, 1]: "
                          f"{type(exc).__name__}: {first_line(exc)}") from None
    if not torch.is_tensor(logits) or logits.dim() != 2 or logits.shape[0] != 1:
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ConfigError(f"the model must return logits of shape [batch, classes]; for one image it returned {shape}")
    classes = int(logits.shape[1])
    if classes < 2:
        raise ConfigError(f"the model returns {classes} logit per image; a classifier needs at least 2")
    if int(labels.max()) >= classes:
        raise ConfigError(f"labels go up to {int(labels.max())}, but the model returns {classes} logits per image "
                          f"(classes 0-{classes - 1})")
    return classes


def state_digest(model: nn.Module) -> str:
    """SHA-256 over the model's parameters and buffers (names, shapes and bytes): which weights were evaluated."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def data_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve_protocol(protocol: str | Protocol, threat_model: str, eps: Sequence[float] | None, n: int,
                     batch_size: int | None) -> Protocol:
    """The protocol the evaluation runs under: its eps grid (``eps`` with 0 added; the convergence
    rerun, if run, then covers every eps given), ``n`` examples; recorded and hashed."""
    base = load_protocol(protocol) if isinstance(protocol, str) else protocol
    if threat_model not in base.threat_models:
        raise ConfigError(f"threat model {threat_model!r} has no eps grid in protocol {base.name}; "
                          f"it has: {', '.join(base.threat_models)}")
    config = base.raw_config()
    if eps is not None:
        grid = sorted({0.0, *(float(e) for e in eps)})
        if not all(np.isfinite(grid)) or grid[0] < 0:
            raise ConfigError(f"eps must be finite and >= 0, got {list(eps)}")
        config["threat_models"][threat_model]["eps"] = grid
        conv = (config.get("leaderboard") or {}).get("convergence")
        if isinstance(conv, dict):  # the protocol's rerun eps belong to its own grid: rerun at each of the caller's
            conv.pop("eps", None)
    config["evaluation"]["n_examples"] = n
    if batch_size is not None:
        config["evaluation"]["batch_size"] = batch_size
    resolved = parse(config, base.source)
    check_protocol(resolved)
    return resolved


def evaluate(
    model: nn.Module,
    images: Any,
    labels: Any,
    threat_model: str = "linf",
    eps: Sequence[float] | None = None,
    attacks: Sequence[str] | None = None,
    *,
    name: str = "user_model",
    protocol: str | Protocol = "quick",
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    data_name: str = "user_data",
    data_source: str = "images passed to bench.evaluate",
    progress: bool = False,
    precision: str = "auto",
) -> EvaluationResult:
    """Attack ``model`` on ``images`` (uint8, or float in [0, 1]; [N, C, H, W]) with true ``labels``.

    ``eps``: the budgets (default: the protocol's grid for ``threat_model``; 0 is always added,
    for the eps = 0 check). ``attacks``: registered attack names of that threat model
    (default: the protocol's suite for it, without transfer attacks, which need a surrogate
    of the same architecture). Parameters of each attack come from ``protocol``. ``precision``:
    of PGD's and FGSM's gradient passes (auto, fp32 or bf16; every success is confirmed in fp32).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module mapping images in [0, 1] to logits, got {type(model).__name__}")
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"name must be a non-empty folder-safe name (no '/'), got {name!r}")
    x = _as_images(images)
    y = _as_labels(labels, len(x))
    proto = resolve_protocol(protocol, threat_model, eps, len(x), batch_size)
    if attacks is None:  # the protocol's suite for this threat model, without transfer attacks
        chosen = [a for a in (make_attack(proto, name) for name in proto.attacks)
                  if a.threat_model == threat_model and a.access is not Access.TRANSFER]
    else:
        chosen = [make_attack(proto, name) for name in dict.fromkeys(attacks)]
    for attack in chosen:
        if attack.threat_model != threat_model:
            raise ConfigError(f"attack {attack.name!r} is a {attack.threat_model} attack; threat_model is {threat_model!r}")
        if attack.access is Access.TRANSFER:
            raise ConfigError(f"attack {attack.name!r} transfers from a surrogate trained like the target, which an outside "
                              "model does not have; use white-box or query attacks")
    if not chosen:
        raise ConfigError(f"no attack to run for threat model {threat_model!r}; pass attacks=[...]")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    was_training = model.training
    model = model.to(dev).eval()
    x, y = x.to(dev), y.to(dev)
    classes = _num_classes(model, x, y)
    data = EvaluationData(data_name, data_source, len(x), tuple(x.shape[1:]), classes, data_digest(x, y))
    defense = Defense(name)
    info = {"name": name, "parameters": sum(p.numel() for p in model.parameters()), "weights_sha256": state_digest(model),
            "evaluated_in_eval_mode": True, "was_in_train_mode": was_training, "trained_now": False,
            "training": {"train_seconds": 0.0, "history": []}}
    gradient_precision = resolve_precision(precision, dev)
    bs = proto.evaluation.batch_size
    path_eps = middle_eps(proto.eps_grid(threat_model)) if threat_model == "linf" else proto.headline_eps()
    pipeline_checks = model_checks(model, x, y, classes, bs, seed, path_eps)
    records = []
    for attack in chosen:
        t0 = time.perf_counter()
        m = min(int(attack.params.get("n_examples") or len(x)), len(x))
        outcome = evaluate_attack(model, attack, x[:m], y[:m], attack_eps_grid(proto, attack), bs, seed, progress,
                                  proto.evaluation.curve, randomized=False, precision=gradient_precision)
        records.append(attack_record_of(proto, defense, seed, attack, data, info, outcome, dev, pipeline_checks, None))
        if progress:
            print(f"{name} {attack.name}: clean {outcome.clean_accuracy():.3f} | "
                  + ", ".join(f"{k}: {v:.3f}" for k, v in records[-1].metrics.robust_accuracy.items())
                  + f" | {time.perf_counter() - t0:.1f}s")
    summary = summarize(records)
    worst = {float(e): w.accuracy for e, w in summary.worst_case.get(threat_model, {}).items()}
    per_attack = {rec.attack.name: {float(e): a for e, a in rec.metrics.robust_accuracy.items()} for rec in records}
    full = max(records, key=lambda r: r.metrics.n_examples)
    return EvaluationResult(name, threat_model, proto, seed, tuple(records), summary, full.metrics.n_examples, was_training,
                            full.metrics.clean_accuracy, worst, per_attack)


def load_evaluation_data(spec: str, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor, str, str]:
    """Images, labels, name and source for ``bench eval --data``: a registered data set (its test
    split), a folder of images per class, or an ``.npz`` with ``x`` and ``y``; the first ``n``."""
    from bench.catalog import DATASETS
    from bench.data.user import load_image_folder, load_npz

    path = Path(spec)
    if spec.endswith(".npz"):
        x, y = load_npz(path)
        name, source = path.stem, path.name
    elif path.is_dir():
        x, y, classes = load_image_folder(path)
        name, source = path.name, f"image folder {path.name} (classes: {', '.join(classes)})"
    elif spec in DATASETS:
        dataset = DATASETS.get(spec).factory()
        x, y, name, source = dataset.test_x, dataset.test_y, dataset.name, f"{dataset.source} (test split)"
    else:
        raise ConfigError(f"--data {spec!r} is neither an .npz file, a folder of class subfolders, nor a registered data set "
                          f"({', '.join(DATASETS.names())})")
    if n is not None:
        if n < 1:
            raise ConfigError(f"--n must be >= 1, got {n}")
        x, y = x[:n], y[:n]
    return x, y, name, source
