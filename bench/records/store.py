"""Result records: one self-describing JSON file per (protocol, defense, seed, attack).

Layout: ``<results>/<protocol>-<hash12>/<defense>/seed<seed>/<attack>.json``. The protocol
hash in the path keeps results of different settings apart; the record repeats the whole
resolved config so it can be read without the protocol file. Writes are atomic (temporary
file, fsync, ``os.replace``): concurrent or interrupted writers never leave a torn record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from bench.errors import BenchError

SCHEMA_VERSION = 1


def record_path(results_dir: Path, protocol_name: str, protocol_hash: str, defense: str, seed: int, attack: str) -> Path:
    folder = defense.replace(":", "--")  # family:spec names (robustbench:X) stay portable folder names
    return Path(results_dir) / f"{protocol_name}-{protocol_hash[:12]}" / folder / f"seed{seed}" / f"{attack}.json"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; records are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def iter_records(results_dir: Path, kind: str = "attack") -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every record of ``kind`` under ``results_dir`` ("attack", "analysis", "model_summary";
    temporary files are skipped)."""
    for path in sorted(Path(results_dir).rglob("*.json")):
        if not path.name.startswith("."):
            record = read_record(path)
            if record.get("kind", "attack") == kind:
                yield path, record
