"""Paper figures: each paper declares its figures and the runs each needs.

``bench figures <paper>`` draws every figure from the records a results folder holds, over every
seed they have, and runs only what no records provide (``--dry-run`` lists it):

* A figure's records come from one *source*: one version of the protocol, the current one or an
  older one whose records are in the results folder (``results/reference`` holds several). Its
  runs with protocol overrides (a control) are looked up under that version's config with the
  overrides applied, so they are the same models' twins.
* Of the sources that hold every record the figure needs for at least one seed, the one with the
  most seeds (up to ``FIGURE_SEEDS``) is drawn, the newest version on a tie: a figure over 3
  seeds of an older version is drawn rather than 1 seed of the current one, and no model is
  retrained to redraw the shipped figures.
* Runs are planned only under the current protocol: for a figure that no source holds, or whose
  best source is the current protocol with fewer than ``FIGURE_SEEDS`` seeds (then the missing
  seeds), one run per needed record and seed (a run = protocol + overrides + defense + attack +
  seed, or an analysis).

Every figure says, in its subtitle and in CAPTIONS.md, which protocol version and how many seeds
it rests on.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from bench.protocol import Protocol, apply_override, config_hash, load_protocol, thaw
from bench.records import AnalysisRecord, AttackRecord, RecordError, read_record, record_path
from bench.records.store import folder_name

FIGURE_SEEDS = (0, 1, 2)  # the seeds a figure's missing runs are planned for: intervals over 3 trained models


@dataclass(frozen=True)
class Run:
    """One attack record to produce: ``bench run --defense D --attack A --seed S --set ...``."""

    defense: str
    attack: str
    seed: int = 0
    overrides: tuple[str, ...] = ()
    variant: str | None = None  # what a figure adds to the defense's label ("shuffled target")

    def name(self) -> str:
        return self.defense + (f" ({self.variant})" if self.variant else "")

    def at(self, seed: int) -> Run:
        return replace(self, seed=seed)

    @property
    def record_name(self) -> str:
        return self.attack


@dataclass(frozen=True)
class Analysis:
    """One analysis record to produce: ``bench analyze KIND --defense D --seed S``."""

    kind: str  # "rsa" | "filters"
    defense: str
    seed: int = 0
    overrides: tuple[str, ...] = ()
    variant: str | None = None

    def name(self) -> str:
        return self.defense + (f" ({self.variant})" if self.variant else "")

    def at(self, seed: int) -> Analysis:
        return replace(self, seed=seed)

    @property
    def record_name(self) -> str:
        return f"analysis_{self.kind}"


@dataclass(frozen=True, eq=False)
class Source:
    """One version of a protocol whose records a figure is drawn from."""

    name: str
    version: Any  # an int; None for a protocol file without one
    config: dict[str, Any]  # the version's config, without overrides (its hash is the records' folder)
    current: bool  # the protocol as the package ships it now

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    def hash_of(self, item: Run | Analysis) -> str:
        """The protocol hash of ``item``'s records under this version: its config with the item's overrides."""
        if not item.overrides:
            return self.hash
        config = copy.deepcopy(thaw(self.config))
        for override in item.overrides:
            apply_override(config, override)
        return config_hash(config)

    def path(self, results_dir: Path, item: Run | Analysis, seed: int) -> Path:
        return record_path(results_dir, self.name, self.hash_of(item), item.defense, seed, item.record_name)

    def seeds_of(self, results_dir: Path, item: Run | Analysis) -> set[int]:
        """The seeds whose record of ``item`` is on disk under this version."""
        folder = Path(results_dir) / f"{self.name}-{self.hash_of(item)[:12]}" / folder_name(item.defense)
        found = set()
        for path in folder.glob(f"seed*/{item.record_name}.json"):
            seed = path.parent.name.removeprefix("seed")
            if seed.isdigit():
                found.add(int(seed))
        return found

    def describe(self) -> str:
        """"quick version 7 (5fd98ff3e061)"."""
        version = f" version {self.version}" if self.version is not None else ""
        return f"{self.name}{version} ({self.hash[:12]})"


@dataclass
class FigureData:
    """What a figure is drawn from: per needed item (at seed 0), its records over ``seeds``, in seed order."""

    source: Source
    seeds: list[int]
    records: dict[Run | Analysis, list[AttackRecord | AnalysisRecord]]

    def __getitem__(self, item: Run | Analysis) -> list[AttackRecord | AnalysisRecord]:
        return self.records[item]

    def seeds_text(self) -> str:
        """"3 seeds (0, 1, 2)" / "1 seed (0)"."""
        n = len(self.seeds)
        return f"{n} seed{'s' if n != 1 else ''} ({', '.join(str(s) for s in self.seeds)})"

    def basis(self) -> str:
        """What the figure rests on, for its subtitle: "quick version 7 (5fd98ff3e061), 3 seeds (0, 1, 2)"."""
        return f"Data: {self.source.describe()}, {self.seeds_text()}"

    def n_examples(self, item: Run | Analysis) -> int:
        return max(rec.metrics.n_examples for rec in self.records[item])


@dataclass
class Figure:
    name: str
    caption: str
    needs: list[Run | Analysis]  # each at seed 0: the figure is drawn over every seed its source holds
    draw: Callable[[FigureData, Path], list[Path]]
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


def current_source(protocol_name: str) -> Source:
    protocol = load_protocol(protocol_name)
    return Source(protocol.name, protocol.raw_config().get("version"), protocol.raw_config(), True)


def sources(protocol_name: str, results_dir: Path) -> list[Source]:
    """The current protocol, then every other version of it with records in ``results_dir`` (read from
    one record of each ``<name>-<hash>`` folder), newest first."""
    current = current_source(protocol_name)
    found = {current.hash[:12]: current}
    for folder in sorted(Path(results_dir).glob(f"{current.name}-*")):
        short = folder.name.removeprefix(f"{current.name}-")
        if short in found or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/seed*/*.json")):
            if path.name == "summary.json":
                continue
            try:
                record = read_record(path)
            except RecordError:
                continue
            info = record.protocol
            if info.name == current.name and getattr(info, "config", None) and config_hash(info.config)[:12] == short:
                found[short] = Source(info.name, info.version, thaw(info.config), False)
            break
    others = sorted((s for s in found.values() if not s.current), key=lambda s: _version_key(s), reverse=True)
    return [current] + others


def _version_key(source: Source) -> int:
    return source.version if isinstance(source.version, int) else -1


def complete_seeds(source: Source, items: list[Run | Analysis], results_dir: Path) -> list[int]:
    """The seeds for which ``source`` holds every record of ``items``."""
    seeds: set[int] | None = None
    for item in items:
        have = source.seeds_of(results_dir, item)
        seeds = have if seeds is None else seeds & have
    return sorted(seeds or ())


def choose(protocol_name: str, fig: Figure, results_dir: Path,
           found: list[Source] | None = None) -> tuple[Source, list[int]] | None:
    """The source a figure is drawn from and its seeds (see the module docstring); None where none holds a seed."""
    best: tuple[tuple[int, int, bool], Source, list[int]] | None = None
    for source in found if found is not None else sources(protocol_name, results_dir):
        seeds = complete_seeds(source, fig.needs, results_dir)
        if not seeds:
            continue
        key = (min(len(seeds), len(FIGURE_SEEDS)), _version_key(source), source.current)
        if best is None or key > best[0]:
            best = (key, source, seeds)
    return None if best is None else (best[1], best[2])


def planned(protocol_name: str, fig: Figure, results_dir: Path, found: list[Source] | None = None) -> list[Run | Analysis]:
    """The runs ``fig`` needs under the current protocol (see the module docstring), seed by seed."""
    found = found if found is not None else sources(protocol_name, results_dir)
    choice = choose(protocol_name, fig, results_dir, found)
    if choice is not None and (not choice[0].current or len(choice[1]) >= len(FIGURE_SEEDS)):
        return []
    current = found[0]
    return [item.at(seed) for seed in FIGURE_SEEDS for item in fig.needs
            if not current.path(results_dir, item, seed).exists()]


def missing(protocol_name: str, figures: list[Figure], results_dir: Path) -> list[Run | Analysis]:
    """Every planned run of ``figures`` whose record is not on disk, each once, in declaration order."""
    found = sources(protocol_name, results_dir)
    out: list[Run | Analysis] = []
    for fig in figures:
        for item in planned(protocol_name, fig, results_dir, found):
            if item not in out:
                out.append(item)
    return out


def load_record(source: Source, item: Run | Analysis, seed: int, results_dir: Path) -> AttackRecord | AnalysisRecord:
    """The typed record ``item`` names at ``seed``: an attack record for a run, the analysis record for an analysis."""
    path = source.path(results_dir, item, seed)
    record = read_record(path)
    expected = AttackRecord if isinstance(item, Run) else AnalysisRecord
    if not isinstance(record, expected) or (isinstance(item, Analysis) and record.analysis.name != item.kind):
        raise RecordError(f"record {path} is of kind {record.kind!r}, not the {describe(item.at(seed))!r} record a figure needs")
    return record


def load_data(protocol_name: str, fig: Figure, results_dir: Path) -> FigureData | None:
    """The records ``fig`` is drawn from (its chosen source, every complete seed); None where there are none."""
    choice = choose(protocol_name, fig, results_dir)
    if choice is None:
        return None
    source, seeds = choice
    return FigureData(source, seeds, {item: [load_record(source, item, s, results_dir) for s in seeds] for item in fig.needs})


def describe(item: Run | Analysis) -> str:
    sets = " ".join(f"--set {o}" for o in item.overrides)
    if isinstance(item, Run):
        return f"bench run --defense {item.defense} --attack {item.attack} --seed {item.seed} {sets}".strip()
    return f"bench analyze {item.kind} --defense {item.defense} --seed {item.seed} {sets}".strip()


def sample_line(data: FigureData) -> str:
    """The caption's data: the protocol version, the seeds, n test images per record (per attack where it
    differs), or what an analysis measured on."""
    from bench.figures.analysis_figures import analysis_sample

    records = [(item, rec) for item, recs in data.records.items() for rec in recs]
    models = "one model per defense" if len(data.seeds) == 1 else f"{len(data.seeds)} models per defense, one per seed"
    older = "" if data.source.current else " (an earlier version than the protocol's current one)"
    parts = [f"protocol {data.source.describe()}{older}, {data.seeds_text()}: {models}"]
    attacks = [(item, rec) for item, rec in records if isinstance(rec, AttackRecord)]
    if attacks:
        per_attack: dict[str, set[int]] = {}
        for item, rec in attacks:
            per_attack.setdefault(item.attack, set()).add(rec.metrics.n_examples)
        counts = Counter(rec.metrics.n_examples for _, rec in attacks)
        common = max(counts, key=lambda n: (counts[n], n))  # the usual n; on a tie the larger
        odd = [f"{attack}: {', '.join(str(n) for n in sorted(ns))}" for attack, ns in per_attack.items() if ns != {common}]
        parts.append(f"n = {common} test images per record" + (f" ({'; '.join(odd)})" if odd else ""))
    for item, recs in data.records.items():
        if recs and isinstance(recs[0], AnalysisRecord):
            parts.append(f"{item.name()}: {analysis_sample(recs[0])}" + (" per seed" if len(recs) > 1 else ""))
    return f"Data: {'; '.join(parts)}."
