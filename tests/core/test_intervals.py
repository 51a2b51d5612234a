"""Intervals shared by the API, reports and figures: Wilson for accuracies, bootstrap for medians."""

import math

import numpy as np
import pytest

from bench.evaluation.intervals import accuracy_interval, bootstrap_median_interval, wilson_interval


def test_wilson_known_values():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    low, high = wilson_interval(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=1e-3)
    low, high = wilson_interval(100, 100)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.9630, abs=1e-3)
    assert accuracy_interval(0.5, 100) == wilson_interval(50, 100)
    assert accuracy_interval(0.49999, 100) == wilson_interval(50, 100)  # k = round(acc * n)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_bootstrap_median_is_deterministic_and_contains_the_median():
    values = np.random.default_rng(1).exponential(size=201)
    first = bootstrap_median_interval(values, seed=3)
    assert first == bootstrap_median_interval(values, seed=3)
    assert first[0] < np.median(values) < first[1]


def test_bootstrap_median_with_unbroken_examples_is_open_ended():
    values = np.array([0.1, 0.2, 0.3] + [math.inf] * 4)  # most examples never broken: the median is inf
    low, high = bootstrap_median_interval(values)
    assert math.isinf(high) and not math.isnan(low)
    low, high = bootstrap_median_interval(np.array([0.1] * 6 + [math.inf] * 2))
    assert low == pytest.approx(0.1) and high >= 0.1


def test_bootstrap_median_of_grid_brackets_spans_them():
    lower = np.array([0.0, 0.1, 0.1, 0.1, 0.2])
    upper = np.array([0.0, 0.15, 0.15, 0.15, math.inf])
    low, high = bootstrap_median_interval(lower, upper)
    assert low <= 0.1 and high >= 0.15
    with pytest.raises(ValueError):
        bootstrap_median_interval(upper, lower)


def test_paired_comparison_mcnemar_and_bootstrap():
    import numpy as np

    from bench.evaluation.intervals import paired_comparison

    a = np.array([True] * 10 + [False] * 90)
    b = np.zeros(100, dtype=bool)
    c = paired_comparison(a, b)
    assert (c.difference, c.only_a, c.only_b, c.n) == (0.1, 10, 0, 100)
    assert c.p_value == pytest.approx(2 * 0.5**10) and c.significant  # exact McNemar: 10 discordant pairs, all one way
    assert c.low < 0.1 < c.high and c.low > 0
    assert paired_comparison(a, b) == c  # seeded bootstrap: deterministic
    same = paired_comparison(b, b)
    assert (same.difference, same.low, same.high, same.p_value, same.significant) == (0.0, 0.0, 0.0, 1.0, False)
    mixed = paired_comparison(np.array([True, False] * 20), np.array([False, True] * 20))
    assert mixed.difference == 0 and mixed.p_value == pytest.approx(1.0) and mixed.low < 0 < mixed.high
    with pytest.raises(ValueError):
        paired_comparison(a, b[:5])


def test_hierarchical_interval_one_seed_is_wilson_and_several_seeds_widen_it():
    import numpy as np

    from bench.evaluation.intervals import hierarchical_interval, wilson_interval

    one = np.array([True] * 50 + [False] * 50)
    assert hierarchical_interval([one]) == (0.5, *wilson_interval(50, 100))
    alike = [one, one.copy(), one.copy()]
    mean, low, high = hierarchical_interval(alike)
    assert mean == 0.5 and low < 0.5 < high
    assert high - low < wilson_interval(50, 100)[1] - wilson_interval(50, 100)[0]  # 3 x 100 examples: narrower than 100
    apart = [np.arange(100) < 30, np.arange(100) < 50, np.arange(100) < 70]  # seeds that disagree
    m2, low2, high2 = hierarchical_interval(apart)
    assert m2 == 0.5 and high2 - low2 > high - low + 0.1  # the spread between seeds widens it
    assert hierarchical_interval(apart) == (m2, low2, high2)  # seeded: repeatable


def test_paired_over_seeds_pairs_within_each_seed_and_widens_with_seed_spread():
    import numpy as np

    from bench.evaluation.intervals import compare_outcome_strings, paired_comparison, paired_over_seeds

    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.5
    flip = rng.random(400) < 0.1
    a = b | flip  # A is right wherever B is, and on ~10 % more
    one = paired_over_seeds([(a, b)])
    assert one == paired_comparison(a, b) and one.p_value is not None and one.seeds == 1
    # three seeds agreeing: the mean difference, an interval around it, the bootstrap's p (no McNemar: the seeds share images)
    same = paired_over_seeds([(a, b)] * 3)
    assert same.p_value < 0.05 and same.seeds == 3 and same.significant
    assert same.difference == pytest.approx((a.mean() - b.mean())) and same.low < same.difference < same.high
    # seeds that disagree on the sign: the interval spans 0, so not significant
    spread = paired_over_seeds([(a, b), (b, a), (a, b)])
    assert spread.low < 0 < spread.high and not spread.significant
    assert (spread.high - spread.low) > (same.high - same.low)
    # from the records' strings, on the seeds both sides have
    text = lambda v: "".join("1" if x else "0" for x in v)  # noqa: E731
    c = compare_outcome_strings({0: text(a), 1: text(a), 5: text(a)}, {0: text(b), 1: text(b)})
    assert c.seeds == 2 and c.difference == pytest.approx(same.difference)
    assert compare_outcome_strings({0: text(a)}, {1: text(b)}) is None
    with pytest.raises(ValueError):
        paired_over_seeds([(a, b), (a, b[:10])])
