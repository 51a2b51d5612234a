"""Reading intermediate feature maps ("taps") out of any model with forward hooks.

Models in the harness name their taps in ``model.taps`` (``{"stem": "conv1", "stage1":
"layer1", ...}``); this module needs nothing else from them, so the regulariser works with
any ``nn.Module`` without changing its ``forward``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

from torch import Tensor, nn

__all__ = ["record_taps"]


@contextmanager
def record_taps(
    model: nn.Module, tap_modules: Mapping[str, str], rows: slice | None = None
) -> Iterator[dict[str, Tensor]]:
    """Collect the outputs of ``model.get_submodule(path)`` for each ``name -> path``.

    Yields a dict filled during forward passes inside the ``with`` block (a module called
    again overwrites its entry); the hooks are removed on exit, also after an exception.
    ``rows`` keeps only those batch rows (e.g. ``slice(64, None)`` for the pair images of a
    joint batch), still attached to the autograd graph.
    """
    if not tap_modules:
        raise ValueError("record_taps needs at least one tap")
    modules = {}
    for name, path in tap_modules.items():
        try:
            modules[name] = model.get_submodule(path)
        except AttributeError as err:
            raise ValueError(f"tap {name!r}: model {type(model).__name__} has no submodule {path!r}") from err
    out: dict[str, Tensor] = {}

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if not isinstance(output, Tensor):
                raise TypeError(f"tap {name!r} ({tap_modules[name]}) returned {type(output).__name__}, not a Tensor")
            out[name] = output if rows is None else output[rows]

        return hook

    handles = [m.register_forward_hook(make_hook(name)) for name, m in modules.items()]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()
