import math

import pytest
import torch

from regularizers import SimulatedV1, grating, neural_similarity


@pytest.fixture(scope="module")
def v1():
    return SimulatedV1((24, 24), 300, seed=3)


def test_labelled_simulated(v1):
    assert SimulatedV1.simulated is True and v1.simulated is True
    d = v1.describe()
    assert d["simulated"] is True and "SIMULATED" in d["kind"]
    assert d["n_neurons"] == 300 and d["n_simple"] + d["n_complex"] == 300
    assert 0 < d["n_complex"] < 300
    assert "SIMULATED" in SimulatedV1.__doc__ and "SIMULATED" in SimulatedV1.respond.__doc__


def test_shapes_and_trial_mean(v1):
    x = torch.rand(10, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    mean, reps = v1.respond(x, 5, torch.Generator().manual_seed(1))
    assert mean.shape == (10, 300) and reps.shape == (5, 10, 300)
    assert mean.dtype == reps.dtype == torch.float32
    assert torch.allclose(mean, reps.mean(dim=0))
    assert not torch.allclose(reps[0], reps[1])  # trial noise
    rates = v1.expected_rates(x)
    assert rates.shape == (10, 300) and torch.all(rates >= v1.baseline - 1e-6)


def test_deterministic_given_seeds():
    x = torch.rand(6, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    a = SimulatedV1((20, 20), 80, seed=7).respond(x, 2, torch.Generator().manual_seed(5))
    b = SimulatedV1((20, 20), 80, seed=7).respond(x, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a[1], b[1])
    assert torch.equal(SimulatedV1((20, 20), 80, seed=7).respond(x, 2)[1], SimulatedV1((20, 20), 80, seed=7).respond(x, 2)[1])
    c = SimulatedV1((20, 20), 80, seed=8).respond(x, 2, torch.Generator().manual_seed(5))
    assert not torch.allclose(a[0], c[0])
    d = SimulatedV1((20, 20), 80, seed=7).respond(x, 2, torch.Generator().manual_seed(6))
    assert not torch.equal(a[1], d[1])


def test_chunking_does_not_change_rates(v1):
    x = torch.rand(9, 1, 24, 24, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(v1.expected_rates(x, batch_size=4), v1.expected_rates(x), atol=1e-6)


def mean_over_phases(v1, theta, sf):
    ims = torch.cat([grating(v1.image_size, theta, sf, ph) for ph in (0, math.pi / 2, math.pi, 3 * math.pi / 2)])
    return v1.expected_rates(ims).mean(dim=0)


def test_orientation_selectivity(v1):
    pref = torch.zeros(300)
    orth = torch.zeros(300)
    for s, f in enumerate(v1.spatial_frequencies):
        for o, th in enumerate(v1.orientations):
            sel = (v1.sf_index == s) & (v1.orientation_index == o)
            pref[sel] = mean_over_phases(v1, th, f)[sel]
            orth[sel] = mean_over_phases(v1, th + math.pi / 2, f)[sel]
    for cells in (v1.is_complex, ~v1.is_complex):
        assert (pref[cells] > orth[cells]).float().mean() > 0.95
        assert pref[cells].median() > 5 * orth[cells].median()


def test_complex_cells_are_phase_invariant_simple_cells_are_not(v1):
    s, o = 1, 2
    sel = (v1.sf_index == s) & (v1.orientation_index == o)
    th, f = v1.orientations[o], v1.spatial_frequencies[s]
    ims = torch.cat([grating(v1.image_size, th, f, ph) for ph in torch.linspace(0, 2 * math.pi, 9)[:-1].tolist()])
    r = v1.expected_rates(ims)[:, sel]
    spread = (r.max(dim=0).values - r.min(dim=0).values) / r.mean(dim=0)
    cx = v1.is_complex[sel]
    assert cx.any() and (~cx).any()
    assert spread[cx].median() < 0.5 * spread[~cx].median()


def test_divisive_normalisation_saturates_with_contrast(v1):
    th, f = v1.orientations[0], v1.spatial_frequencies[0]
    sel = (v1.orientation_index == 0) & (v1.sf_index == 0) & v1.is_complex
    low, mid, high = (
        v1.expected_rates(grating(v1.image_size, th, f, 0.0, c))[0, sel].mean() - v1.baseline for c in (0.05, 0.4, 0.8)
    )
    assert mid > 2 * low  # rises with contrast
    assert high < 1.3 * mid  # but saturates: doubling contrast adds < 30 %


def test_similarity_of_simulated_responses_is_usable(v1):
    x = torch.rand(40, 1, 24, 24, generator=torch.Generator().manual_seed(4))
    mean, reps = v1.respond(x, 3)
    s = neural_similarity(mean, reps)
    assert s.shape == (40, 40) and torch.isfinite(s).all()
    assert torch.allclose(torch.diag(s), torch.ones(40), atol=1e-5)


def test_errors(v1):
    with pytest.raises(ValueError, match=r"grayscale \[N, 1, 24, 24\]"):
        v1.respond(torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match=r"grayscale \[N, 1, 24, 24\]"):
        v1.respond(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="n_repeats"):
        v1.respond(torch.rand(2, 1, 24, 24), 0)
    with pytest.raises(ValueError, match="gaussian, poisson"):
        SimulatedV1(noise="cauchy")
    with pytest.raises(ValueError, match="0.5"):
        SimulatedV1(spatial_frequencies=(0.7,))


def test_poisson_noise_is_count_valued():
    m = SimulatedV1((16, 16), 50, noise="poisson", seed=1)
    _, reps = m.respond(torch.rand(4, 1, 16, 16), 3)
    assert torch.equal(reps, reps.round()) and reps.min() >= 0
