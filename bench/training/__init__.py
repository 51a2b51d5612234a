"""Training: the resumable loop and its checkpoints."""

from bench.training.loop import TrainResult, load_trained, train

__all__ = ["TrainResult", "load_trained", "train"]
