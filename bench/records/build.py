"""Building records: the envelope every record shares, the attack record, the analysis record, the per-model summary.

Every record says what produced it (protocol with hash and resolved config, defense, seed,
data set, model and its training, code version, environment), then what it measured. Records
are built as the typed objects of ``bench.records.schema`` and written as their ``to_dict()``.
The per-model summary (``summary.json`` beside the attack records) holds the worst case over
every attack and the cross-attack checks, computed once by ``bench.evaluation.aggregate``
(``bench.records.summary``); reports read it instead of recomputing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.attacks.base import Attack
from bench.data.base import EvaluationData, ImageDataset
from bench.defenses.base import Defense
from bench.evaluation.evaluate import AttackOutcome
from bench.protocol import Protocol
from bench.records.environment import code_version, environment
from bench.records.schema import (AnalysisInfo, AnalysisRecord, AttackInfo, AttackMetrics, AttackRecord, Check, DefenseInfo,
                                  MinimalPerturbation, ModelSummary, PerExample, ProtocolInfo, RankMetrics, TopK, utc_now)
from bench.records.store import SUMMARY_NAME, iter_records_in, write_record
from bench.records.summary import summarize

WRITTEN = "the record being written"  # where errors in a record under construction point


def now() -> str:
    return utc_now()


def protocol_info(protocol: Protocol) -> ProtocolInfo:
    return ProtocolInfo(name=protocol.name, hash=protocol.hash, version=protocol.version, source=protocol.source,
                        config=protocol.raw_config())


def _envelope_fields(protocol: Protocol, defense: Defense, seed: int, dataset: ImageDataset | EvaluationData, model_info: dict[str, Any],
                     device: torch.device, timings: dict[str, Any]) -> dict[str, Any]:
    """The envelope of a record of a trained model, as the keyword arguments of its typed record."""
    return {"created": now(), "protocol": protocol_info(protocol), "defense": DefenseInfo.from_dict(defense.describe(), WRITTEN),
            "seed": seed, "dataset": dataset.describe(), "model": model_info, "code": code_version(),
            "environment": environment(device), "timings": timings}


def _bits(mask: torch.Tensor) -> str:
    return "".join("1" if v else "0" for v in mask.tolist())


def _eps_key(eps: float) -> str:
    return f"{eps:g}"


def attack_metrics(outcome: AttackOutcome, dims: int) -> AttackMetrics:
    ranks = outcome.rank_metrics()
    minimal = outcome.minimal_perturbation(dims)
    return AttackMetrics(
        n_examples=outcome.n,
        curve=outcome.curve,
        clean_accuracy=outcome.clean_accuracy(),
        robust_accuracy={_eps_key(e): a for e, a in outcome.robust_accuracy().items()},
        independent_accuracy={_eps_key(e): a for e, a in zip(outcome.eps, outcome.independent_accuracy)},
        rank=RankMetrics(TopK(**ranks["clean"]), {eps: TopK(**r) for eps, r in ranks["adversarial"].items()}),
        minimal_perturbation=None if minimal is None else MinimalPerturbation(**minimal),
        per_example=PerExample(_bits(outcome.clean_correct), {_eps_key(e): _bits(c) for e, c in outcome.robust_correct.items()}),
    )


def attack_record_of(protocol: Protocol, defense: Defense, seed: int, attack: Attack, dataset: ImageDataset | EvaluationData,
                     model_info: dict[str, Any], outcome: AttackOutcome, device: torch.device,
                     model_checks: list[dict[str, Any]], surrogate_info: dict[str, Any] | None) -> AttackRecord:
    """The typed record of one attack on one trained model."""
    attack_info = {**attack.describe(), "eps": outcome.eps, "gradient_precision": outcome.precision}
    if surrogate_info is not None:
        attack_info["surrogate"] = surrogate_info
    timings = {"train_seconds": model_info["training"]["train_seconds"], "attack_seconds": outcome.seconds,
               "compiled": outcome.compiled}
    return AttackRecord(
        **_envelope_fields(protocol, defense, seed, dataset, model_info, device, timings),
        attack=AttackInfo.from_dict(attack_info, WRITTEN),
        metrics=attack_metrics(outcome, dataset.input_dims),
        checks=tuple(Check.from_dict(c, WRITTEN) for c in outcome.checks + model_checks),
    )


def analysis_record(protocol: Protocol, defense: Defense, seed: int, name: str, params: dict[str, Any], reference: Any,
                    dataset: ImageDataset, model_info: dict[str, Any], device: torch.device, timings: dict[str, Any],
                    metrics: dict[str, Any]) -> AnalysisRecord:
    """The typed record of analysis ``name`` (kind ``analysis_<name>``) of one trained model."""
    return AnalysisRecord(**_envelope_fields(protocol, defense, seed, dataset, model_info, device, timings),
                          analysis=AnalysisInfo(name, params, reference), metrics=metrics)


def update_model_summary(folder: Path) -> ModelSummary:
    """Recompute one model's worst case and cross-attack checks from every attack record in ``folder``
    and write them as its ``summary.json``."""
    records = [record for _, record in iter_records_in(folder, "attack")]
    summary = summarize(records, now())
    write_record(Path(folder) / SUMMARY_NAME, summary)
    return summary
