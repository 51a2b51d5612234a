"""Plain training: the reference every other defense is compared with."""

from bench.defenses.base import Defense
from bench.registry import DEFENSES


@DEFENSES.register("baseline", description="plain cross-entropy training, no defense")
def baseline() -> Defense:
    return Defense("baseline")
