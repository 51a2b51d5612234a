"""The grid file: which defenses (and hyperparameter values), seeds and attacks a sweep runs.

Everything is checked here, before any job starts: the keys, the protocol and its
overrides, every defense variant (its parameters are applied to the protocol and the
defense is built), every attack and the executor. All problems are reported together in
one :class:`~bench.errors.ConfigError`, so a long sweep never dies on a typo half-way.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import bench.validate as validate
from bench.errors import BenchError, ConfigError
from bench.protocol import Protocol, load_protocol, read_yaml, yaml_problem

GRID_KEYS = ("protocol", "defenses", "seeds", "attacks", "overrides", "executor", "workers")
REQUIRED_KEYS = ("protocol", "defenses")
DEFAULT_EXECUTOR = "local"


@dataclass(frozen=True)
class Variant:
    """One defense with one combination of swept hyperparameters, and the protocol they resolve to."""

    defense: str
    params: tuple[tuple[str, Any], ...]
    protocol: Protocol

    @property
    def params_text(self) -> str:
        return params_text(self.params)

    @property
    def label(self) -> str:
        return variant_label(self.defense, self.params)


@dataclass(frozen=True)
class Grid:
    source: str
    protocol: str  # as load_protocol takes it: a shipped name, or an absolute path
    overrides: tuple[str, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    attacks: tuple[str, ...]
    executor: str
    workers: int | None


def params_text(params: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{key}={format_value(value)}" for key, value in params)


def variant_label(defense: str, params: tuple[tuple[str, Any], ...]) -> str:
    """How progress lines and the summary name a variant: ``pixel_sim[alpha=4.0, n_images=500]``."""
    return f"{defense}[{params_text(params)}]" if params else defense


def format_value(value: Any) -> str:
    """``value`` as YAML text that ``apply_override`` parses back to the same value.

    Not ``json.dumps``: YAML 1.1 reads JSON's ``1e-05`` as a string; PyYAML writes ``1.0e-05``.
    """
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    if text.endswith("\n..."):  # the end-of-document marker PyYAML puts after a bare scalar
        text = text[: -len("\n...")].strip()
    if yaml.safe_load(text) != value or "\n" in text:
        raise ConfigError(f"value {value!r} cannot be written as a one-line protocol override")
    return text


def _resolve_protocol(value: str, grid_dir: Path) -> str:
    """A shipped name stays a name; a path (anything with a slash or a .yaml/.yml suffix) is
    taken relative to the grid file's folder, so a grid and its protocol can move together."""
    if "/" in value or value.endswith((".yaml", ".yml")):
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (grid_dir / path).resolve())
    return value


def _unique(values: list[Any]) -> list[Any]:
    """The values that occur more than once (by ==, as lists and mappings are not hashable)."""
    return [v for i, v in enumerate(values) if v in values[:i]]


def _defense_specs(raw: Any, problems: list[str]) -> list[tuple[str, list[tuple[str, list[Any]]]]]:
    """``defenses`` as (name, [(param, values)]): a list of names, or a mapping name -> {param: [values]}."""
    if isinstance(raw, list):
        items: list[tuple[Any, Any]] = [(name, None) for name in raw]
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        problems.append(f"defenses must be a list of names or a mapping name -> {{param: [values]}}, got {raw!r}")
        return []
    if not items:
        problems.append("defenses is empty; name at least one defense")
    names = [name for name, _ in items]
    for name in dict.fromkeys(_unique(names)):
        problems.append(f"defenses: {name!r} is listed more than once")
    specs = []
    for name, spec in items:
        if not isinstance(name, str) or not name:
            problems.append(f"defenses: {name!r} is not a defense name")
            continue
        if spec is None or spec == {}:
            specs.append((name, []))
            continue
        if not isinstance(spec, dict):
            problems.append(f"defenses.{name} must be a mapping param -> [values], e.g. {{alpha: [1.0, 4.0]}}; got {spec!r}")
            continue
        params = []
        for param, values in spec.items():
            where = f"defenses.{name}.{param}"
            if not isinstance(values, list) or not values:
                problems.append(f"{where} must be a non-empty list of values, one variant each "
                                f"(for a single value, a one-element list), got {values!r}")
            elif _unique(values):
                problems.append(f"{where} lists {_unique(values)[0]!r} more than once")
            else:
                params.append((str(param), values))
        specs.append((name, params))
    return specs


