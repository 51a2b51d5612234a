"""Aggregate records into tables with pandas: mean +- std over seeds.

Rows come from every attack record, plus one "worst case" row per (model, threat model, eps):
the per-example worst case over all attacks run on that model, as its ``summary.json`` holds
it (recomputed by the same function when that file is missing or stale; see
``bench.records.results``). Sanity flags of a model, per attack and across attacks, travel
with its rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.records.results import Results, load_results
from bench.evaluation.intervals import PairedComparison, compare_outcome_strings, hierarchical_interval
from bench.protocol import middle_eps
from bench.records.schema import AttackRecord, flags
from bench.reporting.leaderboard import (FLAGGED, PROVISIONAL, RANKED, Board, Entry, build_boards, difference_sentence,
                                         difference_text, interval_text, p_value_text)

KEYS = ["protocol", "protocol_hash", "defense", "attack", "threat_model", "eps"]
WORST = "worst case"


def defense_label(rec: AttackRecord) -> str:
    """The defense as reports show it: its base for input transformations, SIMULATED when the target is."""
    return rec.defense.label


def records_frame(source: Path | Results) -> pd.DataFrame:
    """One row per (record, eps), plus worst-case rows: the long format every table and plot starts from.

    ``source``: a results folder, or its records already read by ``load_results``."""
    results = source if isinstance(source, Results) else load_results(source)
    rows = []
    for path, rec in results.attacks:
        metrics = rec.metrics
        ranks = metrics.rank.adversarial
        for eps, acc in metrics.robust_accuracy.items():
            rank = ranks.get(eps)
            rows.append({
                "protocol": rec.protocol.name, "protocol_hash": rec.protocol.short_hash,
                "defense": rec.defense.label, "defense_name": rec.defense.name, "attack": rec.attack.name,
                "threat_model": rec.attack.threat_model,
                "eps": float(eps), "seed": rec.seed, "n_examples": metrics.n_examples,
                "clean_accuracy": metrics.clean_accuracy, "robust_accuracy": acc,
                "top5": None if rank is None else rank.top5, "mrr": None if rank is None else rank.mrr,
                "flags": ";".join(rec.flags), "randomized": rec.defense.randomized, "record": str(path), "created": rec.created,
                "robust_bits": metrics.per_example.robust.get(eps, ""), "clean_bits": metrics.per_example.clean,
            })
    for model in results.models:
        recs, summary = model.attack_records, model.summary
        first = recs[0]
        n_max = max(r.metrics.n_examples for r in recs)
        clean = max(r.metrics.clean_accuracy for r in recs if r.metrics.n_examples == n_max)
        clean_bits = next(r.metrics.per_example.clean for r in recs if r.metrics.n_examples == n_max
                          and r.metrics.clean_accuracy == clean)
        for threat, by_eps in summary.worst_case.items():
            covering = [r for r in recs if r.attack.threat_model == threat]
            names = {r.attack.name for r in covering}
            found = flags(c for c in summary.cross_attack_checks if c.threat_model == threat) \
                + flags(c for c in summary.attack_checks if c.attack in names)
            model_flags = ";".join(sorted(set(found)))
            for eps, w in by_eps.items():
                rows.append({
                    "protocol": first.protocol.name, "protocol_hash": first.protocol.short_hash, "defense": first.defense.label,
                    "defense_name": first.defense.name, "attack": WORST, "threat_model": threat, "eps": float(eps), "seed": first.seed, "n_examples": w.n_examples,
                    "clean_accuracy": clean, "robust_accuracy": w.accuracy, "top5": None, "mrr": None,
                    "flags": model_flags, "randomized": first.defense.randomized, "record": "over: " + ", ".join(w.attacks),
                    "created": max((r.created for r in covering), default=summary.created),
                    "robust_bits": model.worst_bits(threat, float(eps)) or "", "clean_bits": clean_bits,
                })
    return pd.DataFrame(rows)


def _interval(bits: pd.Series) -> tuple[float, float]:
    """95 % interval of the mean accuracy from each seed's per-example outcomes ("1" = correct):
    Wilson over the examples for one seed, the hierarchical bootstrap over seeds and examples otherwise."""
    outcomes = [np.frombuffer(b.encode(), dtype=np.uint8) == ord("1") for b in bits if isinstance(b, str) and b]
    if not outcomes:
        return (float("nan"), float("nan"))
    _, low, high = hierarchical_interval(outcomes)
    return low, high


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Clean and robust accuracy (and rank metrics) per protocol, defense, attack and eps: mean and std
    over seeds, and the 95 % interval of the mean (``_interval``)."""
    groups = frame.groupby(KEYS, sort=True)
    table = groups.agg(
        seeds=("seed", "nunique"),
        n_examples=("n_examples", "first"),
        clean_mean=("clean_accuracy", "mean"),
        clean_std=("clean_accuracy", "std"),
        robust_mean=("robust_accuracy", "mean"),
        robust_std=("robust_accuracy", "std"),
        top5_mean=("top5", "mean"),
        mrr_mean=("mrr", "mean"),
        flags=("flags", lambda s: ";".join(sorted({f for v in s for f in v.split(";") if f}))),
    ).reset_index()
    if "robust_bits" in frame:
        bounds = groups.agg(robust=("robust_bits", _interval), clean=("clean_bits", _interval)).reset_index(drop=True)
        table["robust_low"], table["robust_high"] = zip(*bounds["robust"])
        table["clean_low"], table["clean_high"] = zip(*bounds["clean"])
    table = table.fillna({"clean_std": 0.0, "robust_std": 0.0})
    # worst-case rows last within each (protocol, defense, threat model)
    table["_worst"] = table["attack"] == WORST
    return table.sort_values(["protocol", "protocol_hash", "defense", "threat_model", "_worst", "attack", "eps"]).drop(columns="_worst").reset_index(drop=True)


