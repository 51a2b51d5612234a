"""What a leaderboard row is, whichever output renders it: its status, its completing command, its reference.

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

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.evaluation.checks import next_attack
from bench.protocol import DEFAULT_REFERENCE, builtin_protocols, leaderboard_of, load_protocol

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
