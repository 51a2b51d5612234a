import itertools

import pytest
import torch
from scipy.stats import chi2

from regularizers import REG_RANGES, PairSampler, pixel_similarity, rank_pairs, unrank_pairs

# A hand-made symmetric similarity with values on both sides of +-th = 0.5 and exactly at it.
S = torch.tensor(
    [
        [1.0, 0.9, -0.7, 0.1, 0.5, -0.2],
        [0.9, 1.0, 0.2, -0.6, 0.0, 0.7],
        [-0.7, 0.2, 1.0, 0.3, -0.5, 0.6],
        [0.1, -0.6, 0.3, 1.0, 0.8, -0.1],
        [0.5, 0.0, -0.5, 0.8, 1.0, -0.9],
        [-0.2, 0.7, 0.6, -0.1, -0.9, 1.0],
    ]
)
TH = 0.5

CONDITIONS = {
    "all": lambda s: True,
    "high": lambda s: abs(s) > TH,
    "low": lambda s: abs(s) < TH,
    "positive": lambda s: s > TH or abs(s) < TH,
    "negative": lambda s: s < -TH or abs(s) < TH,
}


def expected_pairs(reg_range):
    n = S.shape[0]
    return {(i, j) for i in range(n) for j in range(i + 1, n) if CONDITIONS[reg_range](float(S[i, j]))}


@pytest.mark.parametrize("reg_range", REG_RANGES)
@pytest.mark.parametrize("rejection_density", [0.0, 2.0])  # 0: bit mask + rejection; 2: index list
def test_every_sampled_pair_is_in_the_set_and_the_set_is_covered(reg_range, rejection_density):
    sampler = PairSampler(S, reg_range, TH, rejection_density=rejection_density)
    want = expected_pairs(reg_range)
    assert sampler.num_pairs == len(want) == len(sampler)
    if reg_range != "all":
        assert sampler.mode == ("rejection" if rejection_density == 0.0 else "index")
    i, j = sampler.sample(2000, torch.Generator().manual_seed(0))
    assert i.dtype == j.dtype == torch.int64 and i.shape == j.shape == (2000,)
    got = set(zip(i.tolist(), j.tolist()))
    assert all(a < b for a, b in got)
    assert got <= want
    assert got == want  # 2000 draws over at most 15 pairs cover them all


def test_pairs_at_exactly_the_threshold_are_neither_high_nor_low():
    on_threshold = {(0, 4), (2, 4)}  # |S| == 0.5
    for reg_range in ("high", "low"):
        assert not on_threshold & expected_pairs(reg_range)
        i, j = PairSampler(S, reg_range, TH).sample(500, torch.Generator().manual_seed(1))
        assert not on_threshold & set(zip(i.tolist(), j.tolist()))


def chi_square_uniform(counts):
    counts = torch.as_tensor(counts, dtype=torch.float64)
    expected = counts.sum() / len(counts)
    stat = float(((counts - expected) ** 2 / expected).sum())
    return stat, float(chi2.ppf(0.999, len(counts) - 1))


def test_all_is_uniform_over_i_lt_j():
    n = 9
    sampler = PairSampler(None, "all", num_images=n)
    i, j = sampler.sample(36000, torch.Generator().manual_seed(2))
    assert torch.all(i < j) and i.min() >= 0 and j.max() < n
    counts = torch.zeros(n, n)
    counts.index_put_((i, j), torch.ones(len(i)), accumulate=True)
    cells = [counts[a, b] for a, b in itertools.combinations(range(n), 2)]
    assert min(cells) > 0
    stat, critical = chi_square_uniform(cells)
    assert stat < critical, (stat, critical)
    # a skewed sampler fails the same check (the test has power)
    skewed = torch.tensor(cells, dtype=torch.float64)
    skewed[0] *= 1.3
    assert chi_square_uniform(skewed)[0] > critical


