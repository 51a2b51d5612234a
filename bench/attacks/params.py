"""Attack parameters checked by the one validator (``bench.validate``): a bad value is refused with the
attack's name, the parameter, the value and what is accepted, before any work starts."""

from __future__ import annotations

from typing import Any, Iterable

import bench.validate as validate
from bench.errors import ConfigError


def _where(attack: str, name: str) -> str:
    return f"attack {attack!r}: parameter {name!r}"


def param_error(attack: str, name: str, value: Any, accepted: str) -> ConfigError:
    return validate.invalid(_where(attack, name), value, accepted)


def int_param(attack: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats are refused: 100.0 steps is a typo)."""
    return validate.integer(value, _where(attack, name), minimum)


def float_param(attack: str, name: str, value: Any, *, low: float = 0.0, low_inclusive: bool = False,
                high: float | None = None, high_inclusive: bool = True) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (open at ``low`` by default)."""
    return validate.number(value, _where(attack, name), low=low, low_inclusive=low_inclusive, high=high,
                           high_inclusive=high_inclusive)


def choice_param(attack: str, name: str, value: Any, choices: Iterable[str]) -> str:
    return validate.choice(value, _where(attack, name), choices)


def bool_param(attack: str, name: str, value: Any) -> bool:
    return validate.boolean(value, _where(attack, name))


def optional_count(attack: str, name: str, value: Any) -> int | None:
    """``None`` (no limit) or an integer >= 1."""
    return validate.optional_count(value, _where(attack, name))
