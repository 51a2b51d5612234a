"""Paper figures: each paper declares its figures and the runs each needs.

``bench figures <paper>`` plans the runs (a run = protocol + overrides + defense + attack +
seed, or an analysis), runs only what the records do not hold yet (``--dry-run`` lists it),
then draws every figure from the records into ``reports/figures/<paper>/`` with a caption
file saying what each shows, on which protocol, and where our data differs from the paper's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.protocol import Protocol, load_protocol
from bench.records import AnalysisRecord, AttackRecord, RecordError, read_record, record_path


@dataclass(frozen=True)
class Run:
    """One attack record to produce: ``bench run --defense D --attack A --seed S --set ...``."""

    defense: str
    attack: str
    seed: int = 0
    overrides: tuple[str, ...] = ()
    label: str | None = None  # how figures name this variant (default: the defense)

    def name(self) -> str:
        return self.label or self.defense


@dataclass(frozen=True)
class Analysis:
    """One analysis record to produce: ``bench analyze KIND --defense D --seed S``."""

    kind: str  # "rsa" | "filters"
    defense: str
    seed: int = 0
    overrides: tuple[str, ...] = ()
    label: str | None = None

    def name(self) -> str:
        return self.label or self.defense


@dataclass
class Figure:
    name: str
    caption: str
    needs: list[Run | Analysis]
    draw: Callable[[dict[Run | Analysis, AttackRecord | AnalysisRecord], Path], list[Path]]
    uncertainty: str = ""  # what the bands / whiskers are, or why there are none (the caption says it)


@dataclass
class Paper:
    key: str
    title: str
    differences: str  # where the harness's data and settings differ from the paper's
    figures: Callable[[str], list[Figure]]  # protocol name -> figures
    notes: list[str] = field(default_factory=list)


def resolved(protocol_name: str, item: Run | Analysis) -> Protocol:
    return load_protocol(protocol_name, list(item.overrides))


def record_file(protocol_name: str, item: Run | Analysis, results_dir: Path) -> Path:
    protocol = resolved(protocol_name, item)
    name = item.attack if isinstance(item, Run) else f"analysis_{item.kind}"
    return record_path(results_dir, protocol.name, protocol.hash, item.defense, item.seed, name)


def missing(protocol_name: str, figures: list[Figure], results_dir: Path) -> list[Run | Analysis]:
    """Every needed run or analysis whose record is not on disk, each once, in declaration order."""
    out: list[Run | Analysis] = []
    for fig in figures:
        for item in fig.needs:
            if item not in out and not record_file(protocol_name, item, results_dir).exists():
                out.append(item)
    return out


def load_record(protocol_name: str, item: Run | Analysis, results_dir: Path) -> AttackRecord | AnalysisRecord:
    """The typed record ``item`` names: an attack record for a run, the analysis record for an analysis."""
    path = record_file(protocol_name, item, results_dir)
    record = read_record(path)
    expected = AttackRecord if isinstance(item, Run) else AnalysisRecord
    if not isinstance(record, expected) or (isinstance(item, Analysis) and record.analysis.name != item.kind):
        raise RecordError(f"record {path} is of kind {record.kind!r}, not the {describe(item)!r} record a figure needs")
    return record


def load_records(protocol_name: str, fig: Figure, results_dir: Path) -> dict[Run | Analysis, AttackRecord | AnalysisRecord]:
    return {item: load_record(protocol_name, item, results_dir) for item in fig.needs}


def describe(item: Run | Analysis) -> str:
    sets = " ".join(f"--set {o}" for o in item.overrides)
    if isinstance(item, Run):
        return f"bench run --defense {item.defense} --attack {item.attack} --seed {item.seed} {sets}".strip()
    return f"bench analyze {item.kind} --defense {item.defense} --seed {item.seed} {sets}".strip()


def sample_line(records: dict[Run | Analysis, AttackRecord | AnalysisRecord]) -> str:
    """The caption's sample sizes and seeds: n test images per record (per attack where it differs), or what an analysis measured on."""
    from bench.figures.analysis_figures import analysis_sample

    seeds = sorted({rec.seed for rec in records.values()})
    seed_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)} (one record per model and {'attack' if any(isinstance(r, AttackRecord) for r in records.values()) else 'analysis'}, no repeats over seeds)"
    attacks = {item: rec for item, rec in records.items() if isinstance(rec, AttackRecord)}
    parts = []
    if attacks:
        per_attack: dict[str, set[int]] = {}
        for item, rec in attacks.items():
            per_attack.setdefault(item.attack, set()).add(rec.metrics.n_examples)
        counts = Counter(rec.metrics.n_examples for rec in attacks.values())
        common = max(counts, key=lambda n: (counts[n], n))  # the usual n; on a tie the larger
        odd = [f"{attack}: {', '.join(str(n) for n in sorted(ns))}" for attack, ns in per_attack.items() if ns != {common}]
        parts.append(f"n = {common} test images per record" + (f" ({'; '.join(odd)})" if odd else ""))
    for item, rec in records.items():
        if isinstance(rec, AnalysisRecord):
            parts.append(f"{item.name()}: {analysis_sample(rec)}")
    return f"Sample: {'; '.join(parts)}; {seed_text}."

