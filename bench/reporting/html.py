"""``reports/index.html``: one static page that leads with the answer.

Per protocol (and hash), the default protocol (``quick``) first, in this order:

1. the answer in two sentences, then the leaderboard: one row per defense, its status, its clean accuracy and
   its L_inf worst case over the attacks run (the leaderboard robust accuracy) at the protocol's headline eps,
   each with its 95 % confidence interval, and its paired difference to the reference defense with its p-value;
   trusted defenses ranked, provisional and flagged ones in groups of their own below them. The legend says
   once how the numbers were measured. Every eps, the seeds, n, the attacks and the checks are behind a click;
2. one line per flagged defense: what failed, in words, and the attack to run next, the numbers behind a click;
3. the figures (accuracy against eps per threat model, the clean/robust trade-off), linked: the files
   ``bench report`` writes beside the page;
4. per defense, collapsed: its configuration, its attacks x eps table, every check with its numbers, its
   training history.

Every row of the long table (one per protocol, defense, attack, threat model and eps) and a list of the
records (each linked, each protocol's resolved configuration once) come last, collapsed.

Rendered with Jinja2 from ``templates/report.html.j2`` with autoescaping on: every piece of text from
a record is escaped by the template. No server, no network: CSS and the sorting script are inline, the
figures are files of the same folder. Sorting: click a column header (again to reverse); numeric columns
sort on a ``data-sort`` value, missing values last; the leaderboard sorts within each group (ranked,
provisional, flagged). ``#sort=KEY`` or ``#sort=KEY:desc`` in the URL sorts every table with that column
on load. ``<html data-errors>`` collects script errors (``window.onerror``), for headless checks;
``<body data-images-loaded>`` says whether every image loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from bench.errors import BenchError
from markupsafe import Markup, escape

from bench.evaluation.checks import CHECK_WORDS, check_words, next_attack
from bench.records.results import ModelResults, Results, load_results, outdated_protocols
from bench.protocol import DEFAULT_PROTOCOL
from bench.records.schema import Check
from bench.reporting.leaderboard import (CONFIDENCE, FLAGGED, PROVISIONAL, RANKED, Board, Entry, bracket_text, build_boards,
                                         is_suite_check, p_value_text, points_text, slug)
from bench.reporting.plots import _stem
from bench.reporting.tables import WORST, clean_text, randomized_caveat, records_frame, robust_text, summary_table

INDEX_NAME = "index.html"
TEMPLATE = "report.html.j2"
HEADLINE_THREAT = "linf"
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"}
STATUS_WORDS = {RANKED: "trusted", PROVISIONAL: "provisional", FLAGGED: "flagged"}

# What a flagged check suspects, in words (docs/methods.md#8-sanity-checks), by check name without its
# threat-model suffix; in the order of how much they say about the attack (the first one's advice leads)
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


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text if len(text) <= 160 else text[:157] + "..."
    return str(value)


# --- view model -----------------------------------------------------------------------------------------------

@dataclass
class Defense:
    """One defense of a protocol, in detail."""

    label: str
    slug: str
    row: Entry | None
    config: str  # the defense's configuration (its records' "defense" section), compact
    eps_tables: list[dict]  # per threat model: {"threat", "grid", "rows": [(attack, worst?, [cell...])]}
    checks: list[dict]  # {"seed", "scope", "name", "passed", "status", "detail", "numbers"}
    histories: list[dict]  # {"seed", "epochs": [...], "best_epoch", "seconds"}
    notes: list[str]
    detail_figures: list[dict]
    several: bool = False  # several seeds


@dataclass
class Section:
    protocol: str
    phash: str
    slug: str
    eps: float | None
    trusted: list[Entry]
    provisional: list[Entry]
    flagged: list[Entry]
    flag_lines: list[dict]
    legend: dict
    grid: list[float]
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


def _eps_tables(table: pd.DataFrame) -> list[dict]:
    out = []
    for threat, part in table.groupby("threat_model", sort=False):
        grid = sorted(part["eps"].unique())
        rows = []
        for attack, rs in part.groupby("attack", sort=False):
            by_eps = {r.eps: r for r in rs.itertuples()}
            cells = [("" if e not in by_eps else robust_text(by_eps[e]), bool(e in by_eps and by_eps[e].flags)) for e in grid]
            rows.append({"attack": attack, "worst": attack == WORST, "cells": cells})
        rows.sort(key=lambda r: (r["worst"], r["attack"]))
        out.append({"threat": threat, "threat_name": _threat(threat), "grid": [f"{e:g}" for e in grid], "rows": rows})
    order = {HEADLINE_THREAT: 0, "l2": 1}
    return sorted(out, key=lambda t: (order.get(t["threat"], 2), t["threat"]))


def _checks(models: list[ModelResults]) -> list[dict]:
    """A defense's checks: each flagged one per seed with its numbers; the passing ones one row per scope and
    check, with the seeds they passed on and the first seed's sentence (their numbers are in the records)."""
    out: list[dict] = []
    passing: dict[tuple[str, str], dict] = {}

    def add(seed, scope, c: Check):
        if c.passed:
            row = passing.get((scope, c.name))
            if row is None:
                row = passing[(scope, c.name)] = {"seeds": [], "scope": scope, "name": c.name, "passed": True,
                                                  "status": c.status, "detail": c.detail, "numbers": []}
                out.append(row)
            row["seeds"].append(seed)
            return
        numbers = [(k, _compact(v)) for k, v in c.numbers.items() if k != "attack"]
        out.append({"seeds": [seed], "scope": scope, "name": c.name, "passed": False, "status": c.status,
                    "detail": c.detail, "numbers": numbers})

    for m in models:
        seed = m.attack_records[0].seed
        for rec in sorted(m.attack_records, key=lambda r: (r.attack.threat_model, r.attack.name)):
            for c in rec.checks:
                add(seed, f"{rec.attack.name} ({_threat(rec.attack.threat_model)})", c)
        for c in m.summary.cross_attack_checks:
            add(seed, "across attacks" + (f" ({_threat(c.threat_model)})" if c.threat_model else ""), c)
    order = {}
    for row in out:
        order.setdefault(row["scope"], len(order))
    return sorted(out, key=lambda r: (r["passed"], order[r["scope"]]))


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


