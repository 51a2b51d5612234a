"""``reports/index.html``: one self-contained page that leads with the answer.

Per protocol (and hash), in this order:

1. the leaderboard: one row per defense, its clean accuracy and its L_inf worst case over the attacks
   run (the leaderboard robust accuracy) at the protocol's headline eps (``tables.reference_eps``),
   with a 95 % Wilson interval over the examples; trusted defenses ranked, flagged ones listed apart
   below them with the flagged checks and their detail text;
2. the figures (accuracy against eps per threat model, the clean/robust trade-off), inlined;
3. per defense: its attacks x eps table, every check with its numbers, its training history.

Every row of the long table (one per protocol, defense, attack, threat model and eps) and every
record's resolved configuration come last, collapsed.

Rendered with Jinja2 from ``templates/report.html.j2`` with autoescaping on: every piece of text from
a record is escaped by the template. No server, no network: CSS, the sorting script and the images
(base64 data URIs) are inline. Sorting: click a column header (again to reverse); numeric columns
sort on a ``data-sort`` value, missing values last. ``#sort=KEY`` or ``#sort=KEY:desc`` in the URL
sorts every table with that column on load. ``<html data-errors>`` collects script errors
(``window.onerror``), for headless checks; ``<body data-images-loaded>`` says whether every image loaded.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from bench.errors import BenchError
from bench.evaluation.checks import next_attack
from bench.evaluation.intervals import PairedComparison, compare_outcome_strings, hierarchical_interval, wilson_interval
from bench.records.results import ModelResults, Results, load_results, outdated_protocols
from bench.records.schema import Check
from bench.reporting.leaderboard import (FLAGGED, PROVISIONAL, RANKED, completing_command, is_suite_check, reference_defense,
                                         reference_label, status_of)
from bench.reporting.plots import _stem
from bench.reporting.tables import WORST, randomized_caveat, records_frame, reference_eps, summary_table

INDEX_NAME = "index.html"
TEMPLATE = "report.html.j2"
HEADLINE_THREAT = "linf"
CONFIDENCE = 0.95
MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
        ".webp": "image/webp"}
IMAGE_SUFFIXES = set(MIME)
THREAT_NAMES = {"linf": "L∞", "l2": "L2", "gaussian_noise": "Gaussian noise", "uniform_noise": "uniform noise",
                "salt_pepper": "salt-and-pepper noise"}

# (sort key, header, numeric?) of the long table's columns, in order
COLUMNS = [
    ("protocol", "protocol", False),
    ("defense", "defense", False),
    ("attack", "attack", False),
    ("threat", "threat model", False),
    ("eps", "eps", True),
    ("seeds", "seeds", True),
    ("n", "n", True),
    ("clean", "clean %", True),
    ("robust", "robust %", True),
    ("top5", "top-5 %", True),
    ("mrr", "MRR %", True),
    ("sanity", "sanity checks", False),
]
SORT_KEYS = [key for key, _, _ in COLUMNS]

FIGURE_ALT = {  # by the start of a figure's file name
    "accuracy_vs_eps": "Robust accuracy (%) against the perturbation budget eps for one protocol and threat model, "
                       "one line per defense: its worst case over the attacks run",
    "tradeoff": "Clean accuracy (%) against worst-case robust accuracy (%) at the protocol's headline L_inf eps, "
                "one point per defense, with the Pareto front",
}


def _threat(threat: str) -> str:
    return THREAT_NAMES.get(threat, threat)


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _pct(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{100 * v:.1f}"


def _pm(mean: float, std: float, seeds: int) -> str:
    return f"{100 * mean:.1f}" if seeds < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # as pandas: ddof 1


def _eps_key(by_eps: dict[str, Any], eps: float) -> str | None:
    return next((k for k in by_eps if math.isclose(float(k), eps, rel_tol=1e-9, abs_tol=1e-12)), None)


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text if len(text) <= 160 else text[:157] + "..."
    return str(value)


# --- view model -----------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One defense in a protocol's leaderboard."""

    defense: str
    slug: str
    seeds: list[int]
    n: list[int]
    clean: list[float]
    robust: list[float]
    attacks: list[str]
    flags: list[Check]
    ci: tuple[float, float]
    clean_delta: float | None = None
    bits: dict[int, str] = field(default_factory=dict, repr=False)  # seed -> per-example worst-case outcomes at eps
    clean_bits: dict[int, str] = field(default_factory=dict, repr=False)  # seed -> per-example clean outcomes
    vs_baseline: PairedComparison | None = None
    clean_vs_baseline: PairedComparison | None = None
    detail_id: str = ""
    rank: int | None = None
    tied: bool = False  # its interval overlaps the leader's
    randomized: bool = False  # the pipeline draws noise: its numbers are single-draw scores
    status: str = RANKED  # ranked | provisional (suite incomplete) | flagged (bench.reporting.leaderboard)
    commands: list[str] = field(default_factory=list)  # for a provisional row: what completes its suite
    missing: list[str] = field(default_factory=list)  # for a provisional row: the suite's runs not yet there

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
        return _pm(self.clean_mean, _std(self.clean), len(self.seeds))

    def robust_text(self) -> str:
        return _pm(self.robust_mean, _std(self.robust), len(self.seeds))

    def ci_text(self) -> str:
        return f"{100 * self.ci[0]:.1f}–{100 * self.ci[1]:.1f}"

    def delta_text(self) -> str:
        """Clean accuracy minus the baseline's, paired over the same examples where both have them: "−9.1 [−11.2, −7.0]"."""
        c = self.clean_vs_baseline
        if c is not None:
            return f"{100 * c.difference:+.1f} [{100 * c.low:+.1f}, {100 * c.high:+.1f}]".replace("-", "\u2212")
        return "" if self.clean_delta is None else f"{100 * self.clean_delta:+.1f}".replace("-", "\u2212")

    def vs_text(self) -> str:
        """Robust accuracy minus the baseline's, paired over the same examples: "+28.2 [24.9, 31.5], p < 0.001"."""
        c = self.vs_baseline
        if c is None:
            return ""
        text = f"{100 * c.difference:+.1f} [{100 * c.low:+.1f}, {100 * c.high:+.1f}], {c.p_text()}"
        return text.replace("-", "\u2212")

    def vs_sentence(self) -> str:
        """The paired comparison in words, for the answer box."""
        c = self.vs_baseline
        if c is None:
            return ""
        p = c.p_text() if c.p_value is None else "McNemar " + c.p_text()
        text = (f"{100 * abs(c.difference):.1f} points {'more' if c.difference >= 0 else 'less'} robust than the baseline on the "
                f"same images (95 % CI {100 * c.low:+.1f} to {100 * c.high:+.1f}, {p}")
        return text.replace("-", "\u2212") + ("; significant)" if c.significant else "; not significant)")

    def cost_text(self) -> str:
        """The clean accuracy against the baseline's, in words: "9.1 points below"."""
        if self.clean_delta is None:
            return ""
        c = self.clean_vs_baseline
        # the paired difference (same seeds and images) where there is one, so that the figure
        # is the centre of its own interval and matches the tables' paired column
        d = 100 * (self.clean_delta if c is None else c.difference)
        ci = "" if c is None else f" (95 % CI {100 * c.low:+.1f} to {100 * c.high:+.1f})".replace("-", "\u2212")
        return "as clean as" if abs(d) < 0.05 else f"{abs(d):.1f} points{ci} {'below' if d < 0 else 'above'}"

    def n_text(self) -> str:
        return str(self.n[0]) if len(set(self.n)) == 1 else " / ".join(map(str, self.n))


