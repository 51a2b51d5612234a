"""Defenses: how a model is trained and what pipeline is attacked."""

from bench.defenses.base import CrossEntropy, Defense, Objective, TrainingContext, attack_view

__all__ = ["CrossEntropy", "Defense", "Objective", "TrainingContext", "attack_view"]
