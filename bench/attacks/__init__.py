"""Attacks: threat models and the algorithms that search them."""

from bench.attacks.base import Access, Attack, AttackKind, MinimalAttack
from bench.attacks.threat import L2, THREAT_MODELS, Linf

__all__ = ["Access", "Attack", "AttackKind", "MinimalAttack", "L2", "Linf", "THREAT_MODELS"]
