"""RSA: RDMs and rank correlations against NumPy/SciPy, AI and AN stimuli on a trained CNN, consistency by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from bench.analysis import rsa
from bench.analysis.rsa import AI, AN, CLEAN, Stimuli


def test_rdm_matches_numpy_pearson():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(12, 3, 5, 5, generator=g) + torch.linspace(0, 3, 12).view(-1, 1, 1, 1)
    acts[4] = acts[3] * 2.5 + 1  # perfectly correlated pair: dissimilarity 0
    acts[7] = -acts[3]  # anti-correlated: dissimilarity 2
    expected = 1 - np.corrcoef(acts.flatten(1).double().numpy())
    np.fill_diagonal(expected, 0)
    d = rsa.rdm(acts)
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-5)
    assert d[3, 4] == pytest.approx(0, abs=1e-5) and d[3, 7] == pytest.approx(2, abs=1e-5)
    torch.testing.assert_close(d, d.T, rtol=0, atol=1e-6)  # z @ z.T: symmetric up to the matmul's summation order
    assert torch.all(d.diagonal() == 0)


def test_constant_pattern_is_uncorrelated_with_everything():
    acts = torch.randn(4, 10)
    acts[1] = 0.7
    z, constant = rsa._standardise(acts)
    assert constant == 1 and torch.all(z[1] == 0)
    d = rsa.rdm(acts)
    assert torch.allclose(d[1, [0, 2, 3]], torch.ones(3)) and d[1, 1] == 0


def test_average_ranks_and_spearman_match_scipy():
    g = torch.Generator().manual_seed(1)
    vectors = (torch.randn(5, 300, generator=g) * 3).round()  # many ties
    vectors[3] = vectors[0] ** 3 - 2  # monotone transform: Spearman 1 with row 0
    for v in vectors:
        np.testing.assert_allclose(rsa.average_ranks(v).numpy(), stats.rankdata(v.numpy()))
    rho = rsa.spearman_matrix(vectors)
    expected = stats.spearmanr(vectors.numpy(), axis=1).statistic
    np.testing.assert_allclose(rho.numpy(), expected, atol=1e-10)
    assert rho[0, 3] == pytest.approx(1.0)


def test_upper_triangle_is_the_off_diagonal_half():
    m = torch.arange(16.0).view(4, 4)
    assert rsa.upper_triangle(m).tolist() == [1, 2, 3, 6, 7, 11]


def _stimuli() -> tuple[torch.Tensor, Stimuli]:
    """Two classes, two clean images each (0, 1: class 0; 2, 3: class 1); AI 4 from 0 and AI 5 from 2; AN 6 -> 1, AN 7 -> 0."""
    kind = torch.tensor([CLEAN] * 4 + [AI] * 2 + [AN] * 2)
    label = torch.tensor([0, 0, 1, 1, 0, 1, 1, 0])
    source = torch.tensor([-1, -1, -1, -1, 0, 2, -1, -1])
    predicted = torch.tensor([0, 0, 1, 1, 1, 0, 1, 1])
    d = torch.full((8, 8), 0.5)
    d[4, 0] = d[0, 4] = 0.1  # AI 4 near its source
    d[4, 2] = d[2, 4] = d[4, 3] = d[3, 4] = 0.3  # its predicted class 1 is farther (0.3) than its source (0.1)
    d[5, 2] = d[2, 5] = 0.6  # AI 5 far from its source
    d[5, 0] = d[0, 5] = 0.2  # ... and its nearest clean image is of class 0 (its predicted class)
    d[6, 2] = d[2, 6] = 0.2
    d[6, 3] = d[3, 6] = 0.4  # AN 6 to its target class 1: mean 0.3, other class: 0.5
    d[7, 0] = d[0, 7] = d[7, 1] = d[1, 7] = 0.9  # AN 7 to its target class 0: mean 0.9, other class: 0.5
    d.fill_diagonal_(0)
    return d, Stimuli(torch.zeros(8, 1, 2, 2), kind, label, source, predicted, 2)


def test_perceptual_consistency_by_hand():
    d, stimuli = _stimuli()
    out = rsa.perceptual_consistency(d, stimuli)
    assert out["n_ai"] == 2 and out["n_an"] == 2
    assert out["d_ai_mean"] == pytest.approx((0.1 + 0.6) / 2)
    assert out["d_an_mean"] == pytest.approx((0.3 + 0.9) / 2) and out["d_an_median"] == pytest.approx(0.6)
    assert out["consistency"] == pytest.approx(0.5)  # 0.1 < 0.6, 0.6 is not
    assert out["distance_ratio"] == pytest.approx(0.35 / 0.6)
    # AI 4: 0.1 vs its predicted class 1 (0.3) -> nearer its source; AI 5: 0.6 vs class 0 (mean 0.35) -> not
    assert out["ai_source_over_predicted"] == pytest.approx(0.5)
    assert out["ai_nearest_is_source"] == pytest.approx(0.5)
    assert out["an_target_proximity"] == pytest.approx(0.5)  # AN 6: 0.3 < 0.5; AN 7: 0.9 > 0.5
    assert out["an_nearest_is_target"] == pytest.approx(0.5)


def test_perceptual_consistency_without_ai_images_is_undefined():
    d, stimuli = _stimuli()
    keep = torch.tensor([0, 1, 2, 3, 6, 7])
    reduced = Stimuli(stimuli.images[keep], stimuli.kind[keep], stimuli.label[keep], stimuli.source[keep],
                      stimuli.predicted[keep], 2)
    out = rsa.perceptual_consistency(d[keep][:, keep], reduced)
    assert out["n_ai"] == 0 and out["consistency"] is None and out["distance_ratio"] is None
    assert out["an_nearest_is_target"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def stimuli(trained_cnn, digits):
    trained_cnn.eval()
    return rsa.build_stimuli(trained_cnn, digits.test_x, digits.test_y, 10, n_per_class=2, eps=0.2,
                             pgd_params={"steps": 10, "rel_stepsize": 0.25, "random_start": True}, an_steps=25,
                             an_stepsize=0.05, seed=0, batch_size=64)


def test_clean_stimuli_are_correct_and_balanced(stimuli, trained_cnn, digits):
    clean = stimuli.kind == CLEAN
    assert clean.sum() == 20 and stimuli.info["clean_per_class"] == [2] * 10
    idx = torch.tensor(stimuli.info["clean_test_indices"])
    assert torch.equal(stimuli.images[clean], digits.test_x[idx].float() / 255)
    assert torch.equal(stimuli.label[clean], digits.test_y[idx])
    assert torch.equal(stimuli.predicted[clean], stimuli.label[clean])


def test_ai_images_are_misclassified_and_within_eps(stimuli, trained_cnn):
    ai = stimuli.kind == AI
    assert stimuli.info["ai"]["kept"] == int(ai.sum()) >= 10, stimuli.info["ai"]
    src = stimuli.source[ai]
    assert torch.all(stimuli.kind[src] == CLEAN) and torch.equal(stimuli.label[ai], stimuli.label[src])
    delta = (stimuli.images[ai] - stimuli.images[src]).flatten(1).abs().amax(1)
    assert torch.all(delta <= 0.2 + 1e-6) and delta.max() > 0.1
    assert stimuli.images[ai].min() >= 0 and stimuli.images[ai].max() <= 1
    with torch.no_grad():
        assert torch.all(trained_cnn(stimuli.images[ai]).argmax(1) != stimuli.label[ai])


def test_an_images_reach_their_target_with_high_confidence(stimuli, trained_cnn):
    an = stimuli.kind == AN
    assert an.sum() == 20 and stimuli.label[an].tolist() == [c for c in range(10) for _ in range(2)]
    with torch.no_grad():
        probs = trained_cnn(stimuli.images[an]).softmax(1)
    confidence = probs.gather(1, stimuli.label[an].view(-1, 1)).flatten()
    assert confidence.min() > 0.9, confidence
    assert stimuli.info["an"]["mean_confidence"] == pytest.approx(float(confidence.mean()), abs=1e-5)
    assert stimuli.info["an"]["reached_target"] == 1.0
    assert stimuli.images[an].min() >= 0 and stimuli.images[an].max() <= 1


def test_rsa_over_taps_pixels_and_output(stimuli, trained_cnn):
    result = rsa.rsa(trained_cnn, stimuli, batch_size=32)
    assert result["layers"] == ["pixels", "stem", "stage1", "stage2", "stage3", "output"]
    rho = np.array(result["rdm_spearman"])
    assert rho.shape == (6, 6) and np.allclose(rho, rho.T) and np.allclose(np.diag(rho), 1)
    # the pixel RDM is the images' own: check one entry of the correlation matrix independently
    patterns, _ = rsa.standardised_activations(trained_cnn, stimuli.images, 32)
    pixel_rdm = rsa.rdm(stimuli.images)
    np.testing.assert_allclose(rsa._rdm_from_standardised(patterns["pixels"]).numpy(), pixel_rdm.numpy(), atol=1e-5)
    with torch.no_grad():
        logits = trained_cnn(stimuli.images)
    output_rdm = rsa.rdm(logits)
    expected = stats.spearmanr(rsa.upper_triangle(pixel_rdm).numpy(), rsa.upper_triangle(output_rdm).numpy()).statistic
    assert rho[0, 5] == pytest.approx(expected, abs=1e-4)
    kinds = result["stimulus_kinds"]
    assert kinds == {"clean": 20, "ai": stimuli.info["ai"]["kept"], "an": 20}
    pixels = result["consistency"]["pixels"]
    # in pixel space an AI image is a small perturbation of its source: nearer to it than any AN image to its class
    assert pixels["consistency"] == 1.0 and pixels["ai_nearest_is_source"] == 1.0
    assert result["consistency"]["output"]["an_nearest_is_target"] > 0.5
