"""Reading weights made elsewhere: a state dict from a file, with ``weights_only=True`` (no pickled code runs)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from bench.errors import CheckpointError, first_line

_READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Parameter name -> tensor from ``path``: a state dict, or a dict holding one under 'state_dict' or 'model'.

    Read with ``weights_only=True``, so a file cannot run code. A ``module.`` prefix on every key
    (left by ``DataParallel``) is removed.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except _READ_ERRORS as exc:
        raise CheckpointError(f"cannot read {path} as a state dict (loaded with weights_only=True, which refuses pickled "
                              f"objects; save model.state_dict() instead): {type(exc).__name__}: {first_line(exc)}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        found = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: expected a state dict (parameter name -> tensor), or a dict holding one under "
                              f"'state_dict' or 'model'; found {found}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj
