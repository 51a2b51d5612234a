"""The one evaluation engine: a ready pipeline, its evaluation images, a protocol and a seed in;
typed attack records and the model's summary out.

Every evaluation of the harness comes through :func:`evaluate_model`: ``bench run`` and sweeps
(a registered or plugin defense, trained or reloaded by ``bench.pipeline``), ``bench eval`` and
``bench.evaluate`` (a network trained elsewhere), and ``bench figures``. So a user's network
gets the same attacks, the same sanity checks, the same records and the same summary as a
registered defense, and lands in the same leaderboard.

With a model ``folder``, each record is written as soon as its attack finishes (an
interrupted run keeps what it finished), a record already there is reused unless ``force``,
and records of other weights are refused: a folder never holds records of two networks.
Without one, the records stay in memory (``bench.evaluate`` writes them on request).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.attacks.base import Attack
from bench.data.base import EvaluationData, ImageDataset
from bench.defenses.base import Defense
from bench.errors import BenchError, first_line
from bench.evaluation import evaluate_attack
from bench.evaluation.model_checks import model_checks
from bench.pipeline import attack_eps_grid
from bench.protocol import Protocol
from bench.records import AttackRecord, ModelSummary, RecordError, iter_records_in, read_record, write_record
from bench.records.store import set_aside
from bench.records.build import attack_record_of, update_model_summary
from bench.records.summary import summarize

__all__ = ["EngineOptions", "EvaluationSet", "ModelEvaluation", "Target", "evaluate_model", "records_of_other_weights",
           "refuse_other_weights"]

SurrogateSource = Callable[[], tuple[nn.Module, dict[str, Any]]]  # (surrogate, what its records say of it), built on demand


@dataclass(frozen=True)
class Target:
    """What is evaluated: the deployed pipeline (eval mode, on the device) and how records describe it."""

    defense: Defense  # a registered defense, a plugin's, or a user's network under its chosen name
    pipeline: nn.Module
    info: dict[str, Any]  # the records' ``model`` section; ``weights_sha256`` names the network
    randomized: bool = False  # the pipeline draws noise: EOT in gradient attacks, tolerance in the eps-0 check

    @property
    def digest(self) -> str | None:
        return self.info.get("weights_sha256")


@dataclass(frozen=True)
class EvaluationSet:
    """The evaluation images (float in [0, 1], on the device), their labels, and how records describe them."""

    x: torch.Tensor
    y: torch.Tensor
    description: ImageDataset | EvaluationData
    num_classes: int


@dataclass(frozen=True)
class EngineOptions:
    device: torch.device
    precision: str = "fp32"  # resolved: of the gradient passes of attacks that support bf16
    compile: bool = False
    progress: bool = False
    force: bool = False  # recompute records that exist (and replace records of other weights)


@dataclass(frozen=True)
class ModelEvaluation:
    """One model's records (reused and new, in the order of the attacks asked for) and its summary."""

    records: tuple[AttackRecord, ...]
    summary: ModelSummary
    paths: tuple[Path, ...] = ()  # where the records are (empty when evaluated in memory)
    computed: tuple[str, ...] = field(default=())  # the attacks run now (the others were reused)


def records_of_other_weights(folder: Path, digest: str | None, skip: set[Path] = frozenset()) -> tuple[Path, str] | None:
    """The first attack record in ``folder`` (other than ``skip``) that measured weights other than
    ``digest``, and those weights' digest; None if there is none (or nothing to compare)."""
    if digest is None or not Path(folder).is_dir():
        return None
    for path, rec in iter_records_in(folder, "attack"):
        other = None if path in skip else rec.model.get("weights_sha256")
        if other is not None and other != digest:
            return path, other
    return None


def refuse_other_weights(folder: Path, digest: str | None, replaced: set[Path], what: str = "this defense and seed") -> None:
    """Refuse to add records to ``folder`` when the records already there measured other weights:
    a worst case over attacks on two different networks would describe neither."""
    found = records_of_other_weights(folder, digest, replaced)
    if found:
        path, other = found
        raise BenchError(f"{path} measured a model with weights {other[:12]}, but the model now loaded or trained for "
                         f"{what} has weights {digest[:12]}; restore the weights those records measured, choose another "
                         "name or results folder, or rerun with --force to measure every attack again on this model")


def _record_path(folder: Path, attack: Attack) -> Path:
    return Path(folder) / f"{attack.name}.json"


