"""Published models from other projects (RobustBench, torchvision, timm), read from local files only."""

from bench.zoo.compat import import_robustbench

__all__ = ["import_robustbench"]
