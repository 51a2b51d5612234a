"""The one leaderboard model: computed once, rendered by the Markdown leaderboard, the HTML page and ``bench compare``.

:func:`build_boards` turns a results folder's models into one :class:`Board` per protocol hash
and threat model: each defense (or user's network) an :class:`Entry` holding every seed's
numbers, its intervals at every eps, its status, its paired difference to the protocol's
reference defense and its rank.

A model's row has one of three statuses, decided here once for the Markdown leaderboard, the
HTML page and ``bench compare``:

* **ranked**: every sanity check passed and the protocol's whole leaderboard suite ran;
* **provisional**: every check that ran passed, but the suite is incomplete (only the
  ``leaderboard_suite_complete`` check flags): the worst case over fewer attacks overstates
  robustness, so it is not ranked; the exact command that completes it is given;
* **flagged**: a check suspects that the attacks failed (gradient masking, no convergence, ...):
  never ranked, whatever its value.

Each protocol compares every defense with one reference defense (``leaderboard.reference``,
``baseline`` by default): a user's own run of it when there is one, else the shipped
reference shown beside the user's runs.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import ConfigError
from bench.evaluation.checks import next_attack
from bench.evaluation.intervals import PairedComparison, compare_outcome_strings, hierarchical_interval, wilson_interval
from bench.protocol import DEFAULT_REFERENCE, builtin_protocols, leaderboard_of, load_protocol, middle_eps
from bench.records.schema import Check

RANKED, PROVISIONAL, FLAGGED = "ranked", "provisional", "flagged"
SUITE_CHECK = "leaderboard_suite_complete"


def is_suite_check(name: str) -> bool:
    return name == SUITE_CHECK or name.startswith(SUITE_CHECK + "_")


def status_of(flagged_checks: Iterable[str]) -> str:
    """ranked, provisional (only the suite is incomplete) or flagged (a check suspects the attack failed)."""
    names = set(flagged_checks)
    if not names:
        return RANKED
    return PROVISIONAL if all(is_suite_check(n) for n in names) else FLAGGED


def reference_defense(config: Mapping[str, Any] | None) -> str:
    """The defense a protocol's leaderboard compares every other with (``leaderboard.reference``)."""
    try:
        board = leaderboard_of(config) if isinstance(config, Mapping) else None
    except ConfigError:
        board = None
    return board.reference if board is not None else DEFAULT_REFERENCE


def reference_label(labels: Iterable[str], reference: str) -> str | None:
    """The row to compare with: the user's own run of ``reference``, else the shipped one; None without either."""
    labels = set(labels)
    for label in (reference, f"{reference} [reference]"):
        if label in labels:
            return label
    return None


def _protocol_argument(record: Any) -> str:
    """``--protocol`` as the user would type it: a shipped name when the record ran the shipped protocol today."""
    name, source = record.protocol.name, record.protocol.source
    if name in builtin_protocols() and load_protocol(name).hash == record.protocol.hash:
        return name
    return shlex.quote(str(source)) if source and Path(str(source)).is_absolute() else name


def completing_command(record: Any) -> str:
    """The command that runs the rest of a model's leaderboard suite (records already there are reused)."""
    protocol = _protocol_argument(record)
    seed = record.seed
    if record.defense.user_model:
        source = record.model.get("obtained_with")
        if not source:  # handed over in Python
            return (f"bench.evaluate(model, name={record.defense.name!r}, protocol={protocol!r}, seed={seed}, "
                    "results=<this results folder>) without attacks=")
        return f"bench eval {source} --name {record.defense.name} --protocol {protocol} --seed {seed}"
    return f"bench run --protocol {protocol} --defense {record.defense.name} --seed {seed}"


def run_next(flagged_checks: Iterable[str], record: Any | None = None) -> str:
    """What to run next for a row's flagged checks: the attack each suspects, or the completing command."""
    advice = []
    for name in flagged_checks:
        advice.append(completing_command(record) if is_suite_check(name) and record is not None else next_attack(name))
    return "; ".join(dict.fromkeys(advice))


# -- the leaderboard model: computed once per (protocol hash, threat model), rendered by every output