def _names(raw: Any, key: str, problems: list[str]) -> list[str] | None:
    if raw is None:
        return None
    if not (isinstance(raw, list) and raw and all(isinstance(v, str) and v for v in raw)):
        problems.append(f"{key} must be a non-empty list of names, got {raw!r}")
        return None
    for name in dict.fromkeys(_unique(raw)):
        problems.append(f"{key}: {name!r} is listed more than once")
    return raw


def _variants(base: str, overrides: list[str], specs, problems: list[str]) -> list[Variant]:
    """Every combination of every defense's values, each applied to the protocol and built once."""
    from bench.pipeline import make_defense

    variants: list[Variant] = []
    seen: dict[tuple[str, str], str] = {}
    for name, params in specs:
        keys = [param for param, _ in params]
        for combo in itertools.product(*[values for _, values in params]):
            chosen, label = tuple(zip(keys, combo)), name
            try:
                label = variant_label(name, chosen)  # raises for a value no override can carry
                protocol = load_protocol(base, [*overrides, *(f"defenses.{name}.{k}={format_value(v)}" for k, v in chosen)])
                defense = make_defense(protocol, name)
            except BenchError as exc:
                problems.append(f"defenses: {label}: {exc}")
                continue
            key = (protocol.hash, defense.name)
            if key in seen:  # one results folder per (protocol hash, defense, seed): two jobs would share it
                problems.append(f"defenses: {label} resolves to the same protocol as {seen[key]}; list each value once")
                continue
            seen[key] = label
            variants.append(Variant(name, chosen, protocol))
    return variants


def _positive_int(raw: dict[str, Any], key: str, problems: list[str]) -> int | None:
    value = raw.get(key)
    try:
        return None if value is None else validate.integer(value, key)
    except ConfigError as exc:
        problems.append(str(exc))
        return None


def _seeds(raw: Any, problems: list[str]) -> list[int] | None:
    if raw is None:
        return None
    if not (isinstance(raw, list) and raw):
        problems.append(f"seeds must be a non-empty list of integers, got {raw!r}")
        return None
    try:
        for seed in raw:
            validate.seed(seed, "each of seeds")
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    for seed in dict.fromkeys(_unique(raw)):
        problems.append(f"seeds: {seed} is listed more than once")
    return raw


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"grid file {path} does not exist")
    try:
        raw = read_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid file {path} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"grid file {path} must be a mapping with the keys {', '.join(GRID_KEYS)}")
    return raw


def load_grid(path: Path, executors: Collection[str]) -> Grid:
    """Read and fully validate a grid file; ``executors`` are the valid executor names."""
    from bench.pipeline import check_protocol, make_attack

    path = Path(path)
    raw = _read(path)
    problems: list[str] = []
    unknown = [key for key in raw if key not in GRID_KEYS]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(GRID_KEYS)}")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        problems.append(f"missing required key(s) {', '.join(missing)}")
    overrides = raw.get("overrides") or []
    if not (isinstance(overrides, list) and all(isinstance(o, str) and "=" in o for o in overrides)):
        problems.append(f"overrides must be a list of key=value strings, e.g. [training.epochs=2], got {overrides!r}")
        overrides = []
    executor = raw.get("executor", DEFAULT_EXECUTOR)
    if executor not in executors:
        problems.append(f"unknown executor {executor!r}; valid executors: {', '.join(executors)}")
    workers = _positive_int(raw, "workers", problems)
    seeds = _seeds(raw.get("seeds"), problems)
    attacks = _names(raw.get("attacks"), "attacks", problems)
    specs = _defense_specs(raw["defenses"], problems) if "defenses" in raw else []

    protocol_name = raw.get("protocol")
    if "protocol" in raw and not (isinstance(protocol_name, str) and protocol_name):
        problems.append(f"protocol must be a shipped protocol name or a path to a .yaml file, got {protocol_name!r}")
    variants: list[Variant] = []
    if isinstance(protocol_name, str) and protocol_name:
        protocol_name = _resolve_protocol(protocol_name, path.parent)
        try:
            base = load_protocol(protocol_name, overrides)
            check_protocol(base)
        except BenchError as exc:
            problems.append(f"protocol: {exc}")
        else:  # names can only be checked against a protocol: attack parameters and eps grids live there
            attacks = attacks or list(base.suite())  # default: the leaderboard suite
            seeds = seeds or list(base.seeds)
            for name in attacks:
                try:
                    make_attack(base, name)
                except BenchError as exc:
                    problems.append(f"attacks: {exc}")
            variants = _variants(protocol_name, overrides, specs, problems)
    if problems:
        raise ConfigError(f"grid file {path} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return Grid(str(path), protocol_name, tuple(overrides), tuple(variants), tuple(seeds), tuple(attacks), executor, workers)
