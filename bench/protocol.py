"""Protocols: versioned config files that fix everything a result depends on.

A protocol is a YAML file (``bench/protocols/<name>.yaml`` or any path) naming the data set,
model, training schedule, evaluation set, threat models with their eps grids, attack
settings, seeds and per-defense parameters. It is parsed once, here, into the typed, frozen
:class:`Protocol`; every structural rule and every enumerated value is checked at that
moment, with the accepted values in the message, so nothing fails later for a typo. (Which
parameters each defense and attack accepts is known only to their factories: the pipeline
binds them against the factory signatures, also before any work, see
``bench.pipeline.factories.check_protocol``.)

``--set key=value`` overrides are validated before the typed view is built: the key must be one
the protocol accepts (in the file, or a key the file leaves out, such as ``training.grad_clip``)
and the value must have the type of the value it replaces. The resolved config dict is kept as read (defaults are
filled into the typed view, never into the dict) and hashed (SHA-256 of its canonical JSON);
the hash is written into every record, so two results are comparable exactly when their
hashes match. See docs/methods.md#1-data-and-protocols for the shipped protocols.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import yaml

import bench.validate as validate
from bench.errors import ConfigError, UnknownNameError

DEFAULT_PROTOCOL = "quick"  # what run, eval and bench.evaluate use without a protocol; the report page opens on it
REQUIRED_SECTIONS = ("name", "version", "description", "dataset", "model", "training", "evaluation", "threat_models", "attacks", "seeds")
OPTIONAL_SECTIONS = ("defenses", "leaderboard")
TRAINING_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule", "augment", "grad_clip")
EVALUATION_KEYS = ("n_examples", "batch_size", "curve")
LEADERBOARD_KEYS = ("attacks", "convergence", "reference")
CONVERGENCE_KEYS = ("attack", "steps_factor", "restarts", "n_examples", "tolerance", "eps")
# Sections whose contents the training of a model depends on; the rest only affect evaluation.
TRAINING_SECTIONS = ("dataset", "model", "training")

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "cyclic")
AUGMENTATIONS = ("none", "crop_flip")
# How an eps grid is walked (``bench.evaluation.curves``): every eps afresh; only the
# survivors of the previous eps; largest eps first with warm starts.
CURVES = ("independent", "survivors", "descending")
NORMALIZATIONS = ("dataset", "none")


def _frozen(value: Any) -> Any:
    """A read-only deep copy: mappings become read-only views, lists tuples (``thaw`` undoes it)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    val_fraction: float = 0.0  # held out from the training split for best-checkpoint selection
    split_seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the data set's factory

    @property
    def downloads(self) -> bool:
        return bool(self.options.get("download"))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    normalization: str | Mapping[str, tuple[float, ...]] = "dataset"  # dataset | none | {mean, std}
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the model's factory


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: str = "none"
    grad_clip: float | None = None  # max L2 norm of the whole gradient per step; None: no clipping


@dataclass(frozen=True)
class EvaluationSpec:
    n_examples: int  # the first n test images
    batch_size: int
    curve: str = "independent"


@dataclass(frozen=True)
class ConvergenceSpec:
    """The convergence check: ``attack`` rerun with ``steps_factor`` times its steps and ``restarts``
    restarts on the first ``n_examples``, at the eps values ``eps`` of its grid (all when None: a
    robust model pays every eps); more than ``tolerance`` lower accuracy flags the attack as not
    converged (and the stronger run's results enter the worst case)."""

    attack: str
    steps_factor: int = 4
    restarts: int = 2
    n_examples: int = 100
    tolerance: float = 0.02
    eps: tuple[float, ...] | None = None

    @property
    def record_name(self) -> str:
        return f"{self.attack}{CONVERGENCE_SUFFIX}"


CONVERGENCE_SUFFIX = "_convergence"


DEFAULT_REFERENCE = "baseline"


@dataclass(frozen=True)
class LeaderboardSpec:
    """The attacks whose per-example worst case is the leaderboard number (what a plain
    ``bench run`` runs), and the convergence check of its main gradient attack."""

    attacks: tuple[str, ...]
    convergence: ConvergenceSpec | None = None
    reference: str = DEFAULT_REFERENCE  # the defense every other is compared with (paired differences, clean cost)

    @property
    def runs(self) -> tuple[str, ...]:
        """Every record the suite writes: its attacks, then the convergence rerun."""
        return self.attacks + ((self.convergence.record_name,) if self.convergence else ())


