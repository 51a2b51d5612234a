import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from regularizers import (
    PairBatch,
    PairSampler,
    SimilarityRegularizer,
    SimulatedV1,
    label_target,
    neural_similarity,
    pearson,
    pixel_similarity,
    record_taps,
    regularized_forward,
    similarity_loss,
    threshold_similarity,
)

TAPS = ["stem", "stage1", "stage2"]


def test_package_imports_without_bench():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    code = (
        "import sys, regularizers; assert regularizers.SimilarityRegularizer; "
        "assert not any(m == 'bench' or m.startswith('bench.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


@pytest.fixture
def reg_images(images_factory):
    return images_factory(120, torch.Generator().manual_seed(0))


def test_from_pixels_stores_the_thresholded_target_as_int8(reg_images):
    x, _ = reg_images
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS, th=0.4, reg_range="high", alpha=3.0)
    s = pixel_similarity(x)
    assert reg.target.dtype == torch.int8
    assert torch.equal(reg.target.float(), threshold_similarity(s, 0.4))
    assert reg.sampler.reg_range == "high" and reg.sampler.num_pairs == int(torch.triu(s.abs() > 0.4, 1).sum())
    assert reg.alpha == 3.0 and reg.tap_names == TAPS
    pb = reg.sample_pair_batch(16, torch.Generator().manual_seed(1))
    assert isinstance(pb, PairBatch) and len(pb) == 16
    assert pb.images.shape == (32, 1, 16, 16)
    assert torch.equal(pb.images[:16], x[pb.i]) and torch.equal(pb.images[16:], x[pb.j])
    assert torch.all(pb.i < pb.j)
    assert pb.target.dtype == torch.float32
    assert torch.equal(pb.target, threshold_similarity(s, 0.4)[pb.i, pb.j])
    assert torch.all(s[pb.i, pb.j].abs() > 0.4)  # "high" pairs only


def test_continuous_target_is_float16_within_rounding(reg_images):
    x, _ = reg_images
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS, threshold=False)
    assert reg.target.dtype == torch.float16
    assert (reg.target.float() - pixel_similarity(x)).abs().max() <= 2.0**-12
    kept = SimilarityRegularizer.from_pixels(x, tap_names=TAPS, threshold=False, continuous_dtype=torch.float32)
    assert torch.equal(kept.target, pixel_similarity(x))


def test_tap_names_may_be_the_models_tap_mapping(reg_images, tiny_cnn):
    x, _ = reg_images
    reg = SimilarityRegularizer.from_pixels(x, tap_names=tiny_cnn().taps)
    assert reg.tap_names == TAPS


def test_state_dict_holds_only_the_mixture_and_running_means(reg_images):
    x, _ = reg_images
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS)
    keys = set(reg.state_dict())
    assert "similarity.layer_logits" in keys
    assert not any(k in ("images", "target") for k in keys)
    assert [p.shape for p in reg.parameters()] == [torch.Size([3])]


def test_constructor_errors(reg_images):
    x, y = reg_images
    sampler = PairSampler(None, num_images=120)
    with pytest.raises(ValueError, match="120 x 120"):
        SimilarityRegularizer(x, torch.eye(5), TAPS, sampler)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        SimilarityRegularizer(x, 2 * torch.eye(120), TAPS, sampler)
    with pytest.raises(ValueError, match="artanh, mse"):
        SimilarityRegularizer(x, label_target(y), TAPS, sampler, loss_kind="huber")
    with pytest.raises(ValueError, match="sampler covers"):
        SimilarityRegularizer(x, label_target(y), TAPS, PairSampler(None, num_images=7))


def test_joint_forward_in_eval_mode_equals_separate_passes(reg_images, tiny_cnn):
    x, _ = reg_images
    torch.manual_seed(0)
    model = tiny_cnn().eval()
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS)
    pb = reg.sample_pair_batch(8, torch.Generator().manual_seed(2))
    batch = torch.rand(20, 1, 16, 16)
    logits, feats = regularized_forward(model, model.taps, batch, pb)
    assert logits.shape == (20, 4)
    assert torch.allclose(logits, model(batch), atol=1e-5)
    with record_taps(model, model.taps) as alone:
        model(pb.images)
    for name in TAPS:
        assert feats[name].shape[0] == 16
        assert torch.allclose(feats[name], alone[name], atol=1e-5)
    plain, empty = regularized_forward(model, model.taps, batch, None)
    assert torch.allclose(plain, logits, atol=1e-5) and empty == {}


def test_joint_forward_in_train_mode_shares_batchnorm_statistics(reg_images, tiny_cnn):
    """The documented BN consequence: in training mode the pair images change the logits."""
    x, _ = reg_images
    torch.manual_seed(0)
    model = tiny_cnn().train()
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS)
    pb = reg.sample_pair_batch(16, torch.Generator().manual_seed(3))
    batch = torch.rand(64, 1, 16, 16)
    logits, _ = regularized_forward(model, model.taps, batch, pb)
    alone = model(batch)
    assert not torch.allclose(logits, alone, atol=1e-4)
    # and it is exactly a forward of the concatenated 96-image batch
    assert torch.allclose(logits, model(torch.cat([batch, pb.images]))[:64], atol=1e-5)


