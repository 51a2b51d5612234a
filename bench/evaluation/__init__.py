"""Evaluation: attack a pipeline under the protocol and check the result can be trusted."""

from bench.evaluation.evaluate import AttackOutcome, evaluate_attack, logits_of, predict, true_class_rank

__all__ = ["AttackOutcome", "evaluate_attack", "logits_of", "predict", "true_class_rank"]
