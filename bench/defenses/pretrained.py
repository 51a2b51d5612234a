"""Families of published, already-trained models: ``robustbench:<name>``, ``torchvision:<arch>``, ``timm:<arch>``.

None of them is trained here and none downloads anything: each reads checkpoint files on
disk, and a missing file is an error that says where the file must lie and how to get it.
The network is wrapped like every model of the harness, as a :class:`~bench.models.Classifier`
taking images in [0, 1] and returning logits, with two feature ``taps`` found generically
(:func:`find_taps`): ``first_conv``, the first convolution to run, and ``last_block``, the
block around the last one.

Before it is used, the network classifies two blank images of the protocol's data set: a
data set it was not made for (channels, size, number of classes) is reported as a
:class:`~bench.errors.ConfigError`, never evaluated. Every model records its files with
their SHA-256 in the ``pretrained`` entry of its result records.

Normalisation: RobustBench's models take [0, 1] images and normalise inside themselves, so
nothing is added. For torchvision and timm checkpoints the normalisation they were trained
with is unknown; none is applied unless ``mean`` and ``std`` are given (e.g. torchvision's
ImageNet weights need ``mean=[0.485, 0.456, 0.406]``, ``std=[0.229, 0.224, 0.225]``). A
wrong choice shows as low clean accuracy in the records, which also record the choice.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import math
import pickle
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bench.data.base import ImageDataset
from bench.defenses.base import Defense
from bench.errors import CheckpointError, ConfigError, UnknownNameError
from bench.zoo.weights import read_state_dict
from bench.models.base import Classifier
from bench.registry import DEFENSES
from bench.zoo.compat import import_robustbench

# Image shape and number of classes of RobustBench's data sets, as its models receive them
# (ImageNet after RobustBench's resize-256/crop-224 preprocessing, which lies outside its models).
ROBUSTBENCH_DATA = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100), "imagenet": ((3, 224, 224), 1000)}
ROBUSTBENCH_THREAT_MODELS = ("Linf", "L2", "corruptions")  # its corruptions_3d board evaluates the corruptions models
# Errors torch.load and load_state_dict raise on files that are not what they should be.
_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError)


# --- robustbench:<model name> -------------------------------------------------------------------


@dataclass(kw_only=True)
class RobustBenchModel(Defense):
    """A RobustBench model-zoo entry, read from RobustBench's local layout by ``robustbench.utils.load_model``."""

    model_name: str
    model_dir: Path
    dataset: str
    threat_model: str
    n_files: int  # ensembles keep one file per member

    def checkpoint_paths(self) -> list[Path]:
        """Where ``load_model`` reads the weights: ``{model_dir}/{dataset}/{threat model}/{name}.pt``,
        or ``{name}.pt_m{i}.pt`` per ensemble member."""
        folder = self.model_dir / self.dataset / self.threat_model
        if self.n_files == 1:
            return [folder / f"{self.model_name}.pt"]
        return [folder / f"{self.model_name}.pt_m{i}.pt" for i in range(self.n_files)]

    def pretrained(self, dataset: ImageDataset, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
        shape, classes = ROBUSTBENCH_DATA[self.dataset]
        if dataset.image_shape != shape or dataset.num_classes != classes:
            raise ConfigError(
                f"{self.name} was trained on RobustBench's {self.dataset} ({_shape(shape)} images, {classes} classes), but the "
                f"protocol's data set {dataset.name} has {_shape(dataset.image_shape)} images and {dataset.num_classes} classes. "
                f"Evaluate it under a protocol whose data set matches, or choose the model's data set with "
                f"--set defenses.robustbench.dataset=...")
        paths = self.checkpoint_paths()
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise CheckpointError(self._missing_message(missing))
        from robustbench.utils import load_model

        try:
            net = load_model(self.model_name, model_dir=str(self.model_dir), dataset=self.dataset, threat_model=self.threat_model)
        except _READ_ERRORS as exc:
            raise CheckpointError(f"RobustBench could not load {self.model_name} from {', '.join(map(str, paths))}: "
                                  f"{type(exc).__name__}: {exc}. Is it the file RobustBench distributes for this model?") from exc
        model = wrap_network(net, dataset, device, self.name)
        source = {"source": "robustbench", "model_name": self.model_name, "dataset": self.dataset,
                  "threat_model": self.threat_model, "files": [file_record(p) for p in paths],
                  "robustbench_version": version("robustbench")}
        return model, source

    def _missing_message(self, missing: list[Path]) -> str:
        call = (f"load_model({self.model_name!r}, model_dir='models', dataset={self.dataset!r}, "
                f"threat_model={self.threat_model!r})")
        relative = [p.relative_to(self.model_dir) for p in self.checkpoint_paths()]
        return (
            f"RobustBench model {self.model_name} ({self.dataset}, {self.threat_model}): checkpoint file(s) not found:\n"
            + "".join(f"  {p.resolve()}\n" for p in missing)
            + "The harness never downloads checkpoints (RobustBench fetches them from Google Drive or Hugging Face), "
            "so put the file(s) there, or point --set defenses.robustbench.model_dir=DIR at a folder holding "
            + ", ".join(map(str, relative)) + ".\n"
            "On a machine with network and robustbench installed, RobustBench's own loader downloads them into models/:\n"
            f"  python -c \"from bench.zoo import import_robustbench; import_robustbench().{call}\"\n"
            f"(or, where robustbench imports by itself: from robustbench import load_model; {call})"
        )


@DEFENSES.register("robustbench", description="robustbench:<model> - a RobustBench zoo model read from "
                   "{model_dir}/{dataset}/{threat_model}/<model>.pt (never downloaded)")
def robustbench(model_name: str, model_dir: str = "models", dataset: str = "cifar10", threat_model: str = "Linf") -> Defense:
    """A RobustBench model; ``dataset`` and ``threat_model`` name its leaderboard (cifar10/cifar100/imagenet; Linf/L2/corruptions)."""
    family = "robustbench"
    dataset = _choice(family, "dataset", dataset, ROBUSTBENCH_DATA)
    threat_model = _choice(family, "threat_model", threat_model, ROBUSTBENCH_THREAT_MODELS)
    if not isinstance(model_dir, str) or not model_dir:
        raise ConfigError(f"defense family 'robustbench': parameter 'model_dir' must be a folder path; got {model_dir!r}")
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    boards = model_dicts[BenchmarkDataset(dataset)]
    entries = boards.get(ThreatModel(threat_model))
    if entries is None:
        raise ConfigError(f"RobustBench has no {dataset} {threat_model} leaderboard; its {dataset} threat models are: "
                          + ", ".join(t.value for t in boards))
    if model_name not in entries:
        raise UnknownNameError(f"unknown RobustBench model {model_name!r} for {dataset} {threat_model}"
                               + _suggest(model_name, entries) + f"; all {len(entries)}: " + ", ".join(sorted(entries)))
    if _served_by_timm(model_name, dataset, threat_model, entries[model_name]["gdrive_id"]):
        raise ConfigError(f"RobustBench serves {model_name} ({dataset}, {threat_model}) through timm from Hugging Face, "
                          f"not from its local model folder, so it cannot be loaded offline by this family")
    gdrive_id = entries[model_name]["gdrive_id"]
    return RobustBenchModel(
        f"{family}:{model_name}",
        {"model_name": model_name, "model_dir": model_dir, "dataset": dataset, "threat_model": threat_model},
        model_name=model_name, model_dir=Path(model_dir).expanduser(), dataset=dataset, threat_model=threat_model,
        n_files=len(gdrive_id) if isinstance(gdrive_id, list) else 1,
    )


def _served_by_timm(model_name: str, dataset: str, threat_model: str, gdrive_id: Any) -> bool:
    """Whether ``load_model`` would take its timm branch (``pretrained=True``: a download), by its own naming rule."""
    import timm

    timm_name = f"{model_name.lower().replace('-', '_')}_{dataset}_{threat_model.lower()}"
    return gdrive_id is None or timm.is_model(timm_name)


# --- torchvision:<arch> and timm:<arch> ---------------------------------------------------------


@dataclass(kw_only=True)
class CheckpointModel(Defense):
    """An architecture built by ``build(num_classes, channels)`` with its weights read from a state-dict file."""

    library: str
    architecture: str
    build: Callable[[int, int], nn.Module]
    checkpoint: Path
    num_classes: int | None
    mean: list[float] | None
    std: list[float] | None

    def pretrained(self, dataset: ImageDataset, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
        num_classes = self.num_classes or dataset.num_classes
        net = self.build(num_classes, dataset.channels)
        state = read_state_dict(self.checkpoint)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{self.checkpoint} does not fit {self.library}'s {self.architecture} with "
                                  f"{num_classes} classes and {dataset.channels} input channels: {exc}") from exc
        channels = dataset.channels
        mean = _per_channel(self.mean, channels, "mean", self.name)
        std = _per_channel(self.std, channels, "std", self.name)
        model = wrap_network(net, dataset, device, self.name, mean, std)
        source = {"source": self.library, "architecture": self.architecture, "num_classes": num_classes,
                  "normalization": None if mean is None else {"mean": mean, "std": std},
                  "files": [file_record(self.checkpoint)], f"{self.library}_version": version(self.library)}
        return model, source


@DEFENSES.register("torchvision", description="torchvision:<arch> - a torchvision classifier with weights from "
                   "defenses.torchvision.checkpoint (a state-dict file)")
def torchvision_model(arch: str, checkpoint: str | None = None, num_classes: int | None = None,
                      mean: list[float] | None = None, std: list[float] | None = None) -> Defense:
    """``torchvision.models.get_model(arch, num_classes=...)`` (3 input channels) with the weights of ``checkpoint``."""
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)  # the image classifiers
    if arch not in names:
        raise UnknownNameError(f"unknown torchvision classifier {arch!r}" + _suggest(arch, names) + "; all: " + ", ".join(names))

    def build(classes: int, channels: int) -> nn.Module:
        return torchvision.models.get_model(arch, weights=None, num_classes=classes)

    return _checkpoint_defense("torchvision", arch, build, checkpoint, num_classes, mean, std)


