"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so loading it never
executes pickled code. Writing goes to a temporary file in the same folder followed by
``os.replace``: a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.errors import CheckpointError, first_line
from bench.records.atomic import write_atomic


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    write_atomic(path, lambda fh: torch.save(state, fh), mode="wb")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {first_line(exc)}). "
            "It was left untouched: delete it to retrain from the last good state, or rerun with --force to retrain from scratch."
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"checkpoint {path} is not a harness checkpoint (expected a dict with a 'model' entry); delete it or rerun with --force")
    return state
