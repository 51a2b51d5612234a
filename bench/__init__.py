"""bench: a comparative benchmark harness for the adversarial robustness of image classifiers.

The package reads as the pipeline it runs: ``data`` -> ``models`` -> ``defenses`` ->
``training`` -> ``attacks`` -> ``evaluation`` -> ``records`` -> ``reporting``, tied
together by ``protocol`` (what to run) and ``runner`` (running it).
"""

import os

# foolbox imports GitPython, which refuses to import without a git executable on PATH.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

__version__ = "0.1.0"