def _figure(img: Path, reports_dir: Path, pdfs: dict) -> dict:
    """A figure of the page, linked (a file beside the page), not inlined: the page stays small."""
    rel = Path(os.path.relpath(img, reports_dir)).as_posix()
    alt = next((a for prefix, a in FIGURE_ALT.items() if img.stem.startswith(prefix)), f"Figure {img.stem.replace('_', ' ')}")
    pdf = pdfs.get((img.parent, img.stem))
    return {"src": rel, "file": rel, "alt": alt, "missing": not img.is_file(),
            "pdf": None if pdf is None else Path(os.path.relpath(pdf, reports_dir)).as_posix()}


def _check_rank(name: str) -> int:
    bases = list(CHECK_WORDS)
    return next((i for i, base in enumerate(bases) if name == base or name.startswith(base + "_")), len(bases))


def _seeds_text(seeds: Iterable[int]) -> str:
    seeds = sorted(set(seeds))
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def flag_line(entry: Entry) -> dict:
    """A flagged (or provisional) defense in one line: what failed, in words, with the attacks and seeds it
    failed on, and the attack to run next; every flagged check with its detail for behind a click."""
    groups: dict[str, dict] = {}
    for c in sorted(entry.flags, key=lambda c: (_check_rank(c.name), c.name)):
        g = groups.setdefault(check_words(c.name), {"names": [], "attacks": [], "seeds": []})
        g["names"].append(c.name)
        if c.attack:
            g["attacks"].append(c.attack)
        if c.numbers.get("seed") is not None:
            g["seeds"].append(c.numbers["seed"])
    failed = []
    for words, g in groups.items():
        where = sorted(set(g["attacks"]))
        failed.append(words + (f" ({', '.join(where)})" if where else ""))
    names = sorted({c.name for c in entry.flags}, key=lambda n: (_check_rank(n), n))
    advice = [entry.commands[0] if is_suite_check(n) and entry.commands else next_attack(n) for n in names]
    advice = list(dict.fromkeys(advice))
    checks = [{"words": check_words(c.name), "name": c.name, "attack": c.attack or "", "seed": c.numbers.get("seed", ""),
               "detail": c.detail} for c in sorted(entry.flags, key=lambda c: (_check_rank(c.name), c.name,
                                                                                 str(c.attack), str(c.numbers.get("seed"))))]
    return {"entry": entry, "failed": failed, "next": advice[0] if advice else "", "more_next": advice[1:], "checks": checks}


def _count_text(values: list[int], labels: list[str], unit: str) -> str:
    """"3 seeds", or "3 seeds (heat_blur: 1)" naming the rows with another count."""
    if not values:
        return ""
    most = max(set(values), key=values.count)
    text = f"{most} {unit}{'s' if most != 1 else ''}"
    other = [f"{label}: {v}" for label, v in zip(labels, values) if v != most]
    return text + (f" ({', '.join(other)})" if other else "")