def middle_eps(grid: Sequence[float]) -> float:
    """The headline eps of a grid: the middle of its non-zero values (what leaderboards rank by)."""
    nonzero = sorted(e for e in grid if e > 0) or [0.0]
    return nonzero[len(nonzero) // 2]


@dataclass(frozen=True)
class Protocol:
    """A parsed, validated protocol. ``config`` is the resolved dict as read: it is what is
    hashed and what every record repeats; the typed fields are the only way code reads it."""

    config: Mapping[str, Any]
    source: str
    name: str
    version: int
    description: str
    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec
    evaluation: EvaluationSpec
    threat_models: Mapping[str, tuple[float, ...]]  # threat model -> its eps grid, sorted ascending
    attacks: Mapping[str, Mapping[str, Any]]  # the default suite: attack -> its parameters
    seeds: tuple[int, ...]
    defenses: Mapping[str, Mapping[str, Any]]  # defense -> its parameters
    leaderboard: LeaderboardSpec | None = None  # None: the leaderboard is the worst case over every attack run

    def suite(self) -> tuple[str, ...]:
        """What a plain ``bench run`` runs: the leaderboard suite, or every configured attack."""
        return self.leaderboard.runs if self.leaderboard else tuple(self.attacks)

    def headline_eps(self, threat_model: str = "linf") -> float:
        return middle_eps(self.threat_models[threat_model])

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def defense_params(self, defense: str) -> dict[str, Any]:
        """``defenses.<defense>`` as keyword arguments; for ``family:spec`` names, the family's
        parameters updated by those of the full name."""
        params: dict[str, Any] = {}
        if ":" in defense:
            params.update(thaw(self.defenses.get(defense.split(":", 1)[0], {})))
        params.update(thaw(self.defenses.get(defense, {})))
        return params

    def attack_params(self, attack: str) -> dict[str, Any]:
        return thaw(self.attacks.get(attack, {}))

    def eps_grid(self, threat_model: str) -> list[float]:
        return list(self.threat_models[threat_model])

    def training_config(self) -> dict[str, Any]:
        """The sections a trained model depends on (part of its checkpoint key)."""
        return {key: thaw(self.config[key]) for key in TRAINING_SECTIONS}

    def raw_config(self) -> dict[str, Any]:
        """A plain, mutable deep copy of the resolved config (for records and JSON)."""
        return thaw(self.config)

    def __reduce__(self):  # pickles as its source dict: MappingProxyType does not pickle
        return (_rebuild, (thaw(self.config), self.source))


def _rebuild(config: dict[str, Any], source: str) -> Protocol:
    return parse(config, source)


def thaw(value: Any) -> Any:
    """Plain, mutable dicts and lists again (for factories, JSON and hashing)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class _Loader(yaml.SafeLoader):
    """YAML as people write numbers: ``1e-3`` and ``5E4`` are numbers (YAML 1.1 reads them as strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?\.[0-9_]+[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong, and where."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or str(exc).splitlines()[0]}{where}"


def read_yaml(text: str) -> Any:
    """A protocol's (or a grid's, or an override's) YAML, with the numbers read as numbers."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def refuse_unknown(data: Mapping[str, Any], accepted: Sequence[str], where: str) -> None:
    """Refuse keys of ``data`` that ``accepted`` lacks, naming the accepted keys and the closest match of each."""
    unknown = [str(k) for k in data if k not in accepted]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(accepted), n=1, cutoff=0.6)
        hints.append(f"{where}{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(f"unknown key(s) {', '.join(hints)}; accepted: {', '.join(accepted)}")


def check_seed(seed: Any, where: str = "seed") -> int:
    """A seed as the protocol's ``seeds`` take it (and ``--seed``): an integer from 0 to ``validate.MAX_SEED``."""
    return validate.seed(seed, where)


def config_hash(config: Mapping[str, Any]) -> str:
    canonical = json.dumps(thaw(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _protocol_dir():
    return resources.files("bench") / "protocols"


def builtin_protocols() -> dict[str, str]:
    """name -> one-line description of every protocol shipped with the package."""
    out = {}
    for item in sorted(_protocol_dir().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            data = read_yaml(item.read_text())
            out[item.name[: -len(".yaml")]] = str(data.get("description", "")).strip().splitlines()[0]
    return out


def load_protocol(name_or_path: str, overrides: list[str] | tuple[str, ...] | None = None) -> Protocol:
    """Load a shipped protocol by name, or a YAML file by path, apply ``key=value`` overrides, parse it."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"protocol file {name_or_path!r} does not exist")
        text, source = path.read_text(), str(path.resolve())
    else:
        item = _protocol_dir() / f"{name_or_path}.yaml"
        if not item.is_file():
            valid = ", ".join(builtin_protocols())
            raise UnknownNameError(f"unknown protocol {name_or_path!r}; valid protocols: {valid} (or a path to a .yaml file)")
        text, source = item.read_text(), f"bench/protocols/{name_or_path}.yaml"
    try:
        config = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"protocol {source} is not valid YAML: {yaml_problem(exc)}") from None
    parse(config, source)  # the file itself must be valid before overrides are applied to it
    for override in overrides or []:
        apply_override(config, override)
    return parse(config, source)


# -- parsing: one function per section, each raising ConfigError naming the key and what is accepted


class _Section:
    """Reads one mapping of the protocol, naming ``protocol <source>: <path>.<key>`` in every error."""

    def __init__(self, source: str, path: str, data: Any):
        if not isinstance(data, Mapping):
            raise ConfigError(f"protocol {source}: {path} must be a mapping, got {data!r}")
        self.source, self.path, self.data = source, path, data

    def where(self, key: str) -> str:
        return f"protocol {self.source}: {self.path}.{key}"

    def error(self, key: str, value: Any, accepted: str) -> ConfigError:
        return validate.invalid(self.where(key), value, accepted)

    def require(self, key: str) -> Any:
        if key not in self.data:
            raise ConfigError(f"protocol {self.source}: {self.path} lacks the key {key!r}")
        return self.data[key]

    def integer(self, key: str, default: int | None = None, minimum: int | None = 1) -> int:
        value = self.data.get(key, default) if default is not None else self.require(key)
        return validate.integer(value, self.where(key), minimum)

    def number(self, key: str, default: float | None = None, low: float = 0.0, low_inclusive: bool = True,
               high: float | None = None, high_inclusive: bool = False) -> float:
        value = self.data.get(key, default) if default is not None else self.require(key)
        return validate.number(value, self.where(key), low=low, low_inclusive=low_inclusive, high=high,
                               high_inclusive=high_inclusive)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        return validate.choice(self.data.get(key, default), self.where(key), choices)


def _dataset(source: str, data: Any) -> DatasetSpec:
    s = _Section(source, "dataset", data)
    name = s.require("name")
    if not isinstance(name, str) or not name:
        raise s.error("name", name, "the name of a registered data set (bench list datasets)")
    options = {k: v for k, v in data.items() if k not in ("name", "val_fraction", "split_seed")}
    return DatasetSpec(name, s.number("val_fraction", 0.0, high=1.0), s.integer("split_seed", 0, minimum=0), _frozen(options))


def model_spec(source: str, data: Any) -> ModelSpec:
    """The ``model`` section (``source`` names it in errors)."""
    s = _Section(source, "model", data)
    name = s.require("name")
    if not isinstance(name, str) or not name:
        raise s.error("name", name, "the name of a registered model (bench list models)")
    norm = data.get("normalization", "dataset")
    accepted = "dataset, none, or {mean: [numbers], std: [positive numbers]} of equal length"
    if isinstance(norm, Mapping):
        mean, std = norm.get("mean"), norm.get("std")
        numbers = lambda v: isinstance(v, list) and v and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v)  # noqa: E731
        if set(norm) != {"mean", "std"} or not numbers(mean) or not numbers(std) or len(mean) != len(std) or min(std) <= 0:
            raise s.error("normalization", norm, accepted)
        norm = MappingProxyType({"mean": tuple(map(float, mean)), "std": tuple(map(float, std))})
    elif norm not in NORMALIZATIONS:
        raise s.error("normalization", norm, accepted)
    options = {k: v for k, v in data.items() if k not in ("name", "normalization")}
    return ModelSpec(name, norm, _frozen(options))


def _training(source: str, data: Any) -> TrainingSpec:
    s = _Section(source, "training", data)
    refuse_unknown(data, TRAINING_KEYS, f"protocol {source}: training.")
    return TrainingSpec(
        epochs=s.integer("epochs"), batch_size=s.integer("batch_size"),
        lr=s.number("lr", low=0.0, low_inclusive=False),
        optimizer=s.choice("optimizer", OPTIMIZERS, "sgd"),
        momentum=s.number("momentum", 0.0, high=1.0),
        weight_decay=s.number("weight_decay", 0.0),
        schedule=s.choice("schedule", SCHEDULES, "constant"),
        augment=s.choice("augment", AUGMENTATIONS, "none"),
        grad_clip=None if data.get("grad_clip") is None else s.number("grad_clip", low=0.0, low_inclusive=False),
    )


def _evaluation(source: str, data: Any) -> EvaluationSpec:
    s = _Section(source, "evaluation", data)
    refuse_unknown(data, EVALUATION_KEYS, f"protocol {source}: evaluation.")
    return EvaluationSpec(s.integer("n_examples"), s.integer("batch_size"), s.choice("curve", CURVES, "independent"))


def _threat_models(source: str, data: Any) -> Mapping[str, tuple[float, ...]]:
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"protocol {source}: threat_models must be a non-empty mapping of threat model -> {{eps: [...]}}")
    out = {}
    for threat, spec in data.items():
        if isinstance(spec, Mapping):
            refuse_unknown(spec, ("eps",), f"protocol {source}: threat_models.{threat}.")
        eps = spec.get("eps") if isinstance(spec, Mapping) else None
        if not (isinstance(eps, list) and eps and all(isinstance(e, (int, float)) and not isinstance(e, bool)
                                                      and math.isfinite(e) and e >= 0 for e in eps)):
            raise ConfigError(f"protocol {source}: threat_models.{threat}.eps must be a non-empty list of numbers >= 0, got {eps!r}")
        if sorted(eps) != eps or len(set(eps)) != len(eps):
            raise ConfigError(f"protocol {source}: threat_models.{threat}.eps must be sorted ascending without repeats, got {eps!r}")
        out[threat] = tuple(float(e) for e in eps)
    return MappingProxyType(out)


def _parameter_sections(source: str, key: str, data: Any) -> Mapping[str, Mapping[str, Any]]:
    """``attacks`` / ``defenses``: name -> parameters (a mapping, or empty)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"protocol {source}: {key} must be a mapping of name -> parameters, got {data!r}")
    out = {}
    for name, params in data.items():
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"protocol {source}: {key}.{name} must be a mapping of parameters (or empty), got {params!r}")
        out[str(name)] = _frozen(params or {})
    return MappingProxyType(out)


def parse(config: Any, source: str) -> Protocol:
    """Check ``config`` (a resolved protocol dict) and build its typed view; the dict is not changed."""
    if not isinstance(config, dict):
        raise ConfigError(f"protocol {source} must be a mapping at the top level")
    refuse_unknown(config, REQUIRED_SECTIONS + OPTIONAL_SECTIONS, f"protocol {source}: ")
    missing = [key for key in REQUIRED_SECTIONS if key not in config]
    if missing:
        raise ConfigError(f"protocol {source} lacks the section(s) {', '.join(missing)}; required: {', '.join(REQUIRED_SECTIONS)}")
    seeds = config["seeds"]
    if not (isinstance(seeds, list) and seeds):
        raise ConfigError(f"protocol {source}: seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    for seed in seeds:
        check_seed(seed, f"protocol {source}: each of seeds")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"protocol {source}: seeds must not repeat, got {seeds!r}")
    name, version = config["name"], config["version"]
    validate.name(name, f"protocol {source}: name")  # it names the results and checkpoint folders
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"protocol {source}: version must be an integer >= 1, got {version!r}")
    return Protocol(
        config=_frozen(config), source=source, name=name, version=version, description=str(config["description"]),
        dataset=_dataset(source, config["dataset"]), model=model_spec(source, config["model"]),
        training=_training(source, config["training"]), evaluation=_evaluation(source, config["evaluation"]),
        threat_models=_threat_models(source, config["threat_models"]),
        attacks=_parameter_sections(source, "attacks", config["attacks"]),
        seeds=tuple(seeds), defenses=_parameter_sections(source, "defenses", config.get("defenses")),
        leaderboard=_leaderboard(source, config.get("leaderboard")),
    )


def leaderboard_of(config: Mapping[str, Any], source: str = "a record") -> LeaderboardSpec | None:
    """The typed leaderboard suite of a resolved protocol config (e.g. the one a record repeats)."""
    return _leaderboard(source, config.get("leaderboard"))


def _leaderboard(source: str, data: Any) -> LeaderboardSpec | None:
    """``leaderboard: {attacks: [...], convergence: {attack: ..., ...}}``; the names are looked up
    (and the convergence attack's parameters checked) with the other attacks, before any work."""
    if data is None:
        return None
    where = f"protocol {source}: leaderboard"
    if isinstance(data, Mapping):
        refuse_unknown(data, LEADERBOARD_KEYS, f"{where}.")
    if not isinstance(data, Mapping) or set(data) - set(LEADERBOARD_KEYS):
        raise ConfigError(f"{where} must be a mapping with the keys attacks (a list of attack names) and, optionally, "
                          f"convergence and reference (a defense name); got {data!r}")
    attacks = data.get("attacks")
    if not (isinstance(attacks, list) and attacks and all(isinstance(a, str) and a for a in attacks)) or len(set(attacks)) != len(attacks):
        raise ConfigError(f"{where}.attacks must be a non-empty list of distinct attack names, got {attacks!r}")
    reference = data.get("reference", DEFAULT_REFERENCE)
    if not isinstance(reference, str) or not reference:
        raise ConfigError(f"{where}.reference must be a defense name (default {DEFAULT_REFERENCE}), got {reference!r}")
    conv = data.get("convergence")
    if conv is None:
        return LeaderboardSpec(tuple(attacks), None, reference)
    if isinstance(conv, Mapping):
        refuse_unknown(conv, CONVERGENCE_KEYS, f"{where}.convergence.")
    if not isinstance(conv, Mapping) or "attack" not in conv or set(conv) - set(CONVERGENCE_KEYS):
        raise ConfigError(f"{where}.convergence must be a mapping with attack (one of leaderboard.attacks) and optionally "
                          f"steps_factor, restarts, n_examples, tolerance, eps; got {conv!r}")
    if conv["attack"] not in attacks:
        raise ConfigError(f"{where}.convergence.attack = {conv['attack']!r} must be one of leaderboard.attacks ({', '.join(attacks)})")
    eps = conv.get("eps")
    if eps is not None:
        if not (isinstance(eps, list) and eps and all(isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0 for e in eps)):
            raise ConfigError(f"{where}.convergence.eps must be a non-empty list of positive eps values from the attack's "
                              f"grid (or left out: every eps), got {eps!r}")
        eps = tuple(sorted({float(e) for e in eps}))
    spec = ConvergenceSpec(**{**dict(conv), "eps": eps})
    for key, low in (("steps_factor", 1), ("restarts", 1), ("n_examples", 1)):
        value = getattr(spec, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}.convergence.{key} must be an integer >= {low}, got {value!r}")
    if isinstance(spec.tolerance, bool) or not isinstance(spec.tolerance, (int, float)) or not 0 <= spec.tolerance < 1:
        raise ConfigError(f"{where}.convergence.tolerance must be a number in [0, 1), got {spec.tolerance!r}")
    return LeaderboardSpec(tuple(attacks), spec, reference)


# -- overrides


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping",
            type(None): "null"}.get(type(value), type(value).__name__)


# The keys each fixed-shape section accepts, by path; the free-form sections (dataset and model
# options, attack and defense parameters, threat models) accept any key, which their factories or
# the parser check before any work.
_SECTION_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): REQUIRED_SECTIONS + OPTIONAL_SECTIONS, ("training",): TRAINING_KEYS, ("evaluation",): EVALUATION_KEYS,
    ("leaderboard",): LEADERBOARD_KEYS, ("leaderboard", "convergence"): CONVERGENCE_KEYS,
}
_FREE_SECTIONS = ("dataset", "model", "attacks", "defenses", "threat_models")