def timm_model(arch: str, checkpoint: str | None = None, num_classes: int | None = None,
               mean: list[float] | None = None, std: list[float] | None = None) -> Defense:
    """``timm.create_model(arch, pretrained=False, num_classes=..., in_chans=<data set's>)`` with the weights of ``checkpoint``."""
    import timm

    if not timm.is_model(arch):
        raise UnknownNameError(f"unknown timm model {arch!r}" + _suggest(arch, timm.list_models())
                               + "; list them with python -c \"import timm; print(timm.list_models())\"")

    def build(classes: int, channels: int) -> nn.Module:
        return timm.create_model(arch, pretrained=False, num_classes=classes, in_chans=channels)

    return _checkpoint_defense("timm", arch, build, checkpoint, num_classes, mean, std)


if importlib.util.find_spec("timm") is not None:  # optional (robustbench pulls it in); without it there is no such family
    DEFENSES.register("timm", description="timm:<arch> - a timm model with weights from defenses.timm.checkpoint "
                      "(a state-dict file)")(timm_model)


def _checkpoint_defense(library: str, arch: str, build: Callable[[int, int], nn.Module], checkpoint: str | None,
                        num_classes: int | None, mean: list[float] | None, std: list[float] | None) -> CheckpointModel:
    name = f"{library}:{arch}"
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ConfigError(f"defense {name!r} needs its weights: --set defenses.{library}.checkpoint=FILE "
                          "(a state dict saved with torch.save, or a dict holding one under 'state_dict' or 'model')")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise CheckpointError(f"defense {name!r}: checkpoint file {path.resolve()} does not exist "
                              f"(set by defenses.{library}.checkpoint; the harness never downloads weights)")
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1):
        raise ConfigError(f"defense {name!r}: parameter 'num_classes' must be a positive integer or null; got {num_classes!r}")
    if (mean is None) != (std is None):
        raise ConfigError(f"defense {name!r}: give both 'mean' and 'std' (per channel, in [0, 1] units) or neither")
    for param, values, low in (("mean", mean, -math.inf), ("std", std, 0.0)):
        if values is not None and not (isinstance(values, list) and values and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > low for v in values)):
            raise ConfigError(f"defense {name!r}: parameter {param!r} must be a list of finite numbers"
                              + (" > 0" if low == 0 else "") + f", one per channel or one for all; got {values!r}")
    params = {"arch": arch, "checkpoint": checkpoint, "num_classes": num_classes, "mean": mean, "std": std}
    return CheckpointModel(name, params, library=library, architecture=arch, build=build, checkpoint=path,
                           num_classes=num_classes, mean=mean, std=std)