@pytest.mark.parametrize("rejection_density", [0.0, 2.0])
def test_subsets_are_sampled_uniformly(rejection_density):
    sampler = PairSampler(S, "positive", TH, rejection_density=rejection_density)
    want = sorted(expected_pairs("positive"))
    i, j = sampler.sample(len(want) * 1500, torch.Generator().manual_seed(3))
    index = {p: k for k, p in enumerate(want)}
    counts = torch.zeros(len(want))
    for p in zip(i.tolist(), j.tolist()):
        counts[index[p]] += 1
    stat, critical = chi_square_uniform(counts)
    assert stat < critical, (stat, critical)


@pytest.mark.parametrize("n", [2, 3, 17, 50])
def test_unrank_inverts_rank_for_every_pair(n):
    pairs = list(itertools.combinations(range(n), 2))
    i = torch.tensor([p[0] for p in pairs])
    j = torch.tensor([p[1] for p in pairs])
    t = rank_pairs(i, j)
    assert sorted(t.tolist()) == list(range(n * (n - 1) // 2))
    ii, jj = unrank_pairs(t)
    assert torch.equal(ii, i) and torch.equal(jj, j)


@pytest.mark.parametrize("n", [5000, 100_000, 3_000_000])
def test_unrank_is_exact_for_large_n(n):
    total = n * (n - 1) // 2
    t = torch.cat([torch.tensor([0, 1, total - 2, total - 1]), torch.randint(total, (20000,), generator=torch.Generator().manual_seed(4))])
    # also every rank at a row boundary, where float rounding would bite first
    jb = torch.randint(2, n, (5000,), generator=torch.Generator().manual_seed(5))
    t = torch.cat([t, jb * (jb - 1) // 2, jb * (jb - 1) // 2 - 1])
    i, j = unrank_pairs(t)
    assert torch.all((0 <= i) & (i < j) & (j < n))
    assert torch.equal(rank_pairs(i, j), t)


def test_sampler_on_a_real_sized_matrix_matches_a_direct_count():
    g = torch.Generator().manual_seed(6)
    base = torch.rand(30, 1, 8, 8, generator=g)
    pick = torch.randint(30, (1500,), generator=g)
    sign = (torch.randint(0, 2, (1500, 1, 1, 1), generator=g) * 2 - 1).float()
    x = (0.5 + sign * (base[pick] - 0.5) + 0.1 * torch.randn(1500, 1, 8, 8, generator=g)).clamp(0, 1)
    s = pixel_similarity(x)
    upper = torch.triu(torch.ones(1500, 1500, dtype=torch.bool), diagonal=1)
    for reg_range, cond in [
        ("high", s.abs() > 0.6),
        ("low", s.abs() < 0.6),
        ("negative", (s < -0.6) | (s.abs() < 0.6)),
    ]:
        sampler = PairSampler(s, reg_range, 0.6)
        assert sampler.num_pairs == int((cond & upper).sum())
        i, j = sampler.sample(5000, g)
        assert torch.all(cond[i, j]) and torch.all(i < j)
    assert PairSampler(s, "high", 0.6).mode == "index"
    assert PairSampler(s, "low", 0.6).mode == "rejection"


def test_errors():
    with pytest.raises(ValueError, match="all, high, low, positive, negative"):
        PairSampler(S, "middle", TH)
    with pytest.raises(ValueError, match="selects no pair"):
        PairSampler(S, "high", 0.95)
    with pytest.raises(ValueError, match="threshold"):
        PairSampler(S, "high", None)
    with pytest.raises(ValueError, match="needs the similarity"):
        PairSampler(None, "high", TH, num_images=6)
    with pytest.raises(ValueError, match="square"):
        PairSampler(S[:3], "low", TH)
    with pytest.raises(ValueError, match="NaN"):
        PairSampler(torch.full((3, 3), float("nan")), "low", TH)
    with pytest.raises(ValueError, match="at least 2"):
        PairSampler(None, "all", num_images=1)
    with pytest.raises(ValueError, match="k must be"):
        PairSampler(S).sample(0)


def test_sampling_is_reproducible_with_a_generator():
    sampler = PairSampler(S, "low", TH)
    a = sampler.sample(50, torch.Generator().manual_seed(7))
    b = sampler.sample(50, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
