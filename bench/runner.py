"""One ``bench run``: for each seed, a ready pipeline, then each attack, then the model's summary.

Nothing already computed is recomputed: the pipeline comes from ``bench.pipeline`` (a
finished model is reloaded, an unfinished one resumes), and an attack whose record exists
for the same protocol hash is skipped unless ``force``. Every name and parameter is checked
before any data is loaded.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.attacks.base import Access, Attack, MinimalAttack
from bench.data.base import to_float
from bench.defenses.base import Defense
from bench.errors import BenchError, ConfigError
from bench.evaluation import evaluate_attack
from bench.evaluation.model_checks import model_checks
from bench.pipeline import (SURROGATE_DEFENSE, DataSplit, Settings, attack_eps_grid, base_chain, check_protocol, is_randomized,
                            load_data, make_attack, make_defense, obtain_model, obtain_surrogate)
from bench.protocol import Protocol
from bench.records import iter_records_in, record_path, write_record
from bench.records.build import attack_record_of, update_model_summary


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
        todo = []
        for attack in attacks:
            path = record_path(settings.results_dir, protocol.name, protocol.hash, defense.name, seed, attack.name)
            paths.append(path)
            if path.exists() and not settings.force:
                if settings.progress:
                    print(f"reusing record {path}")
            else:
                todo.append((attack, path))
        if todo:
            data = data or load_data(protocol)
            attack_seed(protocol, defense, seed, todo, data, settings)
    return paths


def records_of_other_weights(folder: Path, digest: str | None, skip: set[Path] = frozenset()) -> tuple[Path, str] | None:
    """The first attack record in ``folder`` (other than ``skip``) that measured weights other than
    ``digest``, and those weights' digest; None if there is none (or nothing to compare)."""
    if digest is None or not folder.is_dir():
        return None
    for path, rec in iter_records_in(folder, "attack"):
        other = None if path in skip else rec.model.get("weights_sha256")
        if other is not None and other != digest:
            return path, other
    return None


def refuse_other_weights(folder: Path, digest: str | None, replaced: set[Path]) -> None:
    """Refuse to add records to ``folder`` when the records already there measured other weights
    (the checkpoint was lost and the model retrained differently, e.g. under another torch build or
    on a GPU): a worst case over attacks on two different networks would describe neither."""
    found = records_of_other_weights(folder, digest, replaced)
    if found:
        path, other = found
        raise BenchError(f"{path} measured a model with weights {other[:12]}, but the model now loaded or trained for "
                         f"this defense and seed has weights {digest[:12]} (its checkpoint was retrained, e.g. under "
                         "another torch build or device); restore the checkpoint the records came from, or rerun with "
                         "--force to measure every attack again on this model")


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


def attack_seed(protocol: Protocol, defense: Defense, seed: int, todo: list[tuple[Attack, Path]], data: DataSplit,
                settings: Settings) -> None:
    """Run the attacks ``todo`` on the pipeline of ``seed``, write each record, then the model's summary."""
    device = settings.resolved_device()
    dataset = data.dataset
    ready = obtain_model(protocol, defense, data, seed, settings)
    refuse_other_weights(todo[0][1].parent, ready.info.get("weights_sha256"), {path for _, path in todo})
    refuse_other_base_weights(protocol, defense, seed, ready.info.get("weights_sha256"), settings)
    model = ready.pipeline
    n = min(protocol.evaluation.n_examples, len(dataset.test_y))
    batch_size = protocol.evaluation.batch_size
    x, y = to_float(dataset.test_x[:n], device), dataset.test_y[:n].to(device)
    pipeline_checks = model_checks(model, x, y, dataset.num_classes, batch_size, seed, protocol.headline_eps())
    randomized = is_randomized(protocol, defense)
    surrogate, surrogate_info = None, None
    for attack, path in todo:
        if attack.needs_surrogate and surrogate is None:
            surrogate, surrogate_info = obtain_surrogate(protocol, data, seed, settings)
        attack.surrogate = surrogate.eval() if attack.needs_surrogate else None
        m = min(int(attack.params.get("n_examples") or n), n)
        t0 = time.perf_counter()
        outcome = evaluate_attack(model, attack, x[:m], y[:m], attack_eps_grid(protocol, attack), batch_size, seed,
                                  settings.progress, protocol.evaluation.curve, randomized, compile=settings.compile,
                                  precision=settings.resolved_precision())
        record = attack_record_of(protocol, defense, seed, attack, dataset, ready.info, outcome, device, pipeline_checks,
                                  surrogate_info if attack.needs_surrogate else None)
        write_record(path, record)
        if settings.progress:
            accs = ", ".join(f"{k}: {v:.3f}" for k, v in record.metrics.robust_accuracy.items())
            flags = record.flags
            print(f"{defense.name} seed {seed} {attack.name}: clean {outcome.clean_accuracy():.3f} | robust @eps {accs} "
                  f"| {time.perf_counter() - t0:.1f}s | checks: {'FLAGGED ' + ', '.join(flags) if flags else 'all pass'}")
            print(f"wrote {path}")
    summary = update_model_summary(todo[0][1].parent)
    if settings.progress:
        for threat, by_eps in summary.worst_case.items():
            print(f"worst case over {len(summary.attacks)} attack(s), {threat}: "
                  + ", ".join(f"{eps}: {v.accuracy:.3f}" for eps, v in by_eps.items()))
        for c in summary.cross_attack_checks:
            print(f"check {c.name}: {c.status} ({c.detail})")
