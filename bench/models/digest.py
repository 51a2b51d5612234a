"""The one digest of a network's weights: which trained network a record measured.

Every record's ``model.weights_sha256`` comes from :func:`weights_digest`, whether the network
was trained here, loaded from a zoo or handed over by a user, so that two records of one
model folder can be compared (records of two networks must never form one worst case).

It hashes the state dict in name order: each entry's name, dtype and shape, then its bytes.
It accepts every state dict torch produces: 0-dim buffers (BatchNorm's
``num_batches_tracked``), half and bfloat16 tensors, non-contiguous views and tensors shared
between two names (hashed under each name, as ``state_dict`` lists them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import nn

from bench.errors import ConfigError

__all__ = ["weights_digest"]


def weights_digest(weights: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a module's ``state_dict()``, or of a state dict itself."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        if not torch.is_tensor(tensor):
            raise ConfigError(f"state dict entry {name!r} is a {type(tensor).__name__}, not a tensor: cannot digest the weights")
        if tensor.is_meta or tensor.is_sparse or tensor.is_quantized:
            raise ConfigError(f"state dict entry {name!r} is a meta, sparse or quantized tensor: load real dense weights first")
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