# --- shared: wrapping, checks, taps, provenance ---------------------------------------------------


def wrap_network(net: nn.Module, dataset: ImageDataset, device: torch.device, name: str,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Classifier:
    """``net`` as a harness model (normalisation inside, identity by default), in eval mode on ``device``,
    checked against ``dataset`` and given its taps."""
    channels = dataset.channels
    model = Classifier(net.eval(), mean or [0.0] * channels, std or [1.0] * channels).to(device).eval()
    convs = _probe(model, dataset, device, name)
    model.taps = {tap: f"net.{path}" for tap, path in find_taps(net, convs).items()}
    return model


def _probe(model: Classifier, dataset: ImageDataset, device: torch.device, name: str) -> list[str]:
    """Classify two blank images of ``dataset``'s shape; the convolutions of ``model.net`` in the order they ran."""
    names = {module: path for path, module in model.net.named_modules() if isinstance(module, nn.Conv2d)}
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda module, args, out: order.append(names[module])) for m in names]
    x = torch.full((2, *dataset.image_shape), 0.5, device=device)
    try:
        with torch.no_grad():
            logits = model(x)
    except (RuntimeError, ValueError, AssertionError, TypeError, IndexError) as exc:  # how networks reject a shape
        raise ConfigError(f"{name} cannot classify the protocol's data set {dataset.name} ({_shape(dataset.image_shape)} "
                          f"images): {exc}") from exc
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, dataset.num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(f"{name} returns outputs of shape {got} for 2 images, but the protocol's data set {dataset.name} "
                          f"has {dataset.num_classes} classes (expected logits of shape (2, {dataset.num_classes}))")
    return order