def evaluate_model(protocol: Protocol, target: Target, data: EvaluationSet, seed: int, attacks: Sequence[Attack],
                   options: EngineOptions, *, folder: Path | None = None, surrogate: SurrogateSource | None = None
                   ) -> ModelEvaluation:
    """Run ``attacks`` on ``target`` over ``data`` (the protocol's first n images or the user's) at ``seed``.

    Each attack runs on its first ``n_examples`` images (all by default) at its eps
    grid, with the protocol's curve strategy; its record carries the pipeline's own checks
    (gradients informative, loss along the path, repeated passes) computed once here. With
    ``folder``, records there are reused (unless ``options.force``) and new ones written one by
    one, then the summary is recomputed from every record of the folder."""
    todo: list[Attack] = []
    reused: dict[str, AttackRecord] = {}
    if folder is not None:
        for attack in attacks:
            path = _record_path(folder, attack)
            if path.exists() and not options.force:
                try:
                    reused[attack.name] = read_record(path)
                except RecordError as exc:  # truncated, edited, or of another folder: kept aside, recomputed
                    aside = set_aside(path)
                    print(f"record {path} cannot be trusted ({first_line(exc.reason)[:200]}): moved to {aside.name}, "
                          "recomputing it", file=sys.stderr)
                    todo.append(attack)
                    continue
                if options.progress:
                    print(f"reusing record {path}")
            else:
                todo.append(attack)
        refuse_other_weights(folder, target.digest, {_record_path(folder, a) for a in todo},
                             f"{target.defense.name} seed {seed}")
    else:
        todo = list(attacks)
    new: dict[str, AttackRecord] = {}
    if todo:
        new = _run_attacks(protocol, target, data, seed, todo, options, folder, surrogate)
    records = tuple(new.get(a.name) or reused[a.name] for a in attacks)
    if folder is not None:
        summary = update_model_summary(folder)
        paths = tuple(_record_path(folder, a) for a in attacks)
    else:
        summary, paths = summarize(records), ()
    if options.progress:
        for threat, by_eps in summary.worst_case.items():
            print(f"worst case over {len(summary.attacks)} attack(s), {threat}: "
                  + ", ".join(f"{eps}: {v.accuracy:.3f}" for eps, v in by_eps.items()))
        for c in summary.cross_attack_checks:
            print(f"checks across this model's attacks, {c.name}: {c.status} ({c.detail})")
    return ModelEvaluation(records, summary, paths, tuple(new))


def _run_attacks(protocol: Protocol, target: Target, data: EvaluationSet, seed: int, todo: Sequence[Attack],
                 options: EngineOptions, folder: Path | None, surrogate: SurrogateSource | None) -> dict[str, AttackRecord]:
    x, y, n = data.x, data.y, len(data.x)
    batch_size = protocol.evaluation.batch_size
    pipeline_checks = model_checks(target.pipeline, x, y, data.num_classes, batch_size, seed, protocol.headline_eps())
    surrogate_model, surrogate_info = None, None
    out: dict[str, AttackRecord] = {}
    for attack in todo:
        if attack.needs_surrogate and surrogate_model is None:
            if surrogate is None:
                raise BenchError(f"attack {attack.name!r} transfers from a surrogate, which this evaluation has none of")
            surrogate_model, surrogate_info = surrogate()
        attack.surrogate = surrogate_model.eval() if attack.needs_surrogate else None
        m = min(attack.n_examples or n, n)
        t0 = time.perf_counter()
        outcome = evaluate_attack(target.pipeline, attack, x[:m], y[:m], attack_eps_grid(protocol, attack), batch_size, seed,
                                  options.progress, attack.curve or protocol.evaluation.curve, target.randomized, compile=options.compile,
                                  precision=options.precision)
        record = attack_record_of(protocol, target.defense, seed, attack, data.description, target.info, outcome,
                                  options.device, pipeline_checks, surrogate_info if attack.needs_surrogate else None)
        if folder is not None:
            path = _record_path(folder, attack)
            # the weights are checked again before each write: another process may have written this folder meanwhile
            refuse_other_weights(folder, target.digest, {path}, f"{target.defense.name} seed {seed}")
            write_record(path, record)
        out[attack.name] = record
        if options.progress:
            accs = ", ".join(f"{k}: {v:.3f}" for k, v in record.metrics.robust_accuracy.items())
            flags = record.flags
            print(f"{target.defense.name} seed {seed} {attack.name}: clean {outcome.clean_accuracy():.3f} | robust @eps {accs} "
                  f"| {time.perf_counter() - t0:.1f}s | this attack's checks: {'FLAGGED ' + ', '.join(flags) if flags else 'all pass'}")
            if folder is not None:
                print(f"wrote {_record_path(folder, attack)}")
    return out