def robust_text(r) -> str:
    return interval_text(r.robust_mean, getattr(r, "robust_low", None), getattr(r, "robust_high", None), r.robust_std, r.seeds)


def clean_text(r) -> str:
    return interval_text(r.clean_mean, getattr(r, "clean_low", None), getattr(r, "clean_high", None), r.clean_std, r.seeds)


def _pct(value) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * value:.1f}"


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table in percent; sanity-check flags shown per row."""
    head = ["protocol", "defense", "attack", "eps", "seeds", "n", "clean %", "robust %", "top-5 %", "MRR %", "sanity checks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        attack = f"**{r.attack}** ({r.threat_model})" if r.attack == WORST else f"{r.attack} ({r.threat_model})"
        lines.append("| " + " | ".join([
            f"{r.protocol} ({r.protocol_hash})", r.defense, attack, f"{r.eps:g}", str(r.seeds), str(r.n_examples),
            clean_text(r), robust_text(r), _pct(r.top5_mean), _pct(r.mrr_mean),
            "FLAG: " + r.flags.replace(";", ", ") if r.flags else "pass",
        ]) + " |")
    return "\n".join(lines) + "\n"


def leaderboard(table: pd.DataFrame) -> str:
    """Compact Markdown: per protocol and threat model, one row per defense and attack, eps as columns."""
    parts = []
    for (protocol, phash, threat), part in table.groupby(["protocol", "protocol_hash", "threat_model"], sort=True):
        grid = sorted(part["eps"].unique())
        head = ["defense", "attack", "clean %"] + [f"eps {e:g}" for e in grid] + ["sanity checks"]
        lines = [f"### {protocol} ({phash}), {threat}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (defense, attack), rows in part.groupby(["defense", "attack"], sort=False):
            by_eps = {r.eps: robust_text(r) for r in rows.itertuples()}
            first = next(rows.itertuples())
            flags = sorted({f for v in rows["flags"] for f in v.split(";") if f})
            name = f"**{attack}**" if attack == WORST else attack
            lines.append("| " + " | ".join([defense, name, clean_text(first)]
                                         + [by_eps.get(e, "") for e in grid] + ["FLAG: " + ", ".join(flags) if flags else "pass"]) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def flag_reasons(results: Results | None) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(protocol hash, defense) -> [(flagged check, its detail)] from every seed's summary, first seed's detail kept."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for model in (results.models if results is not None else ()):
        first = model.attack_records[0]
        found = out.setdefault((first.protocol.short_hash, first.defense.label), {})
        checks = list(model.summary.cross_attack_checks) + list(model.summary.attack_checks)
        for c in checks:
            if not c.passed and c.name not in found:
                found[c.name] = c.detail
    return {key: sorted(v.items()) for key, v in out.items()}


def seed_outcomes(frame: pd.DataFrame, phash: str, threat: str, defense: str, eps: float, column: str = "robust_bits",
                  attack: str = WORST) -> dict[int, str]:
    """seed -> per-example outcome string of one cell of the long frame (``robust_bits`` or ``clean_bits``)."""
    rows = frame[(frame["protocol_hash"] == phash) & (frame["threat_model"] == threat) & (frame["defense"] == defense)
                 & (frame["attack"] == attack) & (frame["eps"] == eps)]
    return {int(r.seed): getattr(r, column) for r in rows.itertuples() if isinstance(getattr(r, column), str) and getattr(r, column)}


def compare_defenses(frame: pd.DataFrame, phash: str, threat: str, a: str, b: str, eps: float,
                     attack: str = WORST) -> tuple[PairedComparison | None, PairedComparison | None]:
    """(robust, clean) accuracy of ``a`` minus ``b`` at ``eps``, paired over the same examples and seeds, each with
    its p-value (McNemar for one seed, the paired bootstrap's for several: ``paired_over_seeds``)."""
    out = []
    for column in ("robust_bits", "clean_bits"):
        left = seed_outcomes(frame, phash, threat, a, eps, column, attack)
        right = seed_outcomes(frame, phash, threat, b, eps, column, attack)
        out.append(compare_outcome_strings(left, right))
    return out[0], out[1]


def resolve_label(frame: pd.DataFrame, name: str) -> str:
    """A defense as the user names it (``neural_sim``, ``gaussian_blur``, ``baseline [reference]``) -> its label in
    the reports (``neural_sim [simulated V1]``, ``gaussian_blur(baseline)``); refuses unknown and ambiguous names."""
    from bench.errors import ConfigError

    known = sorted(frame["defense"].unique()) if len(frame) else []
    if name in known:
        return name
    matches = sorted({label for label, defense in zip(frame["defense"], frame["defense_name"]) if defense == name}) \
        if "defense_name" in frame else []
    own = [m for m in matches if not m.endswith(" [reference]")]
    if len(own) == 1 or (not own and len(matches) == 1):
        return (own or matches)[0]
    if matches:
        raise ConfigError(f"defense {name!r} has several rows in these results: {', '.join(matches)}; name one of them")
    raise ConfigError(f"no records of defense {name!r} in these results; defenses with records: {', '.join(known) or 'none'}")


WORST_SPELLINGS = {"worst_case", "worst-case", "worstcase", "worst"}


def attack_name(name: str) -> str:
    """``--attack`` as typed: ``worst_case`` (no quotes needed) is the worst case over the suite."""
    return WORST if name.strip().lower() in WORST_SPELLINGS | {WORST} else name


def comparison(frame: pd.DataFrame, a: str, b: str, threat: str = "linf", attack: str = WORST,
               results: Results | None = None) -> str:
    """Markdown: ``a`` against ``b`` per protocol hash they share and per eps of ``threat``, paired over
    the same images and seeds (``bench compare``); with ``results``, a side that is not ranked on the
    leaderboard (flagged or provisional) is named above its table, and its robust differences carry no
    significance mark. Raises ``ConfigError`` naming what exists."""
    from bench.errors import ConfigError

    a, b = resolve_label(frame, a), resolve_label(frame, b)
    attack = attack_name(attack)
    boards = {b_.phash: b_ for b_ in build_boards(results, threat)} if results is not None else {}
    cells = frame[(frame["threat_model"] == threat) & (frame["attack"] == attack)]
    if not len(cells):
        raise ConfigError(f"no {attack!r} rows for threat model {threat!r}; threat models with records: "
                          f"{', '.join(sorted(frame['threat_model'].unique()))}; attacks: {', '.join(sorted(frame['attack'].unique()))}")
    parts = []
    for (protocol, phash), part in cells.groupby(["protocol", "protocol_hash"], sort=True):
        if not {a, b} <= set(part["defense"]):
            continue
        lines = [f"### {protocol} ({phash}), {threat}, {attack}: {a} minus {b}", ""]
        entries = {e.defense: e for e in boards[phash].entries} if phash in boards else {}
        trusted = True
        for side in (a, b):
            e = entries.get(side)
            if e is not None and e.status == FLAGGED:
                trusted = False
                lines += [f"**{side} is flagged** ({', '.join(e.flag_names)}): a sanity check suspects the attacks failed on it, "
                          "so its robust accuracy may be overstated and the robust differences below are not to be trusted "
                          "(not marked significant, whatever their p). Run next: " + e.run_next + ".", ""]
            elif e is not None and e.status == PROVISIONAL:
                trusted = False
                lines += [f"**{side} is provisional**: its leaderboard suite is incomplete (missing {', '.join(e.missing)}), "
                          "so its worst case may overstate its robustness and the robust differences below are not marked "
                          f"significant; complete it with `{'`; `'.join(e.commands)}`.", ""]
        rows, clean_line = [], ""
        for eps in sorted(part["eps"].unique()):
            robust, clean = compare_defenses(frame, phash, threat, a, b, eps, attack)
            if robust is None:
                continue
            if clean is not None and not clean_line:  # the same images and models at every eps
                clean_line = (f"Clean accuracy: {difference_sentence(clean, b, minus='-')}, over {clean.seeds} "
                              f"seed{'s' if clean.seeds > 1 else ''} and {clean.n} images.")
            rows.append(f"| {eps:g} | {robust.seeds} | {robust.n} | {difference_text(robust, p=False, star=trusted)} | "
                        f"{p_value_text(robust).replace('p = ', '').replace('p < ', '< ') or '–'} |")
        lines += ([clean_line, ""] if clean_line else []) + \
            ["| eps | seeds | n | robust Δ [95 % CI] | p |", "|---|---|---|---|---|"] + rows
        parts.append("\n".join(lines) + "\n")
    if not parts:
        raise ConfigError(f"{a} and {b} share no protocol hash with {threat} {attack!r} records, so there is nothing paired to compare")
    note = ("Differences in points, paired over the same test images, with their 95 % confidence interval [low, high]: a paired "
            "bootstrap (over the seeds both have, then the images, for several seeds). p: two-sided; the exact McNemar test "
            "for one seed, for several the paired bootstrap's (twice the share of resamples on the far side of 0). "
            "* significant at 5 %.\n")
    return note + "\n" + "\n".join(parts)


def seeds_text(worst: pd.DataFrame) -> str:
    """"3 seeds", or "3 seeds (heat_blur: 1)" naming the defenses a partial sweep left with fewer."""
    counts = worst.groupby("defense")["seeds"].max().astype(int)
    most = int(counts.max())
    text = f"{most} seed" + ("s" if most > 1 else "")
    fewer = counts[counts < most]
    if len(fewer):
        text += " (" + ", ".join(f"{d}: {n}" for d, n in fewer.sort_index().items()) + ")"
    return text


def partial_eps(runs: pd.DataFrame, grid: list[float]) -> str:
    """``eps 0.1, 0.15 only`` for an attack that ran at part of the grid (e.g. a convergence rerun);
    empty when it ran at every eps."""
    ran = sorted(e for e in runs["eps"].unique() if e > 0)
    return "" if not ran or set(ran) >= set(grid) else "eps " + ", ".join(f"{e:g}" for e in ran) + " only"


def _eps_part(runs: pd.DataFrame, grid: list[float]) -> str:
    part = partial_eps(runs, grid)
    return ", " + part if part else ""


def headline(table: pd.DataFrame, frame: pd.DataFrame, threat: str = "linf", *, results: Results,
             boards: list[Board] | None = None) -> str:
    """The leaderboard in Markdown, rendered from the one leaderboard model (``bench.reporting.leaderboard``):
    per protocol hash, the ranked defenses (whole suite, every check passed) by robust accuracy at the middle
    eps, then the provisional ones (suite incomplete) with the command that completes them, then the flagged
    ones, unranked, with the checks that flagged them, why, and the attack to run next."""
    reasons = flag_reasons(results)
    boards = {(b.protocol, b.phash): b for b in (boards if boards is not None else build_boards(results, threat))}
    parts = []
    worst = table[(table["attack"] == WORST) & (table["threat_model"] == threat)]
    for (protocol, phash), part in worst.groupby(["protocol", "protocol_hash"], sort=True):
        board = boards.get((protocol, phash))
        if board is None:
            continue
        runs = frame[(frame["protocol_hash"] == phash) & (frame["threat_model"] == threat) & (frame["attack"] != WORST)]
        covered = runs.groupby("attack")["n_examples"].max().sort_index()
        grid, middle = board.grid, board.eps
        attacks = ", ".join(f"{a} (n = {n}{_eps_part(runs[runs['attack'] == a], grid)})" for a, n in covered.items())
        date = str(runs["created"].max())[:10]
        seeds = int(part["seeds"].max())
        spread = ("mean over seeds [95 % interval, hierarchical bootstrap over seeds and examples]" if seeds >= 2
                  else "[95 % Wilson interval over the examples]")
        lines = [f"## {protocol} (hash {phash}), {threat}", "",
                 f"Robust accuracy in percent, {spread}: per example, the worst case over {attacks}; "
                 f"{int(part['n_examples'].max())} test images; {seeds_text(part)}; records of {date}.", ""]
        base = board.reference.defense if board.reference is not None else None

        def cells(e: Entry) -> list[str]:
            out = [e.clean_cell.text() if e.clean_cell else ""] + [e.cells[x].text() if x in e.cells else "" for x in grid]
            if base is None:
                return out
            if e is board.reference:
                return out + ["", ""]
            # no significance mark on the robust difference of a row whose numbers are not to be trusted
            return out + [difference_text(e.clean_vs_baseline, p=False), difference_text(e.vs_baseline, star=e.status == RANKED)]

        vs_head = [f"clean Δ vs {base}", f"robust Δ vs {base} at eps {middle:g}"] if base else []
        head = ["rank", "defense", "clean %"] + [f"eps {e:g}" for e in grid] + vs_head
        if base:
            lines += [f"Δ vs {base}: accuracy minus {base}'s on the same test images, in points, with its paired 95 % "
                      "bootstrap interval (over seeds, then images, where there are several seeds) and its two-sided "
                      "p-value (the exact McNemar test for one seed; for several, the paired bootstrap's: twice the share "
                      f"of resamples on the far side of 0); * where the difference is significant at 5 %.", ""]
        lines += [f"Ranked: the whole leaderboard suite ran and every sanity check passed; ordered by robust accuracy "
                  f"at eps {middle:g}.", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in board.ranked:
            lines.append("| " + " | ".join([str(e.rank), e.defense] + cells(e)) + " |")
        if not board.ranked:
            lines.append("| | (no defense has a complete suite with every check passed) |" + " |" * (len(head) - 2))
        if board.provisional:
            head = ["defense", "clean %"] + [f"eps {e:g}" for e in grid] + vs_head + ["missing", "complete with"]
            lines += ["", "Provisional, not ranked: every check that ran passed, but part of the leaderboard suite has not "
                      "run, and a worst case over fewer attacks overstates robustness.", "",
                      "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for e in board.provisional:
                commands = "; ".join(f"`{c}`" for c in e.commands)
                lines.append("| " + " | ".join([e.defense] + cells(e) + [", ".join(e.missing), commands]) + " |")
        if board.flagged:
            head = ["defense", "clean %"] + [f"eps {e:g}" for e in grid] + vs_head + ["flagged: why", "run next"]
            noisy = [e.defense for e in board.flagged if e.randomized]
            lines += ["", "Not ranked: a sanity check suspects that the attacks failed on these defenses, so their numbers "
                      "are upper bounds at best, whatever their value." + (randomized_caveat(noisy) if noisy else ""), "",
                      "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for e in board.flagged:
                details = dict(reasons.get((phash, e.defense), []))
                why = "; ".join(f"**{n}**: {_short(details[n])}" if n in details else f"**{n}**" for n in e.flag_names)
                lines.append("| " + " | ".join([e.defense] + cells(e) + [why.replace("|", "/"), e.run_next]) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def randomized_caveat(defenses: list[str]) -> str:
    """Why a randomised defense's flag may say as much about the scoring as about the attack."""
    return (f" {', '.join(defenses)} draw{'s' if len(defenses) == 1 else ''} noise at every pass: an example counts as robust "
            "only if every draw that scored it was right, so these numbers are also lower bounds of the expected accuracy "
            "under these attacks, and a flag can come from the luck of the single draw that scores each adversarial point "
            "(docs/methods.md, section 4.5).")


def reference_eps(table) -> dict[tuple[str, str], float]:
    """The tradeoff plot's eps per (protocol, threat model): the middle of the non-zero grid."""
    return {(protocol, threat): middle_eps(part["eps"].unique()) for (protocol, threat), part in table.groupby(["protocol", "threat_model"])}
