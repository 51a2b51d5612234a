"""A results folder read once: every record parsed a single time, each model's summary read or recomputed.

A model is one ``<protocol>-<hash12>/<defense>/seed<N>/`` folder of attack records. Its worst
case over attacks and its cross-attack checks are those of its ``summary.json``
(``bench run`` writes it with ``bench.records.summary.summarize``, i.e.
``bench.evaluation.aggregate.model_summary``); when that file is missing or stale (it covers
other attacks than the records beside it, is of another model, or an attack record was
written after it), the same function recomputes it from the records (in memory: reading
results never writes them). Every report starts from
:func:`load_results`, so that tables, figures and the HTML page show one computation.
"""

from __future__ import annotations

import math

from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from bench.protocol import builtin_protocols, load_protocol
from bench.records.schema import AnalysisRecord, AttackRecord, ModelSummary
from bench.records.store import SUMMARY_NAME, iter_records
from bench.records.summary import current_summary


@dataclass(frozen=True)
class ModelResults:
    """One model's attack records and its summary."""

    folder: Path
    records: tuple[tuple[Path, AttackRecord], ...]  # by path
    summary: ModelSummary  # its summary.json, or recomputed from ``records`` (see ``recomputed``)
    recomputed: str | None = None  # why summary.json was not used as it is; None when it was

    @property
    def attack_records(self) -> list[AttackRecord]:
        return [rec for _, rec in self.records]

    def worst_bits(self, threat: str, eps: float) -> str | None:
        """Per example, "1" if it survived every attack of ``threat`` that evaluated it at ``eps``
        (as ``bench.evaluation.aggregate.worst_case`` counts it); None if no attack did."""
        covering = []
        for r in self.attack_records:
            if r.attack.threat_model == threat:
                key = next((k for k in r.metrics.per_example.robust if math.isclose(float(k), eps, rel_tol=1e-9, abs_tol=1e-12)), None)
                if key is not None:
                    covering.append(r.metrics.per_example.robust[key])
        if not covering:
            return None
        n = max(len(b) for b in covering)
        return "".join("1" if all(b[i] == "1" for b in covering if i < len(b)) else "0" for i in range(n))


@dataclass(frozen=True)
class Results:
    """Every record under ``root``: attack records and analyses by path, and the models they form."""

    root: Path
    attacks: tuple[tuple[Path, AttackRecord], ...]
    models: tuple[ModelResults, ...]  # in path order
    analyses: tuple[tuple[Path, AnalysisRecord], ...] = ()


def _as_reference(rec):
    """A record read from the shipped references, marked so that reports label it ``[reference]``."""
    return replace(rec, defense=rec.defense.as_shipped_reference())


def load_results(results_dir: Path, references: Path | None = None) -> Results:
    """Read every record under ``results_dir`` once (refusing unreadable ones, other schemas and unknown kinds);
    with ``references`` (e.g. ``results/reference``), the shipped references too, labelled ``[reference]``."""
    attacks: list[tuple[Path, AttackRecord]] = []
    analyses: list[tuple[Path, AnalysisRecord]] = []
    summaries: dict[Path, ModelSummary] = {}
    found = list(iter_records(results_dir, None))
    if references is not None:
        found += [(path, _as_reference(rec)) for path, rec in iter_records(references, None)]
    for path, rec in found:
        if isinstance(rec, AttackRecord):
            attacks.append((path, rec))
        elif isinstance(rec, AnalysisRecord):
            analyses.append((path, rec))
        elif isinstance(rec, ModelSummary) and path.name == SUMMARY_NAME:
            summaries[path.parent] = rec
    by_folder: dict[Path, list[tuple[Path, AttackRecord]]] = defaultdict(list)
    for path, rec in attacks:
        by_folder[path.parent].append((path, rec))
    models = []
    for folder, records in by_folder.items():
        summary, reason = current_summary(summaries.get(folder), [rec for _, rec in records])
        models.append(ModelResults(folder, tuple(records), summary, reason))
    return Results(Path(results_dir), tuple(attacks), tuple(models), tuple(analyses))


def latest_versions(results: Results) -> tuple[Results, list[str]]:
    """Only the records of each protocol's newest version (a protocol's version is bumped when
    its attacks or schedule change, so older records measure something else and must not be
    ranked beside the current ones), and a line per protocol section left out."""

    def version(rec: AttackRecord | AnalysisRecord) -> tuple[int, str]:
        v = getattr(rec.protocol, "version", None)
        return (v, "") if isinstance(v, int) else (-1, str(v))

    newest: dict[str, tuple[int, str]] = {}
    for _, rec in results.attacks:
        newest[rec.protocol.name] = max(newest.get(rec.protocol.name, (-1, "")), version(rec))

    def keep(rec: AttackRecord) -> bool:
        return version(rec) == newest[rec.protocol.name]

    dropped = sorted({f"{rec.protocol.name} version {version(rec)[0] if version(rec)[0] >= 0 else version(rec)[1]} "
                      f"({rec.protocol.short_hash})" for _, rec in results.attacks if not keep(rec)})
    if not dropped:
        return results, []
    models = tuple(m for m in results.models if keep(m.attack_records[0]))
    attacks = tuple((p, r) for p, r in results.attacks if keep(r))
    analyses = tuple((p, a) for p, a in results.analyses if version(a) == newest.get(a.protocol.name, version(a)))
    return Results(results.root, attacks, models, analyses), dropped


def outdated_protocols(results: Results) -> dict[tuple[str, str], str]:
    """(protocol name, short hash) -> a sentence, for every section whose records ran an older
    version of a protocol shipped with the package than the one shipped now: a reader must not
    take them for what ``bench run --protocol <name>`` measures today."""
    shipped = builtin_protocols()
    out: dict[tuple[str, str], str] = {}
    current: dict[str, object] = {}
    for _, rec in results.attacks:
        name, version = rec.protocol.name, getattr(rec.protocol, "version", None)
        if name not in shipped or not isinstance(version, int) or (name, rec.protocol.short_hash) in out:
            continue
        if name not in current:
            current[name] = load_protocol(name)
        now = current[name]
        if version < now.version:
            out[(name, rec.protocol.short_hash)] = (
                f"these records ran version {version} of the shipped protocol {name}; it is now at version "
                f"{now.version} ({now.short_hash}), whose attacks or schedule differ: rerun to update them")
    return out
