"""A model's summary (``summary.json``): computed from its attack records, or read and checked against them.

The content (worst case over attacks, cross-attack checks, every attack's checks) is computed
by one function, ``bench.evaluation.aggregate.model_summary``; :func:`summarize` gives it the
summary's envelope and type. ``bench run`` writes it beside the attack records; reports read
it, and recompute it with :func:`summarize` when it is missing or stale (:func:`stale_reason`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bench.evaluation.aggregate import model_summary
from bench.records.schema import MODEL_SUMMARY, SCHEMA_VERSION, AttackRecord, ModelSummary, utc_now
from bench.records.store import SUMMARY_NAME


def summarize(records: Sequence[AttackRecord], created: str | None = None) -> ModelSummary:
    """The summary of one model's attack records (``created`` defaults to now)."""
    if not records:
        raise ValueError("a model summary needs at least one attack record")
    first = records[0]
    return ModelSummary.from_dict({
        "schema": SCHEMA_VERSION,
        "kind": MODEL_SUMMARY,
        "created": created or utc_now(),
        "protocol": first.protocol.ref().to_dict(),
        "defense": first.defense.to_dict(),
        "seed": first.seed,
        "attacks": sorted(rec.attack.name for rec in records),
        **model_summary(records),
    }, f"the summary of {first.protocol.name}-{first.protocol.short_hash}/{first.defense.name}/seed{first.seed}")


def _newer(a: str, b: str) -> bool:
    """Whether time ``a`` is after ``b`` (ISO 8601 ``created`` fields; compared as text if either does not parse)."""
    try:
        return datetime.fromisoformat(a) > datetime.fromisoformat(b)
    except (TypeError, ValueError):
        return a > b


def stale_reason(summary: ModelSummary | None, records: Sequence[AttackRecord]) -> str | None:
    """Why ``summary`` does not describe ``records`` (one model's attack records); ``None`` when it does.

    Stale: missing, of another model, covering other attacks than the records, or older than
    one of them (by their ``created`` times, which survive copies, unlike file times)."""
    if summary is None:
        return f"no {SUMMARY_NAME}"
    first = records[0]
    if (summary.protocol.hash, summary.defense.name, summary.seed) != (first.protocol.hash, first.defense.name, first.seed):
        return f"{SUMMARY_NAME} is of another model"
    names = tuple(sorted(rec.attack.name for rec in records))
    if summary.attacks != names:
        return f"{SUMMARY_NAME} covers {', '.join(summary.attacks) or 'no attack'}, the records {', '.join(names)}"
    newer = sorted(rec.attack.name for rec in records if _newer(rec.created, summary.created))
    if newer:
        return f"the record(s) of {', '.join(newer)} were written after {SUMMARY_NAME}"
    return None


def current_summary(summary: ModelSummary | None, records: Sequence[AttackRecord]) -> tuple[ModelSummary, str | None]:
    """``summary`` when it describes ``records``, else the summary recomputed from them, with why."""
    reason = stale_reason(summary, records)
    return (summary, None) if reason is None else (summarize(records), reason)