def _accepted_keys(prefix: tuple[str, ...]) -> tuple[str, ...] | None:
    """The keys the mapping at ``prefix`` accepts; None where any key is accepted."""
    if prefix in _SECTION_KEYS:
        return _SECTION_KEYS[prefix]
    if len(prefix) == 2 and prefix[0] == "threat_models":
        return ("eps",)
    return None if prefix and prefix[0] in _FREE_SECTIONS else ()


def _compatible(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return not (isinstance(old, int) and isinstance(new, float) and not new.is_integer())
    return type(old) is type(new)


def apply_override(config: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. training.epochs=3")
    key, _, raw = override.partition("=")
    parts = key.strip().split(".")
    try:
        value = read_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = config
    for depth, part in enumerate(parts):
        prefix = tuple(parts[:depth])
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(prefix)} is {_type_name(node)}, not a mapping")
        accepted = _accepted_keys(prefix)
        if part not in node and accepted is not None and part not in accepted:
            here = ".".join(parts[: depth + 1])
            valid = ", ".join(sorted(set(accepted) | set(node))) or "(none)"
            raise ConfigError(f"unknown protocol key {here!r} in override {override!r}; keys at this level: {valid}")
        if depth < len(parts) - 1:
            if node.get(part) is None:
                node[part] = {}  # a section the file leaves out (or leaves empty) but the protocol accepts
            node = node[part]
    leaf = parts[-1]
    if leaf in node and not _compatible(node[leaf], value):
        raise ConfigError(
            f"override {override!r}: {key} is {_type_name(node[leaf])} (currently {node[leaf]!r}), "
            f"got {_type_name(value)}"
        )
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(node.get(leaf), float):
        value = float(value)
    node[leaf] = copy.deepcopy(value)
