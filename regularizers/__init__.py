"""Representational-similarity regularisers for any PyTorch training loop.

``neural_sim`` (Li et al. 2019; target from neural recordings) and ``pixel_sim`` (Attias,
Pehlevan & Obeid; target from image pixels) train a classifier with an extra loss pulling
its layer-mixed similarity of image pairs towards a target similarity matrix. This package
depends only on torch and numpy (not on ``bench``); see :mod:`regularizers.regularizer` for
the training step.
"""

from .loss import LOSS_KINDS, fisher_g, pearson, similarity_loss
from .pairs import REG_RANGES, PairSampler, rank_pairs, unrank_pairs
from .recordings import Recordings, Scan, load_recordings, load_scan, save_recording
from .regularizer import PairBatch, SimilarityRegularizer, regularized_forward
from .similarity import CNNSimilarity
from .simulated_v1 import SimulatedV1, grating
from .targets import (
    average_similarity,
    centred_cosine,
    label_target,
    neural_similarity,
    pixel_similarity,
    reliability_weights,
    shuffled_target,
    threshold_similarity,
    to_grayscale,
)
from .taps import record_taps

__all__ = [
    "LOSS_KINDS",
    "REG_RANGES",
    "CNNSimilarity",
    "PairBatch",
    "PairSampler",
    "Recordings",
    "Scan",
    "SimilarityRegularizer",
    "SimulatedV1",
    "average_similarity",
    "centred_cosine",
    "fisher_g",
    "grating",
    "label_target",
    "load_recordings",
    "load_scan",
    "neural_similarity",
    "pearson",
    "pixel_similarity",
    "rank_pairs",
    "record_taps",
    "regularized_forward",
    "reliability_weights",
    "save_recording",
    "shuffled_target",
    "similarity_loss",
    "threshold_similarity",
    "to_grayscale",
    "unrank_pairs",
]
