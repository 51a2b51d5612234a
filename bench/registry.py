"""Registries: plain decorated factories, discoverable by name.

Each kind of component (datasets, models, defenses, attacks) has one :class:`Registry`.
A component is a factory function decorated with the registry's ``register``::

    @DEFENSES.register("baseline", description="plain cross-entropy training")
    def baseline(**params):
        ...

This module is a leaf: it imports no component. The built-in components register
themselves when ``bench.catalog`` imports them; look names up through ``bench.catalog`` (or
the pipeline's factories), which guarantees that the built-ins and every plugin are loaded.

Third-party code extends the harness without editing it, in either of two ways:

* ``bench --plugin my_package.my_module ...`` imports the module, whose decorators run;
* a Python entry point in the group ``bench.plugins`` names such a module; ``bench.catalog``
  imports it with the built-ins.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import bench.validate as validate
from bench.errors import BenchError, UnknownNameError

PLUGIN_ENTRY_POINT_GROUP = "bench.plugins"  # entry points naming plugin modules (loaded by bench.catalog)


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    description: str
    module: str


class Registry:
    """A name -> factory mapping for one kind of component."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, *, description: str | None = None):
        """Decorator registering a factory under ``name`` (default: the function's name)."""

        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            key = validate.name(name or factory.__name__, f"{self.kind} name")  # a folder and a table cell
            doc = (factory.__doc__ or "").strip().splitlines()
            text = description or (doc[0] if doc else "")
            old = self._entries.get(key)
            if old is not None and old.module != factory.__module__:
                raise BenchError(
                    f"{self.kind} {key!r} is already registered by module {old.module}; "
                    f"{factory.__module__} must choose another name"
                )
            self._entries[key] = Entry(key, factory, text, factory.__module__)
            return factory

        return decorator

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}") from None

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name).factory(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in self.names())

    def __contains__(self, name: str) -> bool:
        return name in self._entries


DATASETS = Registry("dataset")
MODELS = Registry("model")
DEFENSES = Registry("defense")
ATTACKS = Registry("attack")


def load_plugin_module(module: str) -> None:
    """Import a user module so that its ``register`` decorators run.

    Like ``python -m``, the current directory is searched first, so a ``my_defense.py``
    next to where ``bench`` runs is found without installing it.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise BenchError(
            f"cannot import plugin module {module!r}: {exc}. "
            "Give an importable dotted module name (its folder must be on PYTHONPATH or installed)."
        ) from exc
