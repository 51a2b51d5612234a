"""Attacks: threat models and the algorithms that search them."""

from bench.attacks.base import Attack, MinimalAttack
from bench.attacks.threat import L2, THREAT_MODELS, Linf

__all__ = ["Attack", "MinimalAttack", "L2", "Linf", "THREAT_MODELS"]