def find_taps(net: nn.Module, conv_order: list[str]) -> dict[str, str]:
    """``first_conv``: the first convolution to run; ``last_block``: the module around the last one.

    ``last_block`` is found by descending from ``net`` into the child holding the last
    convolution while that child holds more than half of the convolutions below the current
    module (a wrapper or a network body), and stopping at the first that holds fewer (a stage:
    ``layer4`` of a ResNet, ``block3`` of a WideResNet). No convolutions: no taps.
    """
    if not conv_order:
        return {}
    last, path, node = conv_order[-1], "", net
    while not isinstance(node, nn.Conv2d):
        total = _count_convs(node)
        child_name, child = next((n, c) for n, c in node.named_children()
                                 if last == _join(path, n) or last.startswith(_join(path, n) + "."))
        path, node = _join(path, child_name), child
        if 2 * _count_convs(child) <= total:
            break
    return {"first_conv": conv_order[0], "last_block": path}


def _count_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def file_record(path: Path) -> dict[str, str]:
    """The absolute path and SHA-256 of a file, for the records."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path.resolve()), "sha256": digest.hexdigest()}


def _per_channel(values: list[float] | None, channels: int, param: str, name: str) -> list[float] | None:
    if values is None or len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    raise ConfigError(f"defense {name!r}: parameter {param!r} has {len(values)} values; the data set has {channels} channel(s)")


def _choice(family: str, param: str, value: Any, choices: Sequence[str] | dict[str, Any]) -> str:
    """``value`` as spelled in ``choices``, matched case-insensitively (linf = Linf)."""
    match = [c for c in choices if isinstance(value, str) and c.lower() == value.lower()]
    if not match:
        raise ConfigError(f"defense family {family!r}: parameter {param!r} must be one of {', '.join(choices)}; got {value!r}")
    return match[0]


def _suggest(name: str, names: Sequence[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))