@dataclass
class Defense:
    """One defense of a protocol, in detail."""

    label: str
    slug: str
    row: Row | None
    eps_tables: list[dict]  # per threat model: {"threat", "grid", "rows": [(attack, worst?, [cell...])]}
    checks: list[dict]  # {"seed", "scope", "name", "passed", "status", "detail", "numbers"}
    histories: list[dict]  # {"seed", "epochs": [...], "best_epoch", "seconds"}
    notes: list[str]
    detail_figures: list[dict]


@dataclass
class Section:
    protocol: str
    phash: str
    slug: str
    eps: float | None
    trusted: list[Row]
    provisional: list[Row]
    flagged: list[Row]
    baseline: str | None
    several_seeds: bool
    attacks: list[str]
    figures: list[dict]
    defenses: list[Defense]
    n_models: int
    created: str
    description: str = ""
    answer: dict = field(default_factory=dict)
    outdated: str = ""


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-")


def _model_flags(model: ModelResults, threat: str) -> list[Check]:
    """The flagged checks that concern a model's ``threat`` numbers: its cross-attack checks of that threat model
    (or of none), and the checks of the attacks of that threat model."""
    summary = model.summary
    names = {r.attack.name for r in model.attack_records if r.attack.threat_model == threat}
    out = [c for c in summary.cross_attack_checks if c.threat_model in (threat, None) and not c.passed]
    by_record = [c.with_numbers(attack=r.attack.name) for r in model.attack_records if r.attack.name in names
                 for c in r.checks if not c.passed]
    return out + by_record


