"""From (protocol, defense, seed) to a ready pipeline: trained now, resumed, or reloaded.

The one place that knows how a defense's model comes to be: it resolves the ``base`` chain of
input transformations down to the defense whose model is trained, keys that model's
checkpoint folder by everything its training depends on, trains or resumes or reloads it,
and wraps it back up the chain. The rule for transfer surrogates (a ``baseline`` of another
seed, never the target itself) lives here too. ``bench run``, ``bench sweep``, ``bench
analyze`` and ``bench figures`` all come through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.attacks.precision import resolve_precision
from bench.data.base import ImageDataset
from bench.defenses.base import Defense, TrainingContext
from bench.errors import BenchError, ConfigError
from bench.models.digest import weights_digest
from bench.pipeline.factories import build_model, make_dataset, make_defense
from bench.protocol import Protocol, config_hash
from bench.records import lock
from bench.records.store import folder_name
from bench.training import TrainResult, load_trained, train

SURROGATE_DEFENSE = "baseline"  # transfer attacks craft on an undefended model of the same architecture...
SURROGATE_SEED_OFFSET = 1000  # ...trained with another seed, never the target itself


@dataclass
class Settings:
    """Where a run reads and writes, on which device, and whether it redoes finished work."""

    results_dir: Path = Path("results")
    checkpoint_dir: Path = Path("checkpoints")
    device: torch.device | None = None
    force: bool = False
    progress: bool = True
    compile: bool = False  # torch.compile the attacked model (same results; faster on a GPU after warm-up)
    precision: str = "auto"  # of the attacks' gradient passes: auto | fp32 | bf16 (bench.attacks.precision)

    def resolved_device(self) -> torch.device:
        return self.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def resolved_precision(self) -> str:
        return resolve_precision(self.precision, self.resolved_device())


def parse_device(name: str | None) -> torch.device | None:
    """``--device`` as a torch device (None: cuda when available), refused clearly when unusable."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise BenchError(f"--device {name!r} is not a torch device ({exc}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return device


@dataclass(frozen=True)
class DataSplit:
    """The data set and its deterministic train/validation split (indices into the training set)."""

    dataset: ImageDataset
    train_indices: torch.Tensor
    val_indices: torch.Tensor


def load_data(protocol: Protocol) -> DataSplit:
    """The protocol's data set and split; refuses an ``evaluation.n_examples`` beyond its test images (a number
    the records would repeat while measuring fewer)."""
    dataset = make_dataset(protocol)
    if protocol.evaluation.n_examples > len(dataset.test_y):
        raise ConfigError(f"protocol {protocol.source}: evaluation.n_examples = {protocol.evaluation.n_examples} exceeds "
                          f"the {len(dataset.test_y)} test images of {dataset.name}; accepted: 1 to {len(dataset.test_y)}")
    n = len(dataset.train_y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(protocol.dataset.split_seed))
    n_val = int(round(n * protocol.dataset.val_fraction))
    return DataSplit(dataset, order[n_val:].sort().values, order[:n_val].sort().values)


def base_chain(protocol: Protocol, defense: Defense) -> list[Defense]:
    """``defense``, the defense it wraps, and so on down to the one whose model is trained (last)."""
    chain = [defense]
    while chain[-1].base is not None:
        names = [d.name for d in chain]
        if chain[-1].base in names:
            raise ConfigError(f"defense bases form a cycle: {' -> '.join(names + [chain[-1].base])}; "
                              "a base must end in a trained defense")
        chain.append(make_defense(protocol, chain[-1].base))
    return chain


def is_randomized(protocol: Protocol, defense: Defense) -> bool:
    """Whether the deployed pipeline draws noise anywhere in its base chain."""
    return any(d.randomized for d in base_chain(protocol, defense))


def surrogate_seed(seed: int) -> int:
    return seed + SURROGATE_SEED_OFFSET


def trained_models(protocol: Protocol, defense_name: str, seed: int, needs_surrogate: bool) -> list[tuple[str, int]]:
    """The (defense, seed) of every model attacking ``defense_name`` at ``seed`` trains unless it
    exists: the root of its base chain and, for transfer attacks, the surrogate."""
    root = base_chain(protocol, make_defense(protocol, defense_name))[-1]
    models = [(root.name, seed)]
    if needs_surrogate:
        models.append((SURROGATE_DEFENSE, surrogate_seed(seed)))
    return models


def training_key(protocol: Protocol, defense: Defense, seed: int) -> str:
    return config_hash({"training": protocol.training_config(), "defense": defense.describe(), "seed": seed})


def checkpoint_folder(checkpoint_dir: Path, protocol: Protocol, defense: Defense, seed: int) -> Path:
    """Where a model's checkpoints live: keyed by everything its training depends on."""
    key = training_key(protocol, defense, seed)
    return Path(checkpoint_dir) / protocol.name / folder_name(defense.name) / f"seed{seed}-{key[:12]}"


@dataclass
class ReadyModel:
    """A deployed pipeline (in eval mode) and what its record says about the model."""

    pipeline: nn.Module
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def train_seconds(self) -> float:
        return float(self.info["training"]["train_seconds"])


def obtain_model(protocol: Protocol, defense: Defense, data: DataSplit, seed: int, settings: Settings) -> ReadyModel:
    """The defended pipeline for ``seed``: the root of the base chain trained, resumed or
    reloaded, then wrapped by each input transformation up the chain."""
    chain = base_chain(protocol, defense)
    ready = _obtain_root(protocol, chain[-1], data, seed, settings)
    model = ready.pipeline
    for wrapper in reversed(chain[:-1]):
        model = wrapper.wrap(model)
    info = dict(ready.info)
    if len(chain) > 1:
        info["base_defense"] = defense.base
    return ReadyModel(model.eval(), info)


def _obtain_root(protocol: Protocol, defense: Defense, data: DataSplit, seed: int, settings: Settings) -> ReadyModel:
    dataset = data.dataset
    device = settings.resolved_device()
    published = defense.pretrained(dataset, device)
    if published is not None:
        model, source = published
        info = {"name": defense.name, "parameters": sum(p.numel() for p in model.parameters()), "pretrained": source,
                "weights_sha256": weights_digest(model), "trained_now": False, "training": {"train_seconds": 0.0, "history": []}}
        return ReadyModel(defense.wrap(model.to(device).eval()), info)
    key = training_key(protocol, defense, seed)
    folder = checkpoint_folder(settings.checkpoint_dir, protocol, defense, seed)
    # one process trains a checkpoint folder at a time; another waits, then reloads what it finished
    with lock.held(folder, f"training {defense.name} (seed {seed}) into {folder}", settings.progress):
        result, trained_now, model = _train_or_load(protocol, defense, data, seed, settings, folder)
    info = {
        "name": protocol.model.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_key": key,
        "checkpoint": str(folder / "final.pt"),
        "weights_sha256": weights_digest(result.model),
        "trained_now": trained_now,
        "training": result.summary,
    }
    return ReadyModel(defense.wrap(result.model).eval(), info)


def _train_or_load(protocol: Protocol, defense: Defense, data: DataSplit, seed: int, settings: Settings,
                   folder: Path) -> tuple[TrainResult, bool, nn.Module]:
    dataset = data.dataset
    device = settings.resolved_device()
    torch.manual_seed(seed)
    model = build_model(protocol.model, dataset.channels, dataset.num_classes, dataset.channel_stats())
    defense.prepare(model)
    result: TrainResult | None = None if settings.force else load_trained(model, folder, device)
    trained_now = result is None
    if result is None:
        if settings.force:
            for stale in ("last.pt", "best.pt"):
                (folder / stale).unlink(missing_ok=True)
        ctx = TrainingContext(dataset, data.train_indices, device, seed, protocol, model)
        if settings.progress:
            print(f"training {defense.name} (seed {seed}) on {dataset.name}; checkpoints in {folder}")
        result = train(model, defense.objective(ctx), ctx, data.val_indices, protocol.training, folder, settings.progress)
    elif settings.progress:
        print(f"reusing trained {defense.name} (seed {seed}) from {folder}")
    return result, trained_now, model


def obtain_surrogate(protocol: Protocol, data: DataSplit, seed: int, settings: Settings) -> tuple[nn.Module, dict[str, Any]]:
    """The transfer surrogate for a target of ``seed`` and what the record says about it."""
    s_seed = surrogate_seed(seed)
    ready = obtain_model(protocol, make_defense(protocol, SURROGATE_DEFENSE), data, s_seed, settings)
    return ready.pipeline, {"defense": SURROGATE_DEFENSE, "seed": s_seed, "checkpoint": ready.info["checkpoint"]}
