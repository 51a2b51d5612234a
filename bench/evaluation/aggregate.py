"""Across the attacks of one model: the per-example worst case and the cross-attack checks.

Inputs are the typed attack records (``bench.records.schema.AttackRecord``, read by attribute)
of one (protocol hash, defense, seed); outputs are the summary's parts as they are written,
which ``bench.records.summary`` types as a ``ModelSummary`` (this module imports nothing of
``bench.records``, which builds records from evaluations). Robust accuracy reported per attack
is only an upper bound; the worst case over all attacks run, example by example, is the honest
figure (docs/methods.md#79-worst-case-over-attacks). The checks flag the symptoms of gradient
masking: an iterative attack weaker than a single step, and a black-box attack (which sees no
gradients) stronger than the white-box ones.

:func:`model_summary` is the one computation of both: ``bench run`` writes it as the model's
``summary.json``, and every report reads that file (or calls this function again, through
``bench.records.summary``, when the file is missing or older than the records beside it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bench.errors import ConfigError
from bench.evaluation.checks import check
from bench.protocol import CONVERGENCE_SUFFIX, leaderboard_of

TOLERANCE = 0.01  # accuracy difference below which two attacks count as equally strong


AttackRecord = Any  # bench.records.schema.AttackRecord (not imported: bench.records imports this module)


def _bits(rec: AttackRecord, eps: str) -> str | None:
    return rec.metrics.per_example.robust.get(eps)


def worst_case(records: Sequence[AttackRecord]) -> dict[str, dict[str, dict[str, Any]]]:
    """threat model -> eps -> {accuracy, n_examples, attacks}: an example is robust only if it
    survived every attack that evaluated it at that eps."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    by_threat: dict[str, list[AttackRecord]] = defaultdict(list)
    for rec in records:
        by_threat[rec.attack.threat_model].append(rec)
    for threat, recs in sorted(by_threat.items()):
        grid = sorted({eps for rec in recs for eps in rec.metrics.per_example.robust}, key=float)
        out[threat] = {}
        for eps in grid:
            covering = [(rec.attack.name, _bits(rec, eps)) for rec in recs if _bits(rec, eps) is not None]
            n = max(len(bits) for _, bits in covering)
            robust = [all(bits[i] == "1" for _, bits in covering if i < len(bits)) for i in range(n)]
            out[threat][eps] = {"accuracy": sum(robust) / n, "n_examples": n, "attacks": sorted(name for name, _ in covering)}
    return out


def _common_accuracy(a: AttackRecord, b: AttackRecord) -> dict[str, tuple[float, float, int]]:
    """Per eps both evaluated: the two robust accuracies on the examples both attacked (the first n,
    since an attack on a subset takes the first examples), and n."""
    out = {}
    for eps, bits_a in a.metrics.per_example.robust.items():
        bits_b = _bits(b, eps)
        if bits_b is None:
            continue
        n = min(len(bits_a), len(bits_b))
        if n:
            out[eps] = (bits_a[:n].count("1") / n, bits_b[:n].count("1") / n, n)
    return out


def _weaker(strong: AttackRecord, weak: AttackRecord, tolerance: float = TOLERANCE) -> list[tuple[str, float, float]]:
    """Eps values where ``strong`` (expected stronger) leaves more accuracy than ``weak`` on the same examples."""
    return [(eps, a, b) for eps, (a, b, _) in _common_accuracy(strong, weak).items() if a > b + tolerance]


def convergence_checks(records: Sequence[AttackRecord]) -> list[dict[str, Any]]:
    """Each ``<attack>_convergence`` record (the attack rerun with several times its steps and more
    restarts, on a subset) must not leave less accuracy than ``<attack>`` on the same examples."""
    by_name = {rec.attack.name: rec for rec in records}
    found = []
    for name, rec in sorted(by_name.items()):
        base = by_name.get(name.removesuffix(CONVERGENCE_SUFFIX)) if name.endswith(CONVERGENCE_SUFFIX) else None
        if base is None:
            continue
        tolerance = float(rec.attack.params.get("tolerance", 0.02))
        bad = _weaker(base, rec, tolerance)
        p = rec.attack.params
        at = [e for e in rec.metrics.per_example.robust if float(e) > 0]
        where = f" at eps {', '.join(at)}" if p.get("eps_grid") else ""
        found.append(check(
            "attack_converged", not bad,
            f"{base.attack.name} with {p.get('steps')} steps and {p.get('restarts')} restarts on the first {p.get('n_examples')} "
            f"examples{where} lowers no accuracy by more than {100 * tolerance:g} points" if not bad else
            f"{base.attack.name} has not converged: with {p.get('steps')} steps and {p.get('restarts')} restarts accuracy falls at "
            + ", ".join(f"eps {e} ({100 * a:.1f} % -> {100 * b:.1f} %)" for e, a, b in bad)
            + "; the stronger run's results are in the worst case",
            violations=[{"eps": e, "attack": a, "stronger": b} for e, a, b in bad], threat_model=base.attack.threat_model,
            attack_checked=base.attack.name, tolerance=tolerance,
        ))
    return found


