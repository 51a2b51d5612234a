"""A user's network for ``bench eval``: built by a factory in a file or module, or a TorchScript archive.

``path/to/file.py:factory`` or ``package.module:factory`` names a function returning an
``nn.Module`` that maps images in [0, 1] to logits; its weights come from a state-dict file
read with ``weights_only=True`` (no pickled code runs). A TorchScript archive carries both.
Every failure is a one-line :class:`ConfigError` or :class:`CheckpointError` saying what was
expected.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import torch
from torch import nn

from bench.zoo.weights import read_state_dict
from bench.errors import CheckpointError, ConfigError, first_line

SPEC_HELP = "path/to/file.py:factory or package.module:factory"


def build_from_spec(spec: str) -> nn.Module:
    """Call the factory ``spec`` names (no arguments) and check it returns a module."""
    where, sep, factory_name = spec.rpartition(":")
    if not sep or not where or not factory_name.isidentifier():
        raise ConfigError(f"--model {spec!r} must look like {SPEC_HELP}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ConfigError(f"--model {spec!r}: file {where} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"bench_user_model_{abs(hash(path.resolve()))}", path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"--model {spec!r}: importing {where} failed: {type(exc).__name__}: {exc}") from exc
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(f"--model {spec!r}: cannot import module {where!r} ({exc}); give {SPEC_HELP}") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        names = sorted(n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_"))
        raise ConfigError(f"--model {spec!r}: {where} has no function {factory_name!r}; it has: {', '.join(names) or 'none'}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec!r}: {factory_name}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a state dict into ``model``, refusing one that does not match its architecture, in one line."""
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    state = read_state_dict(path)
    result = model.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} key(s), e.g. {', '.join(result.missing_keys[:3])}")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected key(s), e.g. {', '.join(result.unexpected_keys[:3])}")
    if problems:
        raise CheckpointError(f"weights file {path} does not match the model's architecture: {'; '.join(problems)}")


def load_user_model(spec: str | None, weights: Path | None, torchscript: Path | None) -> nn.Module:
    """The network ``bench eval`` evaluates: ``spec`` (+ ``weights``), or a TorchScript archive."""
    if (spec is None) == (torchscript is None):
        raise ConfigError(f"give either --model {SPEC_HELP} (with --weights FILE) or --torchscript FILE")
    if torchscript is not None:
        if weights is not None:
            raise ConfigError("--weights goes with --model; a TorchScript archive carries its own weights")
        if not torchscript.is_file():
            raise CheckpointError(f"TorchScript file {torchscript} does not exist")
        try:
            return torch.jit.load(str(torchscript), map_location="cpu")
        except Exception as exc:
            raise CheckpointError(f"cannot read {torchscript} as a TorchScript archive (save it with torch.jit.save): "
                                  f"{type(exc).__name__}: {first_line(exc)}") from None
    model = build_from_spec(spec)
    if weights is not None:
        try:
            load_weights(model, weights)
        except RuntimeError as exc:  # shapes that do not fit
            first = str(exc).replace("\n", " ").replace("\t", " ")
            raise CheckpointError(f"weights file {weights} does not match the model's architecture: {first[:300]}") from None
    return model
