"""Parameter checks shared by the attack factories: a bad value is refused with the attack's
name, the parameter, the value and what is accepted, before any work starts."""

from __future__ import annotations

import math
from typing import Any, Iterable

from bench.errors import ConfigError

def param_error(attack: str, name: str, value: Any, accepted: str) -> ConfigError:
    return ConfigError(f"attack {attack!r}: parameter {name!r} = {value!r} is invalid; accepted: {accepted}")


def int_param(attack: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats are refused: 100.0 steps is a typo)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise param_error(attack, name, value, f"an integer >= {minimum}")
    return value


def float_param(attack: str, name: str, value: Any, *, low: float = 0.0, low_inclusive: bool = False,
                high: float | None = None, high_inclusive: bool = True) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (open at ``low`` by default)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low)
    ok = ok and (high is None or (value <= high if high_inclusive else value < high))
    if not ok:
        upper = "inf)" if high is None else f"{high:g}{']' if high_inclusive else ')'}"
        bounds = f"{'[' if low_inclusive else '('}{low:g}, {upper}"
        raise param_error(attack, name, value, f"a finite number in {bounds}")
    return float(value)


def choice_param(attack: str, name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise param_error(attack, name, value, "one of " + ", ".join(map(repr, choices)))
    return value


def bool_param(attack: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise param_error(attack, name, value, "true or false")
    return value



def optional_count(attack: str, name: str, value: Any) -> int | None:
    """``None`` (no limit) or an integer >= 1."""
    return None if value is None else int_param(attack, name, value)
