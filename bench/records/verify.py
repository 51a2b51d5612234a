"""What a record on disk must satisfy beyond its schema before it is reused or reported.

A record can be hand-edited, truncated, copied into the wrong folder or written by a buggy
version: its schema (``bench.records.schema``) checks the types of its fields, this module
that its values make sense together. An attack record's accuracies lie in [0, 1] and agree
with its per-example outcomes (the outcomes are the evidence; an accuracy that disagrees with
them was edited), every outcome string has one entry per example, its eps keys are numbers,
and its protocol, defense and seed are those of the folder it lies in. A model summary's
worst case lies in [0, 1] over at least one example.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.records.schema import AttackRecord, ModelSummary

__all__ = ["record_problems"]

MODEL_FOLDER = re.compile(r"(?P<protocol>.+)-(?P<hash>[0-9a-f]{12})")


def _accuracy(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _eps(key: str) -> bool:
    try:
        value = float(key)
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and value >= 0


def _outcomes(bits: str, n: int, accuracy: float, what: str) -> list[str]:
    if len(bits) != n:
        return [f"{what} has {len(bits)} per-example outcomes for {n} examples"]
    if abs(bits.count("1") / n - accuracy) > 0.5 / n:
        return [f"{what} is {accuracy!r}, but its per-example outcomes give {bits.count('1')}/{n}"]
    return []


def _folder_problems(record: Any, path: Path, folder_name: Callable[[str], str]) -> list[str]:
    """The folder layout ``<protocol>-<hash12>/<defense>/seed<N>/``, where the record lies in one."""
    parts = Path(path).parent.parts
    if len(parts) < 3:
        return []
    match = MODEL_FOLDER.fullmatch(parts[-3])
    if match is None or not re.fullmatch(r"seed\d+", parts[-1]):
        return []  # not the results layout (a record copied elsewhere): nothing to compare with
    out = []
    if (match["protocol"], match["hash"]) != (record.protocol.name, record.protocol.short_hash):
        out.append(f"it is of protocol {record.protocol.name}-{record.protocol.short_hash} but lies in the folder {parts[-3]}")
    if parts[-2] != folder_name(record.defense.name):
        out.append(f"it is of defense {record.defense.name!r} but lies in the folder {parts[-2]}")
    if parts[-1] != f"seed{record.seed}":
        out.append(f"it is of seed {record.seed} but lies in the folder {parts[-1]}")
    return out


def record_problems(record: Any, path: Path | str, folder_name: Callable[[str], str] = lambda name: name) -> list[str]:
    """Why ``record`` (read from ``path``) cannot be trusted; empty when it can. ``folder_name``: the results
    layout's folder of a defense name (``bench.records.store.folder_name``)."""
    out = _folder_problems(record, Path(path), folder_name)
    if isinstance(record, AttackRecord):
        m = record.metrics
        n = m.n_examples
        if n < 1:
            return out + [f"metrics.n_examples is {n}, expected at least 1"]
        for what, value in [("metrics.clean_accuracy", m.clean_accuracy),
                            *((f"metrics.robust_accuracy.{k}", v) for k, v in m.robust_accuracy.items()),
                            *((f"metrics.independent_accuracy.{k}", v) for k, v in m.independent_accuracy.items())]:
            if not _accuracy(value):
                out.append(f"{what} is {value!r}, expected an accuracy in [0, 1]")
        keys = set(m.robust_accuracy) | set(m.independent_accuracy) | set(m.per_example.robust)
        out += [f"eps key {k!r} of metrics is not a number >= 0" for k in sorted(keys) if not _eps(k)]
        if out:
            return out
        out += _outcomes(m.per_example.clean, n, m.clean_accuracy, "metrics.clean_accuracy")
        for eps, accuracy in m.robust_accuracy.items():
            bits = m.per_example.robust.get(eps)
            if bits is None:
                out.append(f"metrics.robust_accuracy.{eps} has no per-example outcomes")
            else:
                out += _outcomes(bits, n, accuracy, f"metrics.robust_accuracy.{eps}")
    elif isinstance(record, ModelSummary):
        for threat, by_eps in record.worst_case.items():
            for eps, w in by_eps.items():
                if not _eps(eps) or not _accuracy(w.accuracy) or w.n_examples < 1:
                    out.append(f"worst_case.{threat}.{eps} is {w.accuracy!r} over {w.n_examples} examples, expected an "
                               "accuracy in [0, 1] over at least one example at a numeric eps")
    return out