CONFIDENCE = 0.95


MINUS = "\u2212"  # the minus sign of the HTML page's numbers


def bracket_text(low: float | None, high: float | None, signed: bool = False) -> str:
    """A 95 % interval in percent or points: "[80.7, 83.6]", signed "[−8.3, −5.8]"; "" without one."""
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return ""
    form = "+.1f" if signed else ".1f"
    return f"[{100 * low:{form}}, {100 * high:{form}}]".replace("-", MINUS)


def points_text(difference: float) -> str:
    """A difference in points, written once with its sign: "+28.2", "−7.0"."""
    return f"{100 * difference:+.1f}".replace("-", MINUS)


def p_value_text(c: PairedComparison | None) -> str:
    """"p < 0.001", "p = 0.042"; "" where there is no p-value."""
    if c is None or c.p_value is None:
        return ""
    return "p < 0.001" if c.p_value < 0.001 else f"p = {c.p_value:.3f}"


def difference_sentence(c: PairedComparison, reference: str, p: bool = True, minus: str = MINUS) -> str:
    """A paired difference in words, its sign written once: "−7.0 points (95 % CI −8.3 to −5.8) vs baseline"
    (``minus="-"`` for plain-text outputs)."""
    inside = f"95 % CI {100 * c.low:+.1f} to {100 * c.high:+.1f}"
    if p and p_value_text(c):
        inside += ", " + p_value_text(c)
    return f"{100 * c.difference:+.1f} points ({inside}) vs {reference}".replace("-", minus)


def sample_std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # as pandas: ddof 1


def eps_key(by_eps: Mapping[str, Any], eps: float) -> str | None:
    return next((k for k in by_eps if math.isclose(float(k), eps, rel_tol=1e-9, abs_tol=1e-12)), None)


def interval_text(mean: float, low: float | None, high: float | None, std: float = 0.0, seeds: int = 1) -> str:
    """An accuracy in percent with its 95 % interval (mean ± std when no interval could be computed)."""
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return f"{100 * mean:.1f}" if seeds < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}"
    return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def difference_text(c: PairedComparison | None, p: bool = True, star: bool = True) -> str:
    """"+28.2 [+24.9, +31.5], p < 0.001 *" in points; "" without a comparison. ``star``: mark a significant
    difference with "*" (not for a side whose numbers are not to be trusted)."""
    if c is None:
        return ""
    text = f"{100 * c.difference:+.1f} [{100 * c.low:+.1f}, {100 * c.high:+.1f}]"
    if p:
        text += f", {p_value_text(c) or c.p_text()}"
    return text + (" *" if star and c.significant else "")


@dataclass(frozen=True)
class Cell:
    """A defense's accuracy at one eps: the mean over seeds, its std and its 95 % interval."""

    mean: float
    std: float
    seeds: int
    low: float | None
    high: float | None

    def text(self) -> str:
        return interval_text(self.mean, self.low, self.high, self.std, self.seeds)


def _cell(values: list[float], bits: list[str]) -> Cell:
    """Over several seeds the hierarchical bootstrap over seeds and examples; one seed: Wilson over its examples."""
    outcomes = [np.frombuffer(b.encode(), dtype=np.uint8) == ord("1") for b in bits if b]
    low = high = None
    if outcomes:
        _, low, high = hierarchical_interval(outcomes, CONFIDENCE)
    return Cell(sum(values) / len(values), sample_std(values), len(values), low, high)


