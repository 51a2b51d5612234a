"""Building records: the envelope every record shares, the attack record, the per-model summary.

Every record says what produced it (protocol with hash and resolved config, defense, seed,
data set, model and its training, code version, environment), then what it measured. The
per-model summary (``summary.json`` beside the attack records) holds the worst case over
every attack and the cross-attack checks, computed once by ``bench.evaluation.aggregate``;
reports read it instead of recomputing it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bench.attacks.base import Attack
from bench.data.base import ImageDataset
from bench.defenses.base import Defense
from bench.evaluation.aggregate import model_summary
from bench.evaluation.evaluate import AttackOutcome
from bench.protocol import Protocol
from bench.records.environment import code_version, environment
from bench.records.store import SCHEMA_VERSION, iter_records_in, summary_path, write_json_atomic


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def envelope(kind: str, protocol: Protocol, defense: Defense, seed: int, section: tuple[str, dict[str, Any]],
             dataset: ImageDataset, model_info: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The fields every record of a trained model carries, with its own ``section`` (attack or analysis) after the seed."""
    name, content = section
    return {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "created": now(),
        "protocol": {"name": protocol.name, "version": protocol.version, "hash": protocol.hash, "source": protocol.source,
                     "config": protocol.raw_config()},
        "defense": defense.describe(),
        "seed": seed,
        name: content,
        "dataset": dataset.describe(),
        "model": model_info,
        "code": code_version(),
        "environment": environment(device),
    }


def _bits(mask: torch.Tensor) -> str:
    return "".join("1" if v else "0" for v in mask.tolist())


def _eps_key(eps: float) -> str:
    return f"{eps:g}"


def attack_record(protocol: Protocol, defense: Defense, seed: int, attack: Attack, dataset: ImageDataset,
                  model_info: dict[str, Any], outcome: AttackOutcome, device: torch.device,
                  model_checks: list[dict[str, Any]], surrogate_info: dict[str, Any] | None) -> dict[str, Any]:
    attack_info = {**attack.describe(), "eps": outcome.eps}
    if surrogate_info is not None:
        attack_info["surrogate"] = surrogate_info
    return {
        **envelope("attack", protocol, defense, seed, ("attack", attack_info), dataset, model_info, device),
        "timings": {"train_seconds": model_info["training"]["train_seconds"], "attack_seconds": outcome.seconds,
                    "compiled": outcome.compiled},
        "metrics": {
            "n_examples": outcome.n,
            "curve": outcome.curve,
            "clean_accuracy": outcome.clean_accuracy(),
            "robust_accuracy": {_eps_key(e): a for e, a in outcome.robust_accuracy().items()},
            "independent_accuracy": {_eps_key(e): a for e, a in zip(outcome.eps, outcome.independent_accuracy)},
            "rank": outcome.rank_metrics(),
            "minimal_perturbation": outcome.minimal_perturbation(dataset.test_x[0].numel()),
            "per_example": {"clean": _bits(outcome.clean_correct),
                            "robust": {_eps_key(e): _bits(c) for e, c in outcome.robust_correct.items()}},
        },
        "checks": outcome.checks + model_checks,
    }


def write_model_summary(record_file: Path) -> dict[str, Any]:
    """Recompute the per-model worst case and cross-attack checks from every attack record beside ``record_file``."""
    records = [record for _, record in iter_records_in(record_file.parent, "attack")]
    first = records[0]
    summary = {
        "schema": SCHEMA_VERSION,
        "kind": "model_summary",
        "created": now(),
        "protocol": {"name": first["protocol"]["name"], "hash": first["protocol"]["hash"]},
        "defense": first["defense"],
        "seed": first["seed"],
        "attacks": sorted(r["attack"]["name"] for r in records),
        **model_summary(records),
    }
    write_json_atomic(summary_path(record_file), summary)
    return summary
