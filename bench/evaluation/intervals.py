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
* :func:`paired_over_seeds`: the same over several seeds (models trained with each seed on the
  same test images): the mean of the per-seed differences, with a two-level paired bootstrap
  (resample the seeds, then the examples within each drawn seed, A and B together); the
  McNemar p-value only for one seed, since the seeds share their images;
* :func:`hierarchical_interval`: the mean accuracy over seeds with a two-level bootstrap
  interval (resample the seeds, then the examples within each drawn seed), so that both the
  training randomness and the finite test set widen it; with one seed it is the Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

__all__ = ["accuracy_interval", "bootstrap_median_interval", "hierarchical_interval", "compare_outcome_strings", "paired_comparison", "paired_over_seeds", "wilson_interval",
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
    p_value: float | None  # McNemar for one seed, the paired bootstrap's for several
    n: int  # examples per seed (the smallest seed's, where they differ)
    only_a: int  # examples A gets right and B wrong (summed over seeds)
    only_b: int
    seeds: int = 1

    @property
    def significant(self) -> bool:
        if self.p_value is not None:
            return self.p_value < 0.05
        return self.low > 0 or self.high < 0

    def p_text(self) -> str:
        """'p < 0.001', 'p = 0.042', or for several seeds where the interval sits."""
        if self.p_value is None:
            return f"{self.seeds} seeds, {'interval excludes 0' if self.significant else 'interval includes 0'}"
        return "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"


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


def paired_over_seeds(pairs: list[tuple[np.ndarray, np.ndarray]], confidence: float = 0.95,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """A minus B from per-seed pairs of per-example outcomes ((a, b) for each seed both have, the same
    examples in the same order within a seed). One seed: :func:`paired_comparison`. Several: the mean
    of the per-seed differences; each resample draws as many seeds as there are, with replacement,
    then each drawn seed's examples with replacement, A and B together, and averages the drawn
    seeds' differences; the interval is the percentile interval of those averages, and the two-sided
    p-value twice the share of them on the far side of 0 (so p < 0.05 exactly where the 95 % interval
    excludes 0; one seed keeps McNemar's exact test)."""
    if not pairs:
        raise ValueError("need outcomes of at least one seed that both sides have")
    if len(pairs) == 1:
        return paired_comparison(*pairs[0], confidence=confidence, resamples=resamples, seed=seed)
    diffs = []
    for a, b in pairs:
        a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
        if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
            raise ValueError(f"each seed needs two 1-D outcome arrays of the same non-zero length, got {a.shape} and {b.shape}")
        diffs.append(a.astype(np.int8) - b.astype(np.int8))
    rng = np.random.default_rng(seed)
    # per seed, a paired resample's difference is (#(+1) - #(-1)) / n with the counts multinomial
    # over (+1, -1, 0): drawn directly instead of indexing n examples
    probs = np.array([[(d == 1).mean(), (d == -1).mean()] for d in diffs])
    sizes = np.array([len(d) for d in diffs])
    drawn = rng.integers(0, len(diffs), size=(resamples, len(diffs)))
    counts = multinomial_pair(rng, sizes[drawn], probs[drawn][..., 0], probs[drawn][..., 1])
    averages = ((counts[0] - counts[1]) / sizes[drawn]).mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(averages, [tail, 1 - tail])
    p = float(min(1.0, 2 * min((averages <= 0).mean(), (averages >= 0).mean())))
    return PairedComparison(float(np.mean([d.mean() for d in diffs])), float(low), float(high), p, int(sizes.min()),
                            int(sum((d == 1).sum() for d in diffs)), int(sum((d == -1).sum() for d in diffs)), len(diffs))


def multinomial_pair(rng: np.random.Generator, n: np.ndarray, p_up: np.ndarray, p_down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of +1 and -1 among n draws over (+1, -1, 0), elementwise: binomial, then binomial of the rest."""
    up = rng.binomial(n, p_up)
    rest = n - up
    cond = np.where(p_up < 1, p_down / np.maximum(1 - p_up, 1e-12), 0.0)
    down = rng.binomial(rest, np.clip(cond, 0.0, 1.0))
    return up, down


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


def compare_outcome_strings(a: dict[int, str], b: dict[int, str], confidence: float = 0.95) -> PairedComparison | None:
    """:func:`paired_over_seeds` from per-seed outcome strings as records store them ("1" = correct),
    on the seeds both sides have with the same number of examples; None where there are none."""
    pairs = [(_bits(a[s]), _bits(b[s])) for s in sorted(set(a) & set(b)) if a[s] and len(a[s]) == len(b[s])]
    return paired_over_seeds(pairs, confidence) if pairs else None


def _bits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")
