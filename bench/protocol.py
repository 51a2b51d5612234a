"""Protocols: versioned config files that fix everything a result depends on.

A protocol is a YAML file (``bench/protocols/<name>.yaml`` or any path) naming the data set,
model, training schedule, evaluation set, threat models with their eps grids, attack
settings, seeds and per-defense parameters. ``--set key=value`` overrides are validated
against the file: the key must exist and the value must have a compatible type. The
resolved protocol is hashed (SHA-256 of its canonical JSON) and the hash is written into
every record it produces, so two results are comparable exactly when their hashes match.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError, UnknownNameError

REQUIRED_SECTIONS = ("name", "version", "description", "dataset", "model", "training", "evaluation", "threat_models", "attacks", "seeds")
# Sections whose contents the training of a model depends on; the rest only affect evaluation.
TRAINING_SECTIONS = ("dataset", "model", "training")


@dataclass(frozen=True)
class Protocol:
    config: dict[str, Any]
    source: str

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def version(self) -> int:
        return self.config["version"]

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    def defense_params(self, defense: str) -> dict[str, Any]:
        return dict(self.config.get("defenses", {}).get(defense, {}))

    def training_config(self) -> dict[str, Any]:
        return {key: self.config[key] for key in TRAINING_SECTIONS}


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _protocol_dir():
    return resources.files("bench") / "protocols"


def builtin_protocols() -> dict[str, str]:
    """name -> one-line description of every protocol shipped with the package."""
    out = {}
    for item in sorted(_protocol_dir().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            data = yaml.safe_load(item.read_text())
            out[item.name[: -len(".yaml")]] = str(data.get("description", "")).strip().splitlines()[0]
    return out


def load_protocol(name_or_path: str, overrides: list[str] | None = None) -> Protocol:
    """Load a shipped protocol by name, or a YAML file by path, and apply ``key=value`` overrides."""
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
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"protocol {source} is not valid YAML: {exc}") from None
    validate(config, source)
    for override in overrides or []:
        apply_override(config, override)
    validate(config, source)
    return Protocol(config, source)


def validate(config: Any, source: str) -> None:
    if not isinstance(config, dict):
        raise ConfigError(f"protocol {source} must be a mapping at the top level")
    missing = [key for key in REQUIRED_SECTIONS if key not in config]
    if missing:
        raise ConfigError(f"protocol {source} lacks the section(s) {', '.join(missing)}; required: {', '.join(REQUIRED_SECTIONS)}")
    seeds = config["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise ConfigError(f"protocol {source}: seeds must be a non-empty list of integers, got {seeds!r}")
    for threat, spec in config["threat_models"].items():
        eps = spec.get("eps") if isinstance(spec, dict) else None
        if not (isinstance(eps, list) and eps and all(isinstance(e, (int, float)) and e >= 0 for e in eps)):
            raise ConfigError(f"protocol {source}: threat_models.{threat}.eps must be a non-empty list of numbers >= 0, got {eps!r}")
        if sorted(eps) != eps:
            raise ConfigError(f"protocol {source}: threat_models.{threat}.eps must be sorted ascending, got {eps!r}")
    for key in ("epochs", "batch_size"):
        value = config["training"].get(key)
        if not (isinstance(value, int) and value > 0):
            raise ConfigError(f"protocol {source}: training.{key} must be a positive integer, got {value!r}")
    n = config["evaluation"].get("n_examples")
    if not (isinstance(n, int) and n > 0):
        raise ConfigError(f"protocol {source}: evaluation.n_examples must be a positive integer, got {n!r}")


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)


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
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = config
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None and parts[0] == "defenses" and isinstance(node, dict):
            child = node.setdefault(part, {})  # defense parameters may be set for any defense
        if not isinstance(child, dict):
            here = ".".join(parts[: depth + 1])
            valid = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a mapping)"
            raise ConfigError(f"unknown protocol key {here!r} in override {override!r}; keys at this level: {valid}")
        node = child
    leaf = parts[-1]
    if leaf not in node and parts[0] != "defenses":
        valid = ", ".join(sorted(node))
        raise ConfigError(f"unknown protocol key {key!r} in override {override!r}; keys at this level: {valid}")
    if leaf in node and not _compatible(node[leaf], value):
        raise ConfigError(
            f"override {override!r}: {key} is a {_type_name(node[leaf])} (currently {node[leaf]!r}), "
            f"got a {_type_name(value)}"
        )
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(node.get(leaf), float):
        value = float(value)
    node[leaf] = copy.deepcopy(value)