def suite_check(records: Sequence[AttackRecord]) -> list[dict[str, Any]]:
    """Whether the records hold every run of the protocol's leaderboard suite: with fewer attacks the
    worst case overstates robustness, so a partial suite is flagged (never ranked as trusted)."""
    config = records[0].protocol.config if records else None
    try:
        suite = leaderboard_of(config) if isinstance(config, dict) else None
    except ConfigError:  # a suite this version cannot read: nothing to check it against
        suite = None
    if suite is None:
        return []
    wanted = list(suite.runs)
    have = {rec.attack.name: rec.attack.threat_model for rec in records}
    threats = sorted({have[a] for a in wanted if a in have})
    if not threats:  # none of the suite ran (e.g. only noise corruptions): there is no leaderboard row to guard
        return []
    missing = [a for a in wanted if a not in have]
    return [check(
        f"leaderboard_suite_complete_{threat}", not missing,
        f"every run of the protocol's leaderboard suite is here ({', '.join(wanted)})" if not missing else
        f"only {', '.join(a for a in wanted if a in have)} of the leaderboard suite ran; missing: {', '.join(missing)}: "
        "the worst case over fewer attacks overstates robustness",
        missing=missing, threat_model=threat,
    ) for threat in threats]


def cross_attack_checks(records: Sequence[AttackRecord]) -> list[dict[str, Any]]:
    found = suite_check(records)
    by_name = {rec.attack.name: rec for rec in records}
    if "pgd" in by_name and "fgsm" in by_name:
        bad = _weaker(by_name["pgd"], by_name["fgsm"])
        found.append(check(
            "iterative_beats_single_step", not bad,
            "PGD leaves no more accuracy than FGSM at any eps" if not bad else
            "PGD leaves more accuracy than FGSM at " + ", ".join(f"eps {e} ({100 * p:.1f} % vs {100 * f:.1f} %)" for e, p, f in bad)
            + ": the iterative attack is failing (masked gradients or a bad step size)",
            violations=[{"eps": e, "pgd": p, "fgsm": f} for e, p, f in bad], threat_model="linf",
        ))
    found += convergence_checks(records)
    for threat in sorted({rec.attack.threat_model for rec in records}):
        recs = [rec for rec in records if rec.attack.threat_model == threat]
        white = [rec for rec in recs if rec.attack.needs_gradients]
        black = [rec for rec in recs if not rec.attack.needs_gradients]
        if not white or not black:
            continue
        violations = []
        for b in black:
            for eps in b.metrics.per_example.robust:
                # per white-box attack, on the examples both evaluated
                pairs = [(w.attack.name, *_common_accuracy(w, b)[eps]) for w in white if eps in _common_accuracy(w, b)]
                if not pairs:
                    continue
                best = min(pairs, key=lambda t: t[1] - t[2])  # the white-box attack closest to the black-box one
                if best[1] > best[2] + TOLERANCE:
                    violations.append({"eps": eps, "black_box": b.attack.name, "black_box_accuracy": best[2],
                                       "best_white_box": best[0], "best_white_box_accuracy": best[1], "n_examples": best[3]})
        found.append(check(
            f"white_box_beats_black_box_{threat}", not violations,
            "no gradient-free or transfer attack beats the best gradient attack" if not violations else
            "; ".join(f"{v['black_box']} at eps {v['eps']}: {100 * v['black_box_accuracy']:.1f} % vs {v['best_white_box']} "
                      f"{100 * v['best_white_box_accuracy']:.1f} % on the same {v['n_examples']} examples" for v in violations)
            + ": gradients are misleading (gradient masking suspected)",
            violations=violations, threat_model=threat,
        ))
    return found


def model_summary(records: Sequence[AttackRecord]) -> dict[str, Any]:
    """Worst case and every check (per attack, per model, cross-attack) of one model."""
    per_attack = [{**c.to_dict(), "attack": rec.attack.name} for rec in records for c in rec.checks]
    return {"worst_case": worst_case(records), "cross_attack_checks": cross_attack_checks(records), "attack_checks": per_attack}
