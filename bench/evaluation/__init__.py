"""Evaluation: attack a pipeline under the protocol and check the result can be trusted."""

from bench.evaluation.evaluate import AttackOutcome, evaluate_attack, predict

__all__ = ["AttackOutcome", "evaluate_attack", "predict"]