def _paired(row: Row, baseline: Row) -> PairedComparison | None:
    """``row``'s worst case against ``baseline``'s on the same examples, over the seeds both have."""
    return compare_outcome_strings(row.bits, baseline.bits, CONFIDENCE)


def _clean_bits(model: ModelResults) -> str:
    """The per-example clean outcomes of the record that ``_clean`` takes the clean accuracy from."""
    recs = model.attack_records
    n_max = max(r.metrics.n_examples for r in recs)
    best = max((r for r in recs if r.metrics.n_examples == n_max), key=lambda r: r.metrics.clean_accuracy)
    return best.metrics.per_example.clean


def _clean(model: ModelResults) -> float:
    recs = model.attack_records
    n_max = max(r.metrics.n_examples for r in recs)
    return max(r.metrics.clean_accuracy for r in recs if r.metrics.n_examples == n_max)


def _leaderboard_rows(models: list[ModelResults], eps: float, threat: str) -> list[Row]:
    by_defense: dict[str, list[ModelResults]] = {}
    for m in models:
        by_defense.setdefault(m.attack_records[0].defense.label, []).append(m)
    rows = []
    for label, group in sorted(by_defense.items()):
        group = sorted(group, key=lambda m: m.attack_records[0].seed)
        seeds, n, clean, robust, attacks, found = [], [], [], [], set(), []
        per_seed_bits: dict[int, str] = {}
        per_seed_clean: dict[int, str] = {}
        k_total = n_total = 0
        for m in group:
            by_eps = m.summary.worst_case.get(threat, {})
            key = _eps_key(by_eps, eps)
            if key is None:
                continue
            w = by_eps[key]
            seeds.append(m.attack_records[0].seed)
            n.append(w.n_examples)
            clean.append(_clean(m))
            robust.append(w.accuracy)
            attacks.update(w.attacks)
            k_total += round(w.accuracy * w.n_examples)
            n_total += w.n_examples
            found += [c.with_numbers(seed=seeds[-1]) for c in _model_flags(m, threat)]
            bits = m.worst_bits(threat, eps)
            if bits is not None:
                per_seed_bits[seeds[-1]] = bits
            if _clean_bits(m):
                per_seed_clean[seeds[-1]] = _clean_bits(m)
        if not seeds:
            continue
        if len(per_seed_bits) == len(seeds):  # over several seeds: the hierarchical bootstrap; one seed: Wilson
            outcomes = [np.frombuffer(b.encode(), dtype=np.uint8) == ord("1") for b in per_seed_bits.values()]
            ci = hierarchical_interval(outcomes, CONFIDENCE)[1:]
        else:
            ci = wilson_interval(k_total, n_total, CONFIDENCE)
        status = status_of(c.name for c in found)
        incomplete = [m for m in group if status_of(c.name for c in _model_flags(m, threat)) == PROVISIONAL]
        commands = list(dict.fromkeys(completing_command(m.attack_records[0]) for m in incomplete))
        missing = sorted({a for m in incomplete for c in m.summary.cross_attack_checks
                          if is_suite_check(c.name) and not c.passed for a in c.numbers.get("missing", [])})
        rows.append(Row(label, _slug(label), seeds, n, clean, robust, sorted(attacks), found, ci,
                        bits=per_seed_bits, clean_bits=per_seed_clean,
                        randomized=any(m.attack_records[0].defense.randomized for m in group), status=status,
                        commands=commands, missing=missing))
    return rows


