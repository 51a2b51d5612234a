"""Uncertainty intervals shared by the API, reports and figures.

* :func:`wilson_interval`: 95 % Wilson score interval of a proportion (an accuracy over n
  examples: k of them correct);
* :func:`accuracy_interval`: the same from an accuracy and n (k = round(accuracy * n));
* :func:`bootstrap_median_interval`: percentile bootstrap interval of a median over examples,
  with a seeded generator (deterministic). Values may be +inf (an example the attack never
  broke); a bound that is inf means the interval is open-ended. With ``upper`` the data are
  interval-censored (each example's value lies in [lower, upper], e.g. between two eps of a
  grid): the interval then runs from the bootstrap low of the lower bounds' median to the
  bootstrap high of the upper bounds' median, over the same resamples;
* :func:`paired_comparison`: two defenses on the same examples: the difference of their
  accuracies with a paired bootstrap interval, and the exact McNemar p-value;
* :func:`hierarchical_interval`: the mean accuracy over seeds with a two-level bootstrap
  interval (resample the seeds, then the examples within each drawn seed), so that both the
  training randomness and the finite test set widen it; with one seed it is the Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

__all__ = ["accuracy_interval", "bootstrap_median_interval", "hierarchical_interval", "paired_comparison", "wilson_interval",
           "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "PairedComparison"]

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of k successes out of n (n >= 1)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of an accuracy measured on n examples (k = round(accuracy * n))."""
    return wilson_interval(round(accuracy * n), n, confidence)


def bootstrap_median_interval(values, upper=None, confidence: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                              seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the median over examples (inf allowed; see the module docstring)."""
    lower = np.asarray(values, dtype=float)
    high_values = lower if upper is None else np.asarray(upper, dtype=float)
    if lower.ndim != 1 or len(lower) == 0 or high_values.shape != lower.shape:
        raise ValueError("need one non-empty 1-D array of values (and upper bounds of the same shape)")
    if np.isnan(lower).any() or np.isnan(high_values).any() or (high_values < lower).any():
        raise ValueError("values must not be NaN and upper bounds must not lie below the values")
    idx = np.random.default_rng(seed).integers(0, len(lower), size=(n_resamples, len(lower)))
    alpha = (1 - confidence) / 2
    # no interpolation between order statistics: inf - inf would give NaN
    low = np.quantile(np.median(lower[idx], axis=1), alpha, method="lower")
    high = np.quantile(np.median(high_values[idx], axis=1), 1 - alpha, method="higher")
    return float(low), float(high)


@dataclass(frozen=True)
class PairedComparison:
    """Accuracy of A minus accuracy of B on the same examples, with a 95 % paired bootstrap interval
    and the exact McNemar p-value (two-sided binomial test on the discordant pairs)."""

    difference: float
    low: float
    high: float
    p_value: float
    n: int
    only_a: int  # examples A gets right and B wrong
    only_b: int

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def paired_comparison(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """Compare per-example outcomes ``a`` and ``b`` (booleans, the same examples in the same order)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D outcome arrays of the same non-zero length, got {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(binomtest(min(only_a, only_b), discordant, 0.5).pvalue)
    diff = a.astype(float) - b.astype(float)
    idx = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedComparison(float(diff.mean()), float(low), float(high), min(p, 1.0), len(a), only_a, only_b)


def hierarchical_interval(outcomes: list, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """(mean over seeds, low, high) of per-seed accuracies, from per-example outcomes per seed.

    ``outcomes``: one 1-D boolean array per seed (the seeds may have different lengths). One
    seed: its accuracy and the Wilson interval over its examples. Several: each resample draws
    as many seeds as there are, with replacement, then for each drawn seed as many examples as
    it has, with replacement, and averages the drawn seeds' accuracies; the interval is the
    percentile interval of those averages (Davison & Hinkley 1997, section 3.8)."""
    arrays = [np.asarray(o, dtype=bool) for o in outcomes]
    if not arrays or any(a.ndim != 1 or len(a) == 0 for a in arrays):
        raise ValueError("need at least one seed, each with a non-empty 1-D array of outcomes")
    means = np.array([a.mean() for a in arrays])
    if len(arrays) == 1:
        low, high = wilson_interval(int(arrays[0].sum()), len(arrays[0]), confidence)
        return float(means[0]), low, high
    rng = np.random.default_rng(seed)
    sizes = np.array([len(a) for a in arrays])
    drawn = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
    # each drawn seed gets its own resample of its examples, whose accuracy is exactly
    # binomial(n, p_seed) / n: drawn directly instead of indexing n examples
    averages = (rng.binomial(sizes[drawn], means[drawn]) / sizes[drawn]).mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(averages, [tail, 1 - tail])
    return float(means.mean()), float(low), float(high)
