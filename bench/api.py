"""Evaluating any trained network: ``bench.evaluate(model)`` and, on the command line, ``bench eval``.

A model that maps images in [0, 1] to logits goes through the same engine as a registered
defense (``bench.engine.evaluate_model``): the protocol's leaderboard suite with its
parameters, the adaptive view when the model declares one, every sanity check, the
per-example worst case over the attacks, and typed records. On the protocol's own images and
eps grid (the default) the records land under the protocol's hash, so ``bench report`` ranks
the model in the same leaderboard as the protocol's defenses and shipped references.
See docs/methods.md#7-evaluation-rules.

What it refuses, before any attack runs: images outside [0, 1] (normalisation belongs inside
the model), images the model does not accept, labels beyond the model's classes, non-finite
values, budgets outside the threat model's range, names that are not folder-safe or that are
a registered defense's or a shipped reference's, and (with ``results``) records of other
weights under the same name unless ``force``. A model in train mode is switched to eval mode,
and the records say that it was.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from bench.attacks.base import Access
from bench.attacks.precision import resolve_precision
from bench.attacks.threat import eps_limit
from bench.data.base import EvaluationData, ImageDataset, images_digest, to_float
from bench.defenses.base import Defense
from bench.engine import EngineOptions, EvaluationSet, Target, evaluate_model, refuse_other_weights
from bench.errors import BenchError, ConfigError, first_line
from bench.evaluation.intervals import accuracy_interval
from bench.models.digest import weights_digest
from bench.pipeline import check_protocol, make_attack
from bench.protocol import DEFAULT_PROTOCOL, Protocol, check_seed, load_protocol, parse
from bench.records import AttackRecord, ModelSummary, lock, record_path, write_record
from bench.records.build import update_model_summary
from bench.records.store import REFERENCE_FOLDER, SUMMARY_NAME, folder_name, safe_name

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
    paths: tuple[Path, ...] = ()  # where the records were written (``results=``), empty in memory

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

    def to_record(self, results_dir: str | Path = "results", force: bool = False) -> list[Path]:
        """Write every attack record and the summary where ``bench report`` finds them:
        ``<results_dir>/<protocol>-<hash12>/<name>/seed<seed>/``. Refused when that folder holds
        records of other weights (another model of the same name), unless ``force``."""
        folder = record_path(Path(results_dir), self.protocol.name, self.protocol.hash, self.name, self.seed, "any").parent
        paths = [folder / f"{rec.attack.name}.json" for rec in self.records]
        with lock.held(folder, f"writing the records of {self.name} seed {self.seed} ({folder})"):
            if not force:
                refuse_other_weights(folder, self.records[0].model.get("weights_sha256"), set(), f"model {self.name!r}")
            for path, rec in zip(paths, self.records):
                write_record(path, rec)
            update_model_summary(folder)
        return paths + [folder / SUMMARY_NAME]


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


def resolve_protocol(protocol: str | Protocol, threat_model: str, eps: Sequence[float] | None, n: int | None,
                     batch_size: int | None, own_data: bool) -> Protocol:
    """The protocol the evaluation runs under. Unchanged (same hash, so the model is ranked beside
    the protocol's defenses) when the images are the protocol's own and neither ``eps``, ``n`` nor
    ``batch_size`` is given; otherwise a derived protocol, recorded and hashed: its eps grid
    (``eps`` with 0 added; the convergence rerun then covers every eps given), its ``n`` examples,
    and, for images of the user's, a leaderboard suite without transfer attacks (their surrogate is
    trained on the protocol's data)."""
    base = load_protocol(protocol) if isinstance(protocol, str) else protocol
    if threat_model not in base.threat_models:
        raise ConfigError(f"threat model {threat_model!r} has no eps grid in protocol {base.name}; "
                          f"it has: {', '.join(base.threat_models)}")
    if own_data and eps is None and n is None and batch_size is None:
        check_protocol(base)
        return base
    config = base.raw_config()
    if eps is not None:
        config["threat_models"][threat_model]["eps"] = sorted({0.0, *(float(e) for e in eps)})
        conv = (config.get("leaderboard") or {}).get("convergence")
        if isinstance(conv, dict):  # the protocol's rerun eps belong to its own grid: rerun at each of the caller's
            conv.pop("eps", None)
    if n is not None:
        config["evaluation"]["n_examples"] = n
    if batch_size is not None:
        config["evaluation"]["batch_size"] = batch_size
    board = config.get("leaderboard")
    if not own_data and isinstance(board, dict) and isinstance(board.get("attacks"), list):
        board["attacks"] = [a for a in board["attacks"] if not _is_transfer(base, a)]
    resolved = parse(config, base.source)
    check_protocol(resolved)
    return resolved


def _is_transfer(protocol: Protocol, attack: str) -> bool:
    try:
        return make_attack(protocol, attack).access is Access.TRANSFER
    except BenchError:
        return False


def check_eps(threat_model: str, eps: Sequence[float] | None, input_dims: int) -> None:
    """Refuse budgets outside ``threat_model``'s valid range before any work (``bench.attacks.threat``)."""
    if eps is None:
        return
    if len(eps) == 0:
        raise ConfigError("eps must list at least one budget, e.g. eps=[0.1]")
    limit, why = eps_limit(threat_model, input_dims)
    bad = [e for e in eps if not isinstance(e, (int, float)) or isinstance(e, bool) or not math.isfinite(e) or e < 0 or e > limit]
    if bad:
        raise ConfigError(f"eps {', '.join(map(str, bad))} is outside the valid range of threat model {threat_model!r}: "
                          f"accepted: finite numbers from 0 to {limit:g} ({why})")


def check_model_name(name: Any, results: Path | None) -> str:
    """A name for the user's model: safe as a folder and in every table, and no registered defense's or
    shipped reference's (its rows would be mistaken for theirs)."""
    from bench.catalog import DEFENSES

    name = safe_name(name, "name")
    if name in DEFENSES.names():
        raise ConfigError(f"name {name!r} is a registered defense's; choose a name of your own for your model "
                          f"(registered: {', '.join(DEFENSES.names())})")
    roots = {Path("results") / REFERENCE_FOLDER}
    if results is not None:
        roots.add(Path(results) / REFERENCE_FOLDER)
    for root in roots:
        taken = sorted(p.parent.name for p in root.glob(f"*/{folder_name(name)}")) if root.is_dir() else []
        if taken:
            raise ConfigError(f"name {name!r} is a shipped reference's (in {root}/{taken[0]}); choose another name")
    return name


@dataclass
class UserNetwork(Defense):
    """A network trained elsewhere, as records name it: no defense of the harness, its own weights."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "origin": "user"}


def evaluate(
    model: nn.Module,
    images: Any = None,
    labels: Any = None,
    threat_model: str = "linf",
    eps: Sequence[float] | None = None,
    attacks: Sequence[str] | None = None,
    *,
    name: str = "user_model",
    protocol: str | Protocol = DEFAULT_PROTOCOL,
    seed: int = 0,
    n: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    data_name: str = "user_data",
    data_source: str = "images passed to bench.evaluate",
    progress: bool = False,
    precision: str = "auto",
    results: str | Path | None = None,
    checkpoints: str | Path = "checkpoints",
    force: bool = False,
    compile: bool = False,
    source: str | None = None,
) -> EvaluationResult:
    """Attack ``model`` (a module mapping images in [0, 1] to logits) as a registered defense is attacked.

    ``images``/``labels``: uint8, or float in [0, 1], [N, C, H, W], with their true labels; by
    default (None) the protocol's own evaluation images, its first ``n_examples`` test images,
    so that the model lands under the protocol's hash, in the same leaderboard as its defenses.
    ``eps``: the budgets (default: the protocol's grid for ``threat_model``; 0 is always added,
    for the eps = 0 check); ``n``: only the first n images. ``attacks``: registered attack
    names of that threat model (default: the protocol's leaderboard suite, transfer attacks
    included on the protocol's own data, where the protocol's baseline of another seed is the
    surrogate, trained under ``checkpoints`` if needed). ``results``: a results folder to write
    the records to as they finish (records already there for the same weights are reused; of
    other weights, refused unless ``force``); None keeps them in memory (``to_record`` writes
    them). ``precision``: of PGD's and FGSM's gradient passes (auto, fp32 or bf16; every success
    is confirmed in fp32). ``source``: how the records say the model was handed over (``obtained_with``).
    """
    from bench.pipeline import Settings, load_data, obtain_surrogate

    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module mapping images in [0, 1] to logits, got {type(model).__name__}")
    name = check_model_name(name, Path(results) if results is not None else None)
    seed = check_seed(seed)
    own_data = images is None
    if own_data != (labels is None):
        raise ConfigError("give both images and labels, or neither (the protocol's own evaluation images)")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    base = load_protocol(protocol) if isinstance(protocol, str) else protocol
    split = None
    if own_data:
        split = load_data(base)
        dataset = split.dataset
        count = min(n or base.evaluation.n_examples, len(dataset.test_y))
        if n is not None and n > len(dataset.test_y):
            raise ConfigError(f"n = {n} exceeds the {len(dataset.test_y)} test images of {dataset.name}")
        x, y = to_float(dataset.test_x[:count]), dataset.test_y[:count].long()
    else:
        x = _as_images(images)
        y = _as_labels(labels, len(x))
        if n is not None:
            x, y = x[:n], y[:n]
    check_eps(threat_model, eps, int(x[0].numel()))
    proto = resolve_protocol(base, threat_model, eps, n if own_data else len(x), batch_size, own_data)
    surrogate_possible = own_data
    if attacks is None:
        if threat_model == "linf" and proto.leaderboard is not None:
            names = list(proto.suite())
        else:
            names = [a for a in proto.attacks if make_attack(proto, a).threat_model == threat_model]
        chosen = [a for a in (make_attack(proto, a) for a in names) if surrogate_possible or a.access is not Access.TRANSFER]
    else:
        chosen = [make_attack(proto, a) for a in dict.fromkeys(attacks)]
    for attack in chosen:
        if attack.threat_model != threat_model:
            raise ConfigError(f"attack {attack.name!r} is a {attack.threat_model} attack; threat_model is {threat_model!r}")
        if attack.access is Access.TRANSFER and not surrogate_possible:
            raise ConfigError(f"attack {attack.name!r} transfers from a surrogate trained on the protocol's data, which "
                              "images of your own do not match; evaluate on the protocol's own images (no images/--data) "
                              "or use white-box and query attacks")
    if not chosen:
        raise ConfigError(f"no attack to run for threat model {threat_model!r}; pass attacks=[...]")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    was_training = model.training
    model = model.to(dev).eval()
    x, y = x.to(dev), y.to(dev)
    classes = _num_classes(model, x, y)
    if own_data:
        if classes != dataset.num_classes:
            raise ConfigError(f"the model returns {classes} logits per image, but protocol {proto.name}'s data set "
                              f"{dataset.name} has {dataset.num_classes} classes")
        description: ImageDataset | EvaluationData = dataset
    else:
        description = EvaluationData(data_name, data_source, len(x), tuple(x.shape[1:]), classes, images_digest(x, y))
    info = {"name": name, "parameters": sum(p.numel() for p in model.parameters()), "weights_sha256": weights_digest(model),
            "evaluated_in_eval_mode": True, "was_in_train_mode": was_training, "trained_now": False,
            "training": {"train_seconds": 0.0, "history": []}}
    if source:
        info["obtained_with"] = source
    target = Target(UserNetwork(name), model, info, randomized=False)
    options = EngineOptions(dev, resolve_precision(precision, dev), compile, progress, force)
    folder = None if results is None else record_path(Path(results), proto.name, proto.hash, name, seed, "any").parent
    settings = Settings(Path(results or "results"), Path(checkpoints), dev, False, progress)
    surrogate = (lambda: obtain_surrogate(proto, split, seed, settings)) if split is not None else None
    with lock.held(folder, f"evaluating {name} seed {seed} ({folder})", progress) if folder is not None else nullcontext():
        evaluation = evaluate_model(proto, target, EvaluationSet(x, y, description, classes), seed, chosen, options,
                                    folder=folder, surrogate=surrogate)
    records, summary = evaluation.records, evaluation.summary
    worst = {float(e): w.accuracy for e, w in summary.worst_case.get(threat_model, {}).items()}
    per_attack = {rec.attack.name: {float(e): a for e, a in rec.metrics.robust_accuracy.items()} for rec in records}
    full = max(records, key=lambda r: r.metrics.n_examples)
    return EvaluationResult(name, threat_model, proto, seed, tuple(records), summary, full.metrics.n_examples, was_training,
                            full.metrics.clean_accuracy, worst, per_attack, evaluation.paths)


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