def _eps_tables(table: pd.DataFrame) -> list[dict]:
    out = []
    for threat, part in table.groupby("threat_model", sort=False):
        grid = sorted(part["eps"].unique())
        rows = []
        for attack, rs in part.groupby("attack", sort=False):
            by_eps = {r.eps: r for r in rs.itertuples()}
            cells = [("" if e not in by_eps else _pm(by_eps[e].robust_mean, by_eps[e].robust_std, by_eps[e].seeds),
                      bool(e in by_eps and by_eps[e].flags)) for e in grid]
            rows.append({"attack": attack, "worst": attack == WORST, "cells": cells})
        rows.sort(key=lambda r: (r["worst"], r["attack"]))
        out.append({"threat": threat, "threat_name": _threat(threat), "grid": [f"{e:g}" for e in grid], "rows": rows})
    order = {HEADLINE_THREAT: 0, "l2": 1}
    return sorted(out, key=lambda t: (order.get(t["threat"], 2), t["threat"]))


def _checks(models: list[ModelResults]) -> list[dict]:
    out = []

    def add(seed, scope, c: Check):
        numbers = [(k, _compact(v)) for k, v in c.numbers.items() if k != "attack"]
        out.append({"seed": seed, "scope": scope, "name": c.name, "passed": c.passed, "status": c.status,
                    "detail": c.detail, "numbers": numbers})

    for m in models:
        seed = m.attack_records[0].seed
        for rec in sorted(m.attack_records, key=lambda r: (r.attack.threat_model, r.attack.name)):
            for c in rec.checks:
                add(seed, f"{rec.attack.name} ({_threat(rec.attack.threat_model)})", c)
        for c in m.summary.cross_attack_checks:
            add(seed, "across attacks" + (f" ({_threat(c.threat_model)})" if c.threat_model else ""), c)
    return out


def _history(model: ModelResults) -> dict | None:
    training = next((r.model.get("training") for r in model.attack_records if isinstance(r.model.get("training"), dict)), None)
    if not training or not training.get("history"):
        return None
    epochs = []
    for h in training["history"]:
        epochs.append({"epoch": h.get("epoch", ""), "lr": _compact(h["lr"]) if "lr" in h else "",
                       "train_loss": "" if h.get("train_loss") is None else f"{h['train_loss']:.4f}",
                       "train_acc": _pct(h.get("train_acc")), "val_loss": "" if h.get("val_loss") is None else f"{h['val_loss']:.4f}",
                       "val_acc": _pct(h.get("val_acc")),
                       "seconds": "" if h.get("seconds") is None else f"{h['seconds']:.0f}"})
    return {"seed": model.attack_records[0].seed, "epochs": epochs, "best_epoch": training.get("best_epoch"),
            "seconds": None if training.get("train_seconds") is None else f"{training['train_seconds']:.0f}"}


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return f"data:{MIME[path.suffix.lower()]};base64," + base64.b64encode(data).decode("ascii")


def _figure(img: Path, reports_dir: Path, pdfs: dict) -> dict:
    rel = Path(os.path.relpath(img, reports_dir)).as_posix()
    alt = next((a for prefix, a in FIGURE_ALT.items() if img.stem.startswith(prefix)), f"Figure {img.stem.replace('_', ' ')}")
    pdf = pdfs.get((img.parent, img.stem))
    src = _data_uri(img)
    return {"src": src if src is not None else rel, "file": rel, "alt": alt, "missing": src is None,
            "pdf": None if pdf is None else Path(os.path.relpath(pdf, reports_dir)).as_posix()}


