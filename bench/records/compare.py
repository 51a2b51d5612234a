"""Comparing two results folders: what must agree when the same jobs run twice.

Two runs of the same protocol, defense, seed and attack must write the same record up to the
fields that describe the run rather than the result: wall-clock times, dates, the machine's
state, the code's commit and dirty flag, whether the model was trained now or reused, how a
user's network was handed over (command line or Python), and the absolute checkpoint folder. Used to show that the sweep executors are interchangeable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# obtained_with: how a user's network reached the harness (bench eval's flags, or bench.evaluate), not what was measured
VOLATILE = frozenset({"created", "timings", "environment", "code", "trained_now", "obtained_with"})


def comparable(value: Any, checkpoint_dir: Path) -> Any:
    """A record without its volatile fields, checkpoint paths made relative to their folder."""
    if isinstance(value, dict):
        return {k: comparable(v, checkpoint_dir) for k, v in value.items() if k not in VOLATILE and not k.endswith("seconds")}
    if isinstance(value, list):
        return [comparable(v, checkpoint_dir) for v in value]
    if isinstance(value, str):
        return value.replace(str(Path(checkpoint_dir).resolve()), "<checkpoints>")
    return value


def comparable_records(results: Path, checkpoints: Path) -> dict[str, Any]:
    """Every JSON file under ``results``: relative path -> comparable content."""
    results = Path(results)
    return {str(p.relative_to(results)): comparable(json.loads(p.read_text()), checkpoints) for p in sorted(results.rglob("*.json"))}


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Paths present in only one side, or whose comparable content differs (first differing key named)."""
    out = [f"only in first: {k}" for k in sorted(a.keys() - b.keys())] + [f"only in second: {k}" for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        if a[key] != b[key]:
            out.append(f"differs: {key} ({_first_difference(a[key], b[key])})")
    return out


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys(), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    return path or "<root>"
