"""One ``bench run``: for each seed, a ready pipeline, then each attack, then the model's summary.

Nothing already computed is recomputed: the pipeline comes from ``bench.pipeline`` (a
finished model is reloaded, an unfinished one resumes), and an attack whose record exists
for the same protocol hash is skipped unless ``force``. Every name and parameter is checked
before any data is loaded.
"""

from __future__ import annotations

from pathlib import Path

from bench.attacks.base import Access, Attack, MinimalAttack
from bench.data.base import to_float
from bench.defenses.base import Defense
from bench.engine import EngineOptions, EvaluationSet, ModelEvaluation, Target, evaluate_model, records_of_other_weights
from bench.errors import BenchError, ConfigError
from bench.pipeline import (SURROGATE_DEFENSE, DataSplit, Settings, base_chain, check_protocol, is_randomized,
                            load_data, make_attack, make_defense, obtain_model, obtain_surrogate)
from bench.protocol import Protocol
from bench.records import lock, record_path
from bench.records.store import usable_record


def check_compatible(protocol: Protocol, defense: Defense, attacks: list[Attack]) -> None:
    """Refuse, before any work, combinations whose result would mean nothing."""
    randomized = is_randomized(protocol, defense)
    for attack in attacks:
        if randomized and isinstance(attack, MinimalAttack) and attack.access is Access.QUERY:
            raise ConfigError(f"attack {attack.name!r} is decision-based: it assumes a deterministic model, but defense "
                              f"{defense.name!r} is randomised (its answers change between queries). Use gradient attacks, "
                              "which the harness runs with EOT on randomised defenses, or noise and transfer attacks.")
        if attack.needs_surrogate:
            make_defense(protocol, SURROGATE_DEFENSE)  # its surrogate must be buildable under this protocol


def plan(protocol: Protocol, defense_name: str, attack_names: list[str]) -> tuple[Defense, list[Attack]]:
    """The defense and attacks of a run, every name and parameter checked: raises before any work."""
    check_protocol(protocol)
    defense = make_defense(protocol, defense_name)
    attacks = [make_attack(protocol, name) for name in attack_names]
    check_compatible(protocol, defense, attacks)
    return defense, attacks


def run(protocol: Protocol, defense_name: str, attack_names: list[str], seeds: list[int], settings: Settings) -> list[Path]:
    """Train (or reuse) and attack ``defense_name`` for each seed; returns the records written or reused."""
    defense, attacks = plan(protocol, defense_name, attack_names)
    paths: list[Path] = []
    data: DataSplit | None = None
    for seed in seeds:
        found = [record_path(settings.results_dir, protocol.name, protocol.hash, defense.name, seed, a.name) for a in attacks]
        paths += found
        if settings.force or not all(usable_record(path) for path in found):  # else nothing to train or attack
            data = data or load_data(protocol)
            attack_seed(protocol, defense, seed, attacks, data, settings)
        elif settings.progress:
            for path in found:
                print(f"reusing record {path}")
    return paths


def refuse_other_base_weights(protocol: Protocol, defense: Defense, seed: int, digest: str | None, settings: Settings) -> None:
    """An input transform (``base: baseline``) is compared, image by image, with its base's records
    of the same seed: refuse to measure it on other weights than those records measured (the base
    was retrained, e.g. on another CPU or torch build), or its difference to the base would mix
    the transform's effect with a second training's."""
    chain = base_chain(protocol, defense)
    if len(chain) < 2:
        return
    root = chain[-1].name
    found = records_of_other_weights(record_path(settings.results_dir, protocol.name, protocol.hash, root, seed, "any").parent, digest)
    if found:
        path, other = found
        raise BenchError(f"{defense.name} wraps {root} (seed {seed}), whose records ({path}) measured weights "
                         f"{other[:12]}, but the {root} model now loaded or trained has weights {digest[:12]} (its "
                         "checkpoint was retrained, e.g. on another CPU or torch build, which need not reproduce "
                         f"it bit for bit); restore the checkpoint those records came from, or rerun {root} seed {seed} "
                         "with --force first so that both measure the same network")


def attack_seed(protocol: Protocol, defense: Defense, seed: int, attacks: list[Attack], data: DataSplit,
                settings: Settings) -> ModelEvaluation:
    """Obtain the pipeline of ``seed`` (trained, resumed or reloaded) and hand it to the engine."""
    folder = record_path(settings.results_dir, protocol.name, protocol.hash, defense.name, seed, "any").parent
    # held from training through the last record and the summary: a second process on this model waits, then reuses
    with lock.held(folder, f"training or attacking {defense.name} seed {seed} ({folder})", settings.progress):
        return _attack_seed(protocol, defense, seed, attacks, data, settings, folder)


def _attack_seed(protocol: Protocol, defense: Defense, seed: int, attacks: list[Attack], data: DataSplit, settings: Settings,
                 folder: Path) -> ModelEvaluation:
    device = settings.resolved_device()
    dataset = data.dataset
    ready = obtain_model(protocol, defense, data, seed, settings)
    refuse_other_base_weights(protocol, defense, seed, ready.info.get("weights_sha256"), settings)
    n = min(protocol.evaluation.n_examples, len(dataset.test_y))
    evaluation_set = EvaluationSet(to_float(dataset.test_x[:n], device), dataset.test_y[:n].to(device), dataset,
                                   dataset.num_classes)
    target = Target(defense, ready.pipeline, ready.info, is_randomized(protocol, defense))
    options = EngineOptions(device, settings.resolved_precision(), settings.compile, settings.progress, settings.force)
    return evaluate_model(protocol, target, evaluation_set, seed, attacks, options, folder=folder,
                          surrogate=lambda: obtain_surrogate(protocol, data, seed, settings))
