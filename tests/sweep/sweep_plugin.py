"""A --plugin module for the sweep tests: a defense whose training loss is NaN.

Its jobs fail in the worker with TrainingDivergedError (a BenchError); failing that way, and
not with "unknown defense", also shows that the worker imported the plugin.
"""

from bench.defenses import Defense, Objective
from bench.registry import DEFENSES


class NanLoss(Objective):
    def forward(self, model, x, y):
        logits = model(x)
        return logits.sum() * float("nan"), logits, {}


class NanLossDefense(Defense):
    def objective(self, ctx):
        return NanLoss()


@DEFENSES.register("sweep_nan_loss", description="test plugin: the training loss is NaN")
def sweep_nan_loss() -> Defense:
    return NanLossDefense("sweep_nan_loss", {})