@dataclass
class Entry:
    """One defense (or user's network) of a leaderboard: every seed's numbers, its status, its comparison
    with the protocol's reference defense, its rank."""

    defense: str  # the label reports show
    slug: str
    seeds: list[int]
    n: list[int]
    clean: list[float]
    robust: list[float]  # at the leaderboard's eps
    attacks: list[str]
    flags: list[Check]
    ci: tuple[float, float]
    cells: dict[float, Cell] = field(default_factory=dict)  # every eps of the grid
    clean_cell: Cell | None = None
    models: list[Any] = field(default_factory=list, repr=False)  # its ModelResults, by seed
    clean_delta: float | None = None
    bits: dict[int, str] = field(default_factory=dict, repr=False)  # seed -> per-example worst-case outcomes at eps
    clean_bits: dict[int, str] = field(default_factory=dict, repr=False)  # seed -> per-example clean outcomes
    vs_baseline: PairedComparison | None = None
    clean_vs_baseline: PairedComparison | None = None
    detail_id: str = ""
    rank: int | None = None
    tied: bool = False  # its interval overlaps the leader's
    randomized: bool = False  # the pipeline draws noise: its numbers are single-draw scores
    status: str = RANKED  # ranked | provisional (suite incomplete) | flagged
    commands: list[str] = field(default_factory=list)  # for a provisional entry: what completes its suite
    missing: list[str] = field(default_factory=list)  # for a provisional entry: the suite's runs not yet there

    @property
    def flag_names(self) -> list[str]:
        return sorted({c.name for c in self.flags})

    @property
    def run_next(self) -> str:
        return run_next(self.flag_names, self.models[0].attack_records[0] if self.models else None)

    @property
    def clean_mean(self) -> float:
        return sum(self.clean) / len(self.clean)

    @property
    def robust_mean(self) -> float:
        return sum(self.robust) / len(self.robust)

    @property
    def several(self) -> bool:
        return len(self.seeds) > 1

    def clean_text(self) -> str:
        """"86.1 [85.2, 87.0]": the mean over seeds and its 95 % interval."""
        if self.clean_cell is not None:
            return self.clean_cell.text()
        return interval_text(self.clean_mean, None, None, sample_std(self.clean), len(self.seeds))

    def clean_ci_text(self) -> str:
        return "" if self.clean_cell is None else bracket_text(self.clean_cell.low, self.clean_cell.high)

    def robust_text(self) -> str:
        """"82.2 [80.7, 83.6]": the mean over seeds and its 95 % interval."""
        return interval_text(self.robust_mean, self.ci[0], self.ci[1])

    def ci_text(self) -> str:
        """The robust accuracy's 95 % interval: "[80.7, 83.6]"."""
        return bracket_text(*self.ci)

    def delta_text(self) -> str:
        """Clean accuracy minus the reference's, paired over the same examples where both have them: "−9.1 [−11.2, −7.0]"."""
        c = self.clean_vs_baseline
        if c is not None:
            return f"{points_text(c.difference)} {bracket_text(c.low, c.high, signed=True)}"
        return "" if self.clean_delta is None else points_text(self.clean_delta)

    def vs_text(self) -> str:
        """Robust accuracy minus the reference's, paired over the same examples: "+28.2 [+24.9, +31.5], p < 0.001"."""
        c = self.vs_baseline
        if c is None:
            return ""
        p = p_value_text(c)
        return f"{points_text(c.difference)} {bracket_text(c.low, c.high, signed=True)}" + (f", {p}" if p else "")

    def vs_sentence(self, reference: str = DEFAULT_REFERENCE) -> str:
        """The robust accuracy's paired difference in words: "+80.5 points (95 % CI +78.8 to +82.2, p < 0.001) vs baseline"."""
        return "" if self.vs_baseline is None else difference_sentence(self.vs_baseline, reference)

    def cost_text(self, reference: str = DEFAULT_REFERENCE) -> str:
        """The clean accuracy against the reference's, in words: "−7.0 points (95 % CI −8.3 to −5.8) vs baseline"."""
        if self.clean_delta is None:
            return ""
        c = self.clean_vs_baseline
        # the paired difference (same seeds and images) where there is one, so that the figure
        # is the centre of its own interval and matches the tables' paired column
        if c is None:
            return f"{points_text(self.clean_delta)} points vs {reference}"
        return difference_sentence(c, reference, p=False)

    def n_text(self) -> str:
        return str(self.n[0]) if len(set(self.n)) == 1 else " / ".join(map(str, self.n))


