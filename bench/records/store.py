"""Result records: one self-describing JSON file per (protocol, defense, seed, attack).

Layout: ``<results>/<protocol>-<hash12>/<defense>/seed<seed>/<attack>.json``. A results
folder's ``reference/`` subfolder holds the shipped reference results: reading ``results/``
leaves it out, so a user's runs and the references never mix (read it as
``results/reference``). The protocol
hash in the path keeps results of different settings apart; the record repeats the whole
resolved config so it can be read without the protocol file. Writes are atomic (temporary
file, fsync, ``os.replace``): concurrent or interrupted writers never leave a torn record.

Records are read as the typed objects of ``bench.records.schema`` (:class:`AttackRecord`,
:class:`AnalysisRecord`, :class:`ModelSummary`): a record of another schema version or of
an unknown kind, or missing a field, is refused with a message naming the file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import bench.validate as validate
from bench.records.atomic import write_atomic
from bench.records.schema import SCHEMA_VERSION, Record, RecordError, check_header, record_from_dict
from bench.records.verify import record_problems

__all__ = ["SCHEMA_VERSION", "SUMMARY_NAME", "folder_name", "safe_name", "set_aside", "usable_record", "iter_records", "iter_records_in", "read_record", "record_path",
           "summary_path", "write_json_atomic", "write_record"]


def safe_name(name: Any, what: str = "name") -> str:
    """A name that becomes a path component: ``bench.validate.name``, the one rule for such names."""
    return validate.name(name, what)


def folder_name(defense: str) -> str:
    """A defense name as a folder name: ``family:spec`` names (robustbench:X) stay portable."""
    return defense.replace(":", "--")


def record_path(results_dir: Path, protocol_name: str, protocol_hash: str, defense: str, seed: int, attack: str) -> Path:
    return Path(results_dir) / f"{protocol_name}-{protocol_hash[:12]}" / folder_name(defense) / f"seed{seed}" / f"{attack}.json"


def write_json_atomic(path: Path, data: Any) -> None:
    def dump(fh) -> None:
        json.dump(data, fh, indent=1, sort_keys=False, allow_nan=False)
        fh.write("\n")

    write_atomic(Path(path), dump)


def write_record(path: Path, record: Record) -> None:
    """Write a typed record (its ``to_dict()``) atomically."""
    write_json_atomic(path, record.to_dict())


def _load_json(path: Path) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"record {path} is unreadable ({exc}); rerun the command that wrote it: it moves the file aside "
                          "and recomputes it", f"unreadable: {exc}") from None


RECOMPUTE = ("rerun the command that wrote it (bench run or bench eval with the same arguments): it moves the file "
             "aside, keeping it, and recomputes it")


def _verified(record: Record, path: Path) -> Record:
    """``record`` if its values make sense together and with its folder (``bench.records.verify``)."""
    problems = record_problems(record, path, folder_name)
    if problems:
        raise RecordError(f"record {path} cannot be trusted: {'; '.join(problems)}; {RECOMPUTE}", "; ".join(problems))
    return record


def read_record(path: Path) -> Record:
    """The typed record in ``path``; refuses other schema versions, unknown kinds, missing or wrong fields, and
    values that contradict each other or the folder the record lies in."""
    return _verified(record_from_dict(_load_json(path), path), path)


def usable_record(path: Path) -> bool:
    """Whether ``path`` holds a record that can be reused as it is."""
    try:
        read_record(path)
    except (RecordError, OSError):
        return False
    return True


def set_aside(path: Path) -> Path:
    """Move a record that cannot be trusted out of the way, never deleting it: ``<name>.rejected-<UTC time>``
    beside it (no longer a ``.json``, so no reader takes it for a record)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(path).with_name(f"{Path(path).name}.rejected-{stamp}")
    os.replace(path, target)
    return target


SUMMARY_NAME = "summary.json"  # per-model worst case and cross-attack checks, beside the attack records


def summary_path(attack_record: Path) -> Path:
    return attack_record.parent / SUMMARY_NAME


def _select(paths, kind: str | None) -> Iterator[tuple[Path, Record]]:
    for path in sorted(paths):
        if not path.name.startswith("."):  # temporary files of atomic writes
            data = _load_json(path)
            found = check_header(data, path)  # every file is checked, whatever its kind
            if kind is None or found == kind:
                yield path, _verified(record_from_dict(data, path), path)


REFERENCE_FOLDER = "reference"  # <results>/reference/: the shipped references, not part of <results>


def iter_records(results_dir: Path, kind: str | None = "attack") -> Iterator[tuple[Path, Record]]:
    """Every record of ``kind`` anywhere under ``results_dir`` but its ``reference/`` subfolder, sorted by
    path: "attack", "model_summary", "analysis_rsa", ..., or ``None`` (every record). Files of other kinds
    are checked too (schema, known kind)."""
    root = Path(results_dir)
    paths = [p for p in root.rglob("*.json") if p.relative_to(root).parts[0] != REFERENCE_FOLDER]
    return _select(paths, kind)


def iter_records_in(folder: Path, kind: str | None = "attack") -> Iterator[tuple[Path, Record]]:
    """Every record of ``kind`` directly in ``folder`` (one model's records)."""
    return _select(Path(folder).glob("*.json"), kind)
