"""Result records: one self-describing JSON file per (protocol, defense, seed, attack).

Layout: ``<results>/<protocol>-<hash12>/<defense>/seed<seed>/<attack>.json``. The protocol
hash in the path keeps results of different settings apart; the record repeats the whole
resolved config so it can be read without the protocol file. Writes are atomic (temporary
file, fsync, ``os.replace``): concurrent or interrupted writers never leave a torn record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from bench.errors import BenchError
from bench.records.atomic import write_atomic

SCHEMA_VERSION = 1


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


def read_record(path: Path) -> dict[str, Any]:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"record {path} is unreadable ({exc}); delete it and rerun to recompute it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        raise BenchError(f"record {path} is not a schema-{SCHEMA_VERSION} result record")
    return data


SUMMARY_NAME = "summary.json"  # per-model worst case and cross-attack checks, beside the attack records


def summary_path(attack_record: Path) -> Path:
    return attack_record.parent / SUMMARY_NAME


def _select(paths, kind: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(paths):
        if not path.name.startswith("."):  # temporary files of atomic writes
            record = read_record(path)
            if record.get("kind", "attack") == kind:
                yield path, record


def iter_records(results_dir: Path, kind: str = "attack") -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every record of ``kind`` anywhere under ``results_dir`` ("attack", "analysis_rsa", "model_summary", ...)."""
    return _select(Path(results_dir).rglob("*.json"), kind)


def iter_records_in(folder: Path, kind: str = "attack") -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every record of ``kind`` directly in ``folder`` (one model's records)."""
    return _select(Path(folder).glob("*.json"), kind)
