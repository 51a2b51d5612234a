"""Models: registered architectures, built with normalisation inside (see ``base``).

Building a model from a protocol's ``model`` section is ``bench.pipeline.build_model``.
"""

from bench.models.base import Classifier, Normalize

__all__ = ["Classifier", "Normalize"]