def test_loss_value_diagnostics_and_gradients(reg_images, tiny_cnn):
    x, _ = reg_images
    torch.manual_seed(1)
    model = tiny_cnn()
    reg = SimilarityRegularizer.from_pixels(x, tap_names=TAPS, threshold=False, alpha=2.5)
    pb = reg.sample_pair_batch(16, torch.Generator().manual_seed(4))
    _, feats = regularized_forward(model, model.taps, torch.rand(8, 1, 16, 16), pb)
    loss, diag = reg.loss(feats, pb.target)  # training mode: updates mu, then uses it
    reg.eval()
    s_cnn = reg.similarity(feats).detach()  # eval mode: same mu, no update
    reg.train()
    assert set(diag) == {"reg_loss", "corr", "s_cnn_mean", "target_mean", "layer_weights"}
    assert diag["reg_loss"] == pytest.approx(float(similarity_loss(s_cnn, pb.target)), rel=1e-4)
    assert loss.item() == pytest.approx(2.5 * diag["reg_loss"], rel=1e-6)
    assert diag["corr"] == pytest.approx(pearson(s_cnn, pb.target), abs=1e-4)
    assert diag["layer_weights"] == pytest.approx({"stem": 1 / 3, "stage1": 1 / 3, "stage2": 1 / 3})
    loss.backward()
    assert reg.similarity.layer_logits.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0


def test_from_responses_single_and_several_scans(reg_images):
    x, _ = reg_images
    v1 = SimulatedV1((16, 16), 200, seed=0)
    mean, reps = v1.respond(x, 3)
    reg = SimilarityRegularizer.from_responses(x, mean, repeats=reps, tap_names=TAPS)
    assert reg.alpha == 20.0 and reg.target.dtype == torch.float16
    assert torch.allclose(reg.target.float(), neural_similarity(mean, reps), atol=2.0**-12)
    mean2, reps2 = SimulatedV1((16, 16), 150, seed=1).respond(x, 3)
    both = SimilarityRegularizer.from_responses(x, [mean, mean2], repeats=[reps, reps2], tap_names=TAPS)
    want = (neural_similarity(mean, reps) + neural_similarity(mean2, reps2)) / 2
    assert torch.allclose(both.target.float(), want, atol=2.0**-12)
    with pytest.raises(ValueError, match="120 images"):
        SimilarityRegularizer.from_responses(x, mean[:50], tap_names=TAPS)
    with pytest.raises(ValueError, match="list of the same length"):
        SimilarityRegularizer.from_responses(x, [mean, mean2], repeats=[reps], tap_names=TAPS)


def train(reg, model, train_x, train_y, steps=300, seed=0):
    """The documented training step; returns per-step reg losses and (corr, loss) before/after."""
    opt = torch.optim.SGD([*model.parameters(), *reg.parameters()], lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    ei, ej = reg.sampler.sample(400, torch.Generator().manual_seed(seed + 100))

    def evaluate():
        model.eval(), reg.eval()
        with torch.no_grad(), record_taps(model, model.taps) as f:
            model(reg.images[torch.cat([ei, ej])])
            s = reg.similarity(f)
        t = reg.target[ei, ej].float()
        model.train(), reg.train()
        return pearson(s, t), float(similarity_loss(s, t))

    with torch.no_grad():  # let the running means settle before measuring the untrained net
        for _ in range(30):
            pb = reg.sample_pair_batch(16, g)
            reg.similarity(regularized_forward(model, model.taps, train_x[:32], pb)[1])
    before = evaluate()
    losses = []
    for _ in range(steps):
        b = torch.randint(len(train_x), (32,), generator=g)
        pb = reg.sample_pair_batch(16, g)
        logits, feats = regularized_forward(model, model.taps, train_x[b], pb)
        reg_loss, diag = reg.loss(feats, pb.target)
        loss = F.cross_entropy(logits, train_y[b]) + reg_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(diag["reg_loss"])
        assert math.isfinite(diag["reg_loss"])
    return losses, before, evaluate()


def test_training_pixel_sim_lowers_the_loss_and_raises_the_correlation(images_factory, tiny_cnn):
    g = torch.Generator().manual_seed(0)
    xr, _ = images_factory(256, g)
    xt, yt = images_factory(2048, g)
    torch.manual_seed(0)
    reg = SimilarityRegularizer.from_pixels(xr, tap_names=TAPS, threshold=False, alpha=1.0)
    losses, (corr0, loss0), (corr1, loss1) = train(reg, tiny_cnn(), xt, yt)
    assert sum(losses[-50:]) < 0.5 * sum(losses[:50])
    assert loss1 < 0.3 * loss0
    assert corr1 > corr0 + 0.1 and corr1 > 0.9, (corr0, corr1)


def test_training_neural_sim_on_simulated_v1(images_factory, tiny_cnn):
    g = torch.Generator().manual_seed(1)
    xr, _ = images_factory(256, g)
    xt, yt = images_factory(2048, g)
    mean, reps = SimulatedV1((16, 16), 400, seed=0).respond(xr, 4)
    torch.manual_seed(0)
    reg = SimilarityRegularizer.from_responses(xr, mean, repeats=reps, tap_names=TAPS, alpha=1.0)
    losses, (corr0, loss0), (corr1, loss1) = train(reg, tiny_cnn(), xt, yt)
    assert sum(losses[-50:]) < 0.5 * sum(losses[:50])
    assert loss1 < 0.3 * loss0
    assert corr0 < 0.5 and corr1 > 0.8, (corr0, corr1)
