"""From the names in a protocol to components: every registry lookup of the harness is here.

Parameters from the protocol are bound against the factory's signature first, so a wrong
name or a missing value is the user's error (a :class:`ConfigError` listing what the factory
accepts), while a ``TypeError`` raised *inside* a factory stays what it is: a bug, shown
with its traceback. :func:`check_protocol` builds every configured attack and defense once
at load, so a bad value anywhere (``attacks.pgd.steps=0``) is refused before data is
loaded or a model trained.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from bench.attacks.base import Attack
from bench.catalog import ATTACKS, DATASETS, DEFENSES, MODELS
from bench.data.base import ImageDataset
from bench.defenses.base import Defense
from bench.errors import ConfigError, first_line
from bench.models.base import Classifier
from bench.protocol import ModelSpec, Protocol, model_spec, thaw
from bench.registry import Entry


def _accepted(factory: Callable[..., Any], skip: int = 0) -> str:
    params = list(inspect.signature(factory).parameters.values())[skip:]
    shown = [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}" for p in params
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return ", ".join(shown) or "no parameters"


def bind(kind: str, name: str, entry: Entry, params: Mapping[str, Any], *args: Any, where: str = "") -> None:
    """Refuse, by name, parameters the factory does not take (without calling it)."""
    try:
        inspect.signature(entry.factory).bind(*args, **params)
    except TypeError as exc:
        place = f" (from {where})" if where else ""
        raise ConfigError(f"{kind} {name!r} does not take the parameters {dict(params)}{place}: {exc}; "
                          f"it accepts: {_accepted(entry.factory, len(args))}") from None


def call_factory(kind: str, name: str, entry: Entry, params: Mapping[str, Any], *args: Any, where: str = "") -> Any:
    """``entry.factory(*args, **params)``, its parameters bound first (see :func:`bind`)."""
    bind(kind, name, entry, params, *args, where=where)
    return entry.factory(*args, **params)


def is_family(entry: Entry) -> bool:
    """A family factory (``robustbench:<model>``) takes the part after the colon as its first, required argument."""
    params = list(inspect.signature(entry.factory).parameters.values())
    return bool(params) and params[0].default is inspect.Parameter.empty and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def make_dataset(protocol: Protocol) -> ImageDataset:
    spec = protocol.dataset
    return call_factory("dataset", spec.name, DATASETS.get(spec.name), thaw(spec.options), where="the protocol's dataset section")


def build_model(spec: ModelSpec | Mapping[str, Any], in_channels: int, num_classes: int,
                dataset_stats: tuple[list[float], list[float]]) -> Classifier:
    """Build the model ``spec`` names, wrapped with its input normalisation (the model's first layer)."""
    if not isinstance(spec, ModelSpec):
        spec = model_spec("(model config)", spec)
    if spec.normalization == "dataset":
        mean, std = dataset_stats
    elif spec.normalization == "none":
        mean, std = [0.0] * in_channels, [1.0] * in_channels
    else:
        mean, std = list(spec.normalization["mean"]), list(spec.normalization["std"])
        if len(mean) == 1 and in_channels > 1:
            mean, std = mean * in_channels, std * in_channels
    options = {**thaw(spec.options), "in_channels": in_channels, "num_classes": num_classes}
    net = call_factory("model", spec.name, MODELS.get(spec.name), options, where="the protocol's model section")
    return Classifier(net, mean, std)


def make_defense(protocol: Protocol, name: str) -> Defense:
    """``name`` is a registered defense, or ``family:spec`` for families of ready-made models
    (e.g. ``robustbench:Carmon2019Unlabeled``): the family factory gets ``spec`` first, then the
    parameters of ``defenses.<family>`` updated by those of ``defenses.<family:spec>``."""
    params = protocol.defense_params(name)
    if ":" in name:
        family, spec = name.split(":", 1)
        return call_factory("defense family", family, DEFENSES.get(family), params, spec, where=f"defenses.{family}")
    return call_factory("defense", name, DEFENSES.get(name), params, where=f"defenses.{name}")


def make_attack(protocol: Protocol, name: str) -> Attack:
    """The attack ``name`` with the protocol's parameters; ``<attack>_convergence`` is the
    leaderboard's convergence rerun of ``<attack>`` (more steps and restarts, on a subset)."""
    conv = protocol.leaderboard.convergence if protocol.leaderboard else None
    if conv is not None and name == conv.record_name:
        return convergence_attack(protocol)
    attack = call_factory("attack", name, ATTACKS.get(name), protocol.attack_params(name), where=f"attacks.{name}")
    if attack.threat_model not in protocol.threat_models:
        valid = ", ".join(protocol.threat_models)
        raise ConfigError(f"attack {name!r} needs an eps grid for threat model {attack.threat_model!r}, "
                          f"which protocol {protocol.name} does not define (it has: {valid})")
    return attack


def convergence_attack(protocol: Protocol) -> Attack:
    conv = protocol.leaderboard.convergence
    base = make_attack(protocol, conv.attack)
    if not {"steps", "restarts"} <= set(base.params):
        raise ConfigError(f"protocol {protocol.name}: leaderboard.convergence.attack = {conv.attack!r} has no steps and restarts "
                          "to multiply; accepted: an iterative attack such as pgd, pgd_l2, apgd_ce or apgd_t")
    params = {**base.params, "steps": base.params["steps"] * conv.steps_factor,
              "restarts": max(conv.restarts, base.params["restarts"])}
    eps_grid = None
    if conv.eps is not None:
        grid = protocol.eps_grid(base.threat_model)
        stray = [e for e in conv.eps if e not in grid]
        if stray:
            raise ConfigError(f"protocol {protocol.name}: leaderboard.convergence.eps has {', '.join(f'{e:g}' for e in stray)}, "
                              f"not in the {base.threat_model} grid of {conv.attack!r}; accepted: "
                              + ", ".join(f"{e:g}" for e in grid if e > 0) + " (set leaderboard.convergence.eps with the grid)")
        eps_grid = tuple(e for e in grid if e == 0 or e in conv.eps)  # eps 0 stays: its check is free
    # every eps afresh, whatever the protocol's curve: the independent check on a subset (monotone_in_eps)
    return type(base)(conv.record_name, base.threat_model, params, n_examples=conv.n_examples, eps_grid=eps_grid,
                      tolerance=conv.tolerance, curve="independent")


def attack_eps_grid(protocol: Protocol, attack: Attack) -> list[float]:
    """The eps values ``attack`` runs at: its threat model's grid, or the part of it the protocol
    gave it (the convergence rerun may run at a few eps only)."""
    return list(attack.eps_grid or protocol.eps_grid(attack.threat_model))


def check_protocol(protocol: Protocol) -> None:
    """Build every attack of the protocol's suite and every configured defense once (their
    factories check each value's range), and bind the data set's and model's options: all
    before any work. Sections for defenses that are not registered (a plugin not loaded in
    this run) are left for when that defense is asked for."""
    for name in dict.fromkeys([*protocol.attacks, *protocol.suite()]):
        make_attack(protocol, name)
    for name in protocol.defenses:
        family = name.split(":", 1)[0]
        if family not in DEFENSES:
            continue
        entry = DEFENSES.get(family)
        if ":" in name or not is_family(entry):
            make_defense(protocol, name)
        else:  # the family's own parameters: bound with the model name (``family:<model>``) still to come
            bind("defense family", name, entry, protocol.defense_params(name), "<model>", where=f"defenses.{name}")
    bind("dataset", protocol.dataset.name, DATASETS.get(protocol.dataset.name), thaw(protocol.dataset.options),
         where="the protocol's dataset section")
    options = {**thaw(protocol.model.options), "in_channels": 1, "num_classes": 2}
    entry = MODELS.get(protocol.model.name)
    bind("model", protocol.model.name, entry, options, where="the protocol's model section")
    try:  # built once, on the CPU: an option out of range (width 0) fails here, not after the data is read
        entry.factory(**options)
    except (ValueError, RuntimeError, TypeError) as exc:
        given = {k: v for k, v in thaw(protocol.model.options).items()}
        raise ConfigError(f"protocol {protocol.source}: the model section {protocol.model.name} {given} does not build "
                          f"({type(exc).__name__}: {first_line(exc)}); check its options' values") from None
