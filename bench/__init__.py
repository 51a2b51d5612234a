"""bench: a comparative benchmark harness for the adversarial robustness of image classifiers.

The package reads as the path the data takes: ``data`` -> ``models`` -> ``defenses`` ->
``training`` -> ``attacks`` -> ``evaluation`` -> ``records`` -> ``reporting``. ``protocol``
says what to run (parsed once, typed), ``catalog`` holds every registered component,
``pipeline`` turns (protocol, defense, seed) into a ready pipeline, and ``runner`` runs the
attacks on it. The methods are documented in docs/methods.md.
"""

import os

# foolbox imports GitPython, which refuses to import without a git executable on PATH.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

__version__ = "0.1.0"
__all__ = ["evaluate"]


def __getattr__(name: str):
    """``from bench import evaluate`` without importing torch for every ``import bench``."""
    if name == "evaluate":
        from bench.api import evaluate

        return evaluate
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