def _sections(results: Results, table: pd.DataFrame, figures: list[Path], reports_dir: Path) -> list[Section]:
    eps_ref = reference_eps(table)
    images = [f for f in figures if f.suffix.lower() in IMAGE_SUFFIXES]
    pdfs = {(f.parent, f.stem): f for f in figures if f.suffix.lower() == ".pdf"}
    groups: dict[tuple[str, str], list[ModelResults]] = {}
    for m in results.models:
        first = m.attack_records[0]
        groups.setdefault((first.protocol.name, first.protocol.short_hash), []).append(m)
    sections = []
    outdated = outdated_protocols(results)
    for (protocol, phash), models in groups.items():
        stem = _stem(protocol, phash)
        part = table[(table["protocol"] == protocol) & (table["protocol_hash"] == phash)]
        worst = part[(part["attack"] == WORST) & (part["threat_model"] == HEADLINE_THREAT)]
        eps = eps_ref.get((protocol, HEADLINE_THREAT))
        if eps is not None and not (worst["eps"] == eps).any():  # this hash's own grid differs: its own middle
            grid = sorted(e for e in worst["eps"].unique() if e > 0) or [0.0]
            eps = grid[len(grid) // 2] if len(worst) else None
        rows = _leaderboard_rows(models, eps, HEADLINE_THREAT) if eps is not None else []
        reference = reference_label([r.defense for r in rows], reference_defense(models[0].attack_records[0].protocol.config))
        baseline = next((r for r in rows if r.defense == reference), None)
        for r in rows:
            r.clean_delta = None if baseline is None or r is baseline else r.clean_mean - baseline.clean_mean
            r.vs_baseline = None if baseline is None or r is baseline else _paired(r, baseline)
            r.clean_vs_baseline = None if baseline is None or r is baseline else \
                compare_outcome_strings(r.clean_bits, baseline.clean_bits, CONFIDENCE)
        order = lambda r: (-r.robust_mean, -r.clean_mean, r.defense)  # noqa: E731
        trusted = sorted((r for r in rows if r.status == RANKED), key=order)
        provisional = sorted((r for r in rows if r.status == PROVISIONAL), key=order)
        flagged = sorted((r for r in rows if r.status == FLAGGED), key=order)
        for i, r in enumerate(trusted, 1):
            r.rank = i
            r.tied = i > 1 and r.ci[1] >= trusted[0].ci[0]
        answer = {}
        if trusted:
            best = trusted[0]
            answer = {"best": best, "ties": [r for r in trusted[1:] if r.tied], "baseline": baseline}

        def fig_order(f: Path):
            name = f.stem
            threat = name[len(f"accuracy_vs_eps_{stem}_"):] if name.startswith("accuracy_vs_eps_") else ""
            return (0 if threat == HEADLINE_THREAT else 1 if name.startswith("tradeoff") else 2, name)

        mine = [f for f in images if f.parent.name != "detail"
                and (f.stem == f"tradeoff_{stem}" or f.stem.startswith(f"accuracy_vs_eps_{stem}_"))]
        figs = [_figure(f, reports_dir, pdfs) for f in sorted(mine, key=fig_order)]

        defenses = []
        by_label: dict[str, list[ModelResults]] = {}
        for m in models:
            by_label.setdefault(m.attack_records[0].defense.label, []).append(m)
        row_of = {r.defense: r for r in rows}
        for r in rows:
            r.detail_id = _slug(stem, r.defense)
        ranked = [r.defense for r in trusted + provisional + flagged]
        for label in sorted(by_label, key=lambda d: (ranked.index(d) if d in ranked else len(ranked), d)):
            ms = sorted(by_label[label], key=lambda m: m.attack_records[0].seed)
            histories = [h for h in (_history(m) for m in ms) if h]
            notes = [f"seed {m.attack_records[0].seed}: cross-attack checks recomputed from the records: {m.recomputed}"
                     for m in ms if m.recomputed]
            threats = part.loc[part["defense"] == label, "threat_model"].unique()
            wanted = {_stem(protocol, phash, t, label) for t in threats}
            details = [f for f in images if f.parent.name == "detail" and f.stem in wanted]
            defenses.append(Defense(label, _slug(stem, label), row_of.get(label),
                                    _eps_tables(part[part["defense"] == label]), _checks(ms), histories, notes,
                                    [{"file": Path(os.path.relpath(f, reports_dir)).as_posix()} for f in details]))
        first = models[0].attack_records[0]
        created = max(r.created for m in models for r in m.attack_records)
        description = first.protocol.config.get("description", "") if isinstance(first.protocol.config, dict) else ""
        sections.append(Section(protocol, phash, _slug(protocol, phash), eps, trusted, provisional, flagged,
                                None if baseline is None else baseline.defense, any(r.several for r in rows),
                                sorted({a for r in rows for a in r.attacks}), figs, defenses, len(models), created[:10],
                                str(description or ""), answer, outdated.get((protocol, phash), "")))
    # what the shipped protocols measure today first, then older setups; in name order; of one
    # name, the hash with the most defenses first
    return sorted(sections, key=lambda s: (bool(s.outdated), s.protocol, -len(s.defenses), s.phash))


def _long_rows(table: pd.DataFrame) -> list[dict]:
    rows = []
    for i, r in enumerate(table.itertuples()):
        flags = [f for f in r.flags.split(";") if f]
        rows.append({
            "index": i, "worst": r.attack == WORST, "flags": flags,
            "protocol": r.protocol, "hash": r.protocol_hash, "defense": r.defense, "attack": r.attack,
            "threat": r.threat_model, "eps": f"{r.eps:g}", "eps_sort": repr(float(r.eps)),
            "seeds": int(r.seeds), "n": int(r.n_examples),
            "clean": _pm(r.clean_mean, r.clean_std, r.seeds), "clean_sort": repr(float(r.clean_mean)),
            "robust": _pm(r.robust_mean, r.robust_std, r.seeds), "robust_sort": repr(float(r.robust_mean)),
            "top5": _pct(r.top5_mean), "top5_sort": "" if _num(r.top5_mean) is None else repr(float(r.top5_mean)),
            "mrr": _pct(r.mrr_mean), "mrr_sort": "" if _num(r.mrr_mean) is None else repr(float(r.mrr_mean)),
        })
    return rows


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def _records(results: Results, results_dir: Path) -> list[dict]:
    out = []
    for path, rec in results.attacks:
        try:
            rel = path.relative_to(results_dir).as_posix()
        except ValueError:
            rel = str(path)
        out.append({
            "path": rel, "protocol": rec.protocol.name, "hash": rec.protocol.short_hash, "defense": rec.defense.label,
            "seed": rec.seed, "attack": rec.attack.name, "threat": rec.attack.threat_model, "flags": rec.flags,
            "created": rec.created,
            "sections": [(title, _pretty(value)) for title, value in [
                ("protocol (resolved config)", rec.protocol.to_dict()), ("defense", rec.defense.to_dict()),
                ("attack", rec.attack.to_dict()), ("dataset", rec.dataset), ("model", rec.model),
                ("environment", rec.environment), ("code version", rec.code), ("timings", rec.timings)]],
        })
    return out


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("bench.reporting", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["threat"] = _threat
    env.filters["next_attack"] = next_attack
    env.filters["randomized_caveat"] = randomized_caveat
    env.filters["pct"] = _pct
    env.filters["g"] = lambda v: "" if v is None else f"{v:g}"
    return env


def render(results: Results, results_dir: Path, reports_dir: Path, figures: Iterable[Path]) -> str:
    """The page's HTML."""
    frame = records_frame(results)
    if frame.empty:
        raise BenchError(f"no result records under {results_dir}; run `bench run` first, or pass --results DIR "
                         "(the shipped references: --results results/reference)")
    table = summary_table(frame)
    figures = [Path(f) for f in figures]
    sections = _sections(results, table, figures, reports_dir)
    return _environment().get_template(TEMPLATE).render(
        sections=sections, columns=COLUMNS, rows=_long_rows(table), n_flag_rows=int((table["flags"] != "").sum()),
        records=_records(results, results_dir), results_dir=str(results_dir), n_records=len(results.attacks),
        n_models=len(results.models), threat=HEADLINE_THREAT, confidence=round(100 * CONFIDENCE),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        missing=[str(f) for f in figures if f.suffix.lower() in IMAGE_SUFFIXES and not f.exists()],
    )


def write_html(results_dir: Path, reports_dir: Path, figures: list[Path], results: Results | None = None) -> Path:
    """Write ``reports_dir/index.html`` from the records under ``results_dir`` (``results``: those records, already
    read by ``load_results``); the figures among ``figures`` of this page are inlined."""
    results_dir, reports_dir = Path(results_dir), Path(reports_dir)
    results = results if results is not None else load_results(results_dir)
    page = render(results, results_dir, reports_dir, figures)
    reports_dir.mkdir(parents=True, exist_ok=True)
    out = reports_dir / INDEX_NAME
    tmp = out.with_name(f".{INDEX_NAME}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
