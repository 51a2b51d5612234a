"""The one validator of numbers, ranges and choices: protocols, attacks, defenses, sweeps and the command line.

Each function takes the value and ``where`` it came from (``protocol quick: training.lr``,
``attack 'pgd': parameter 'steps'``, ``--seed``) and returns the value, typed, or raises a
:class:`ConfigError` in one form: ``<where> = <value> is invalid; accepted: <what>``. Booleans
are never numbers, floats never integers (100.0 steps is a typo), and numbers are finite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from bench.errors import ConfigError

__all__ = ["MAX_SEED", "boolean", "choice", "integer", "invalid", "name", "number", "optional_count", "seed"]

MAX_SEED = 2**31 - 1 - 10_000  # torch's generators take 64-bit seeds; room is left for derived ones (surrogates: +1000)


def invalid(where: str, value: Any, accepted: str) -> ConfigError:
    return ConfigError(f"{where} = {value!r} is invalid; accepted: {accepted}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(value: Any, where: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """An int in [minimum, maximum] (either bound may be None)."""
    ok = _is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        if minimum is not None and maximum is not None:
            accepted = f"an integer from {minimum} to {maximum}"
        else:
            accepted = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (f" <= {maximum}" if maximum is not None else "")
        raise invalid(where, value, accepted)
    return value


def number(value: Any, where: str, *, low: float = 0.0, low_inclusive: bool = True, high: float | None = None,
           high_inclusive: bool = True) -> float:
    """A finite int or float in the interval from ``low`` to ``high`` (``None``: unbounded above), as a float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low)
    ok = ok and (high is None or (value <= high if high_inclusive else value < high))
    if not ok:
        upper = "inf)" if high is None else f"{high:g}{']' if high_inclusive else ')'}"
        raise invalid(where, value, f"a finite number in {'[' if low_inclusive else '('}{low:g}, {upper}")
    return float(value)


def choice(value: Any, where: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise invalid(where, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(where, value, "true or false")
    return value


def optional_count(value: Any, where: str) -> int | None:
    """``None`` (no limit) or an integer >= 1."""
    return None if value is None else integer(value, where)


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}")
NAME_RULE = "1 to 80 letters, digits and _ . + -, starting with a letter or digit (e.g. my_resnet18)"


def name(value: Any, where: str = "name") -> str:
    """A name that becomes a folder and a table cell (a protocol's, a user's model's): letters, digits and
    ``_ . + -``, starting with a letter or digit, at most 80 characters; no ``..``, no path separator,
    nothing Markdown or HTML reads."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"{where} {value!r} is not accepted: use {NAME_RULE}")
    return value


def seed(value: Any, where: str = "seed") -> int:
    """A seed, as the protocol's ``seeds``, ``--seed`` and sweeps take it: an integer from 0 to MAX_SEED."""
    return integer(value, where, 0, MAX_SEED)