@dataclass
class Board:
    """One protocol hash's leaderboard for one threat model: ranked, provisional and flagged entries."""

    protocol: str
    phash: str
    threat: str
    eps: float  # the ranking eps: the middle of the non-zero grid
    grid: list[float]  # the non-zero eps of the grid
    ranked: list[Entry]
    provisional: list[Entry]
    flagged: list[Entry]
    reference: Entry | None  # the entry every other is compared with
    models: list[Any] = field(default_factory=list, repr=False)

    @property
    def entries(self) -> list[Entry]:
        return self.ranked + self.provisional + self.flagged

    @property
    def ties(self) -> list[Entry]:
        return [e for e in self.ranked[1:] if e.tied]


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-")


def model_flags(model: Any, threat: str) -> list[Check]:
    """The flagged checks that concern a model's ``threat`` numbers: its cross-attack checks of that threat model
    (or of none), and the checks of the attacks of that threat model."""
    summary = model.summary
    names = {r.attack.name for r in model.attack_records if r.attack.threat_model == threat}
    out = [c for c in summary.cross_attack_checks if c.threat_model in (threat, None) and not c.passed]
    by_record = [c.with_numbers(attack=r.attack.name) for r in model.attack_records if r.attack.name in names
                 for c in r.checks if not c.passed]
    return out + by_record


def clean_record(model: Any) -> Any:
    """The record a model's clean accuracy is taken from: of those on the most examples, the highest clean accuracy."""
    recs = model.attack_records
    n_max = max(r.metrics.n_examples for r in recs)
    return max((r for r in recs if r.metrics.n_examples == n_max), key=lambda r: r.metrics.clean_accuracy)


def _entry(label: str, group: list[Any], threat: str, eps: float, grid: list[float]) -> Entry | None:
    group = sorted(group, key=lambda m: m.attack_records[0].seed)
    seeds, n, clean, robust, attacks, found, used = [], [], [], [], set(), [], []
    per_seed_bits: dict[int, str] = {}
    per_seed_clean: dict[int, str] = {}
    k_total = n_total = 0
    for m in group:
        by_eps = m.summary.worst_case.get(threat, {})
        key = eps_key(by_eps, eps)
        if key is None:
            continue
        w = by_eps[key]
        seed = m.attack_records[0].seed
        seeds.append(seed)
        used.append(m)
        n.append(w.n_examples)
        best = clean_record(m)
        clean.append(best.metrics.clean_accuracy)
        robust.append(w.accuracy)
        attacks.update(w.attacks)
        k_total += round(w.accuracy * w.n_examples)
        n_total += w.n_examples
        found += [c.with_numbers(seed=seed) for c in model_flags(m, threat)]
        bits = m.worst_bits(threat, eps)
        if bits is not None:
            per_seed_bits[seed] = bits
        if best.metrics.per_example.clean:
            per_seed_clean[seed] = best.metrics.per_example.clean
    if not seeds:
        return None
    if len(per_seed_bits) == len(seeds):  # over several seeds: the hierarchical bootstrap; one seed: Wilson
        outcomes = [np.frombuffer(b.encode(), dtype=np.uint8) == ord("1") for b in per_seed_bits.values()]
        ci = hierarchical_interval(outcomes, CONFIDENCE)[1:]
    else:
        ci = wilson_interval(k_total, n_total, CONFIDENCE)
    cells = {}
    for e in grid:
        values = [w.accuracy for m in used for by in [m.summary.worst_case.get(threat, {})] for k in [eps_key(by, e)]
                  if k is not None for w in [by[k]]]
        if values:
            cells[e] = _cell(values, [m.worst_bits(threat, e) or "" for m in used])
    status = status_of(c.name for c in found)
    incomplete = [m for m in used if status_of(c.name for c in model_flags(m, threat)) == PROVISIONAL]
    return Entry(label, slug(label), seeds, n, clean, robust, sorted(attacks), found, ci, cells,
                 _cell(clean, list(per_seed_clean.values())) if len(per_seed_clean) == len(seeds) else _cell(clean, []),
                 used, bits=per_seed_bits, clean_bits=per_seed_clean,
                 randomized=any(m.attack_records[0].defense.randomized for m in used), status=status,
                 commands=list(dict.fromkeys(completing_command(m.attack_records[0]) for m in incomplete)),
                 missing=sorted({a for m in incomplete for c in m.summary.cross_attack_checks
                                 if is_suite_check(c.name) and not c.passed for a in c.numbers.get("missing", [])}))