def legend(board: Board) -> dict:
    """What the legend says once for a whole leaderboard: seeds, n, the attacks."""
    entries = board.entries
    return {"seeds": _count_text([len(e.seeds) for e in entries], [e.defense for e in entries], "seed"),
            "n": _count_text([max(e.n) for e in entries], [e.defense for e in entries], "test image"),
            "several": any(e.several for e in entries),
            "attacks": sorted({a for e in entries for a in e.attacks}),
            "same_attacks": len({tuple(e.attacks) for e in entries}) <= 1}


def _compact_config(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= 400 else text[:397] + "..."


def _sections(results: Results, table: pd.DataFrame, figures: list[Path], reports_dir: Path,
              boards: list[Board] | None = None) -> list[Section]:
    boards = boards if boards is not None else build_boards(results, HEADLINE_THREAT)
    computed = {(b.protocol, b.phash): b for b in boards}
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
        board = computed.get((protocol, phash))
        eps = board.eps if board is not None else None
        rows = board.entries if board is not None else []
        trusted, provisional, flagged = (board.ranked, board.provisional, board.flagged) if board else ([], [], [])
        baseline = board.reference if board is not None else None
        answer = {"best": trusted[0], "ties": board.ties, "baseline": baseline} if trusted else {}

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
            r.detail_id = slug(stem, r.defense)
        ranked = [r.defense for r in trusted + provisional + flagged]
        for label in sorted(by_label, key=lambda d: (ranked.index(d) if d in ranked else len(ranked), d)):
            ms = sorted(by_label[label], key=lambda m: m.attack_records[0].seed)
            histories = [h for h in (_history(m) for m in ms) if h]
            notes = [f"seed {m.attack_records[0].seed}: cross-attack checks recomputed from the records: {m.recomputed}"
                     for m in ms if m.recomputed]
            threats = part.loc[part["defense"] == label, "threat_model"].unique()
            wanted = {_stem(protocol, phash, t, label) for t in threats}
            details = [f for f in images if f.parent.name == "detail" and f.stem in wanted]
            config = _compact_config(ms[0].attack_records[0].defense.to_dict())
            defenses.append(Defense(label, slug(stem, label), row_of.get(label), config,
                                    _eps_tables(part[part["defense"] == label]), _checks(ms), histories, notes,
                                    [{"file": Path(os.path.relpath(f, reports_dir)).as_posix()} for f in details],
                                    len(ms) > 1))
        first = models[0].attack_records[0]
        created = max(r.created for m in models for r in m.attack_records)
        description = first.protocol.config.get("description", "") if isinstance(first.protocol.config, dict) else ""
        sections.append(Section(protocol, phash, slug(protocol, phash), eps, trusted, provisional, flagged,
                                [flag_line(r) for r in flagged], legend(board) if board is not None else {},
                                board.grid if board is not None else [],
                                None if baseline is None else baseline.defense, any(r.several for r in rows),
                                sorted({a for r in rows for a in r.attacks}), figs, defenses, len(models), created[:10],
                                str(description or ""), answer, outdated.get((protocol, phash), "")))
    # the default protocol first (the page opens on it: what `bench run` measures), then the others; of each,
    # what the shipped protocol measures today before older setups; in name order; of one name and
    # setup, the hash with the most defenses first
    return sorted(sections, key=lambda s: (s.protocol != DEFAULT_PROTOCOL, bool(s.outdated), s.protocol,
                                           -len(s.defenses), s.phash))


def _long_rows(table: pd.DataFrame) -> list[dict]:
    rows = []
    for i, r in enumerate(table.itertuples()):
        flags = [f for f in r.flags.split(";") if f]
        rows.append({
            "index": i, "worst": r.attack == WORST, "flags": flags,
            "protocol": r.protocol, "hash": r.protocol_hash, "defense": r.defense, "attack": r.attack,
            "threat": r.threat_model, "eps": f"{r.eps:g}", "eps_sort": repr(float(r.eps)),
            "seeds": int(r.seeds), "n": int(r.n_examples),
            "clean": clean_text(r), "clean_sort": repr(float(r.clean_mean)),
            "robust": robust_text(r), "robust_sort": repr(float(r.robust_mean)),
            "top5": _pct(r.top5_mean), "top5_sort": "" if _num(r.top5_mean) is None else repr(float(r.top5_mean)),
            "mrr": _pct(r.mrr_mean), "mrr_sort": "" if _num(r.mrr_mean) is None else repr(float(r.mrr_mean)),
        })
    return rows


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def _records(results: Results, results_dir: Path, reports_dir: Path) -> list[dict]:
    """Per protocol hash: its resolved configuration once, and one line per record, linked (the record files
    hold everything else: the defense, attack, data set, model, environment, code version and timings)."""
    groups: dict[tuple[str, str], dict] = {}
    for path, rec in results.attacks:
        try:
            rel = Path(path).relative_to(results_dir).as_posix()
        except ValueError:
            rel = str(path)
        group = groups.setdefault((rec.protocol.name, rec.protocol.short_hash), {
            "protocol": rec.protocol.name, "hash": rec.protocol.short_hash, "config": _pretty(rec.protocol.to_dict()),
            "records": []})
        env = rec.environment if isinstance(rec.environment, dict) else {}
        libraries = env.get("libraries") if isinstance(env.get("libraries"), dict) else {}
        code = rec.code if isinstance(rec.code, dict) else {}
        seconds = rec.timings.get("attack_seconds") if isinstance(rec.timings, dict) else None
        group["records"].append({
            "path": rel, "href": Path(os.path.relpath(Path(path).resolve(), Path(reports_dir).resolve())).as_posix(),
            "defense": rec.defense.label, "seed": rec.seed, "attack": rec.attack.name, "threat": rec.attack.threat_model,
            "flags": rec.flags, "created": rec.created[:16].replace("T", " "),
            "seconds": "" if seconds is None else f"{seconds:.0f}",
            "where": " ".join(str(x) for x in (env.get("device"), libraries.get("torch") and f"torch {libraries['torch']}",
                                                 code.get("git_commit") and f"code {str(code['git_commit'])[:8]}") if x),
        })
    return list(groups.values())


def breakable(text: str) -> Markup:
    """A name escaped, with line-break opportunities before "(" and "[" and after "_", so that a narrow
    column wraps ``median_filter(baseline)`` between its words instead of growing."""
    out = str(escape(text))
    for mark, spot in (("(", "<wbr>("), ("[", "<wbr>["), ("_", "_<wbr>")):
        out = out.replace(mark, spot)
    return Markup(out)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("bench.reporting", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["threat"] = _threat
    env.filters["next_attack"] = next_attack
    env.filters["breakable"] = breakable
    env.filters["points"] = points_text
    env.filters["bracket"] = lambda pair, signed=False: bracket_text(pair[0], pair[1], signed)
    env.filters["p_value"] = p_value_text
    env.globals["STATUS_WORDS"] = STATUS_WORDS
    env.filters["randomized_caveat"] = randomized_caveat
    env.filters["pct"] = _pct
    env.filters["g"] = lambda v: "" if v is None else f"{v:g}"
    return env


def render(results: Results, results_dir: Path, reports_dir: Path, figures: Iterable[Path],
           boards: list[Board] | None = None) -> str:
    """The page's HTML."""
    frame = records_frame(results)
    if frame.empty:
        raise BenchError(f"no result records under {results_dir}; run `bench run` first, or pass --results DIR "
                         "(the shipped references: --results results/reference)")
    table = summary_table(frame)
    figures = [Path(f) for f in figures]
    sections = _sections(results, table, figures, reports_dir, boards)
    return _environment().get_template(TEMPLATE).render(
        sections=sections, columns=COLUMNS, rows=_long_rows(table), n_flag_rows=int((table["flags"] != "").sum()),
        records=_records(results, results_dir, reports_dir), results_dir=str(results_dir), n_records=len(results.attacks),
        n_models=len(results.models), threat=HEADLINE_THREAT, confidence=round(100 * CONFIDENCE),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        missing=[str(f) for f in figures if f.suffix.lower() in IMAGE_SUFFIXES and not f.exists()],
    )


def write_html(results_dir: Path, reports_dir: Path, figures: list[Path], results: Results | None = None,
               boards: list[Board] | None = None) -> Path:
    """Write ``reports_dir/index.html`` from the records under ``results_dir`` (``results``: those records, already
    read by ``load_results``); the figures among ``figures`` of this page are linked (they stay files beside it)."""
    results_dir, reports_dir = Path(results_dir), Path(reports_dir)
    results = results if results is not None else load_results(results_dir)
    page = render(results, results_dir, reports_dir, figures, boards)
    reports_dir.mkdir(parents=True, exist_ok=True)
    out = reports_dir / INDEX_NAME
    tmp = out.with_name(f".{INDEX_NAME}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