def build_board(models: Sequence[Any], threat: str = "linf", eps: float | None = None) -> Board | None:
    """The leaderboard of one protocol hash's models (``ModelResults``) for ``threat``, ranked at ``eps``
    (default: the middle of the non-zero grid); None when no model has numbers for ``threat``."""
    models = list(models)
    keys = {float(k) for m in models for k in m.summary.worst_case.get(threat, {})}
    grid = sorted(e for e in keys if e > 0)
    if not keys:
        return None
    eps = middle_eps(sorted(keys)) if eps is None else eps
    by_label: dict[str, list[Any]] = {}
    for m in models:
        by_label.setdefault(m.attack_records[0].defense.label, []).append(m)
    entries = [e for e in (_entry(label, group, threat, eps, grid) for label, group in sorted(by_label.items())) if e]
    first = models[0].attack_records[0]
    ref_label = reference_label([e.defense for e in entries], reference_defense(first.protocol.config))
    reference = next((e for e in entries if e.defense == ref_label), None)
    for e in entries:
        if reference is None or e is reference:
            continue
        e.clean_delta = e.clean_mean - reference.clean_mean
        e.vs_baseline = compare_outcome_strings(e.bits, reference.bits, CONFIDENCE)
        e.clean_vs_baseline = compare_outcome_strings(e.clean_bits, reference.clean_bits, CONFIDENCE)
    order = lambda e: (-e.robust_mean, -e.clean_mean, e.defense)  # noqa: E731
    ranked = sorted((e for e in entries if e.status == RANKED), key=order)
    for i, e in enumerate(ranked, 1):
        e.rank = i
        e.tied = i > 1 and e.ci[1] >= ranked[0].ci[0]
    return Board(first.protocol.name, first.protocol.short_hash, threat, eps, grid, ranked,
                 sorted((e for e in entries if e.status == PROVISIONAL), key=order),
                 sorted((e for e in entries if e.status == FLAGGED), key=order), reference, models)


def build_boards(results: Any, threat: str = "linf") -> list[Board]:
    """Every protocol hash's leaderboard for ``threat``, in (protocol, hash) order."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for m in results.models:
        first = m.attack_records[0]
        groups.setdefault((first.protocol.name, first.protocol.short_hash), []).append(m)
    boards = [build_board(models, threat) for _, models in sorted(groups.items())]
    return [b for b in boards if b is not None]


def boards_frame(boards: Sequence[Board]) -> pd.DataFrame:
    """The leaderboards as one long table (``leaderboard.csv``): a row per protocol hash, defense and eps, with its
    status, rank, intervals and paired differences to the reference at the ranking eps."""
    rows = []
    for board in boards:
        for e in board.entries:
            vs, clean_vs = e.vs_baseline, e.clean_vs_baseline
            for eps, cell in sorted(e.cells.items()):
                rows.append({
                    "protocol": board.protocol, "protocol_hash": board.phash, "threat_model": board.threat,
                    "defense": e.defense, "status": e.status, "rank": e.rank, "seeds": len(e.seeds), "n_examples": max(e.n),
                    "clean": e.clean_cell.mean if e.clean_cell else e.clean_mean,
                    "clean_low": e.clean_cell.low if e.clean_cell else None,
                    "clean_high": e.clean_cell.high if e.clean_cell else None,
                    "eps": eps, "robust": cell.mean, "robust_low": cell.low, "robust_high": cell.high,
                    "ranking_eps": eps == board.eps,
                    "reference": board.reference.defense if board.reference else None,
                    "robust_vs_reference": vs.difference if vs and eps == board.eps else None,
                    "robust_vs_reference_low": vs.low if vs and eps == board.eps else None,
                    "robust_vs_reference_high": vs.high if vs and eps == board.eps else None,
                    "clean_vs_reference": clean_vs.difference if clean_vs else None,
                    "clean_vs_reference_low": clean_vs.low if clean_vs else None,
                    "clean_vs_reference_high": clean_vs.high if clean_vs else None,
                    "flags": ";".join(e.flag_names), "next": e.run_next if e.status != RANKED else "",
                })
    return pd.DataFrame(rows)
