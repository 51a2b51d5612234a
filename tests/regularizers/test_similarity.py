import pytest
import torch
import torch.nn.functional as F

from regularizers import CNNSimilarity, record_taps


def feats(seed, k=3, shape=(4, 5, 5), offset=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2 * k, *shape, generator=g) + offset


def test_ema_update_zero_init_follows_the_reference_formula():
    sim = CNNSimilarity(["a"], beta=0.9)
    f1, f2 = feats(0), feats(1)
    assert sim.running_mean("a").numel() == 0
    sim({"a": f1})
    m1 = f1.mean(dim=(0, 2, 3))
    assert torch.allclose(sim.running_mean("a"), 0.1 * m1, atol=1e-6)
    sim({"a": f2})
    m2 = f2.mean(dim=(0, 2, 3))
    assert torch.allclose(sim.running_mean("a"), 0.9 * 0.1 * m1 + 0.1 * m2, atol=1e-6)
    assert int(sim.num_updates) == 2


def test_ema_first_init_and_no_update_in_eval():
    sim = CNNSimilarity(["a"], beta=0.5, mean_init="first")
    f1, f2 = feats(2), feats(3)
    sim({"a": f1})
    m1 = f1.mean(dim=(0, 2, 3))
    assert torch.allclose(sim.running_mean("a"), m1, atol=1e-6)
    sim({"a": f2})
    assert torch.allclose(sim.running_mean("a"), 0.5 * m1 + 0.5 * f2.mean(dim=(0, 2, 3)), atol=1e-6)
    before = sim.running_mean("a").clone()
    sim.eval()
    sim({"a": feats(4)})
    assert torch.equal(sim.running_mean("a"), before)


def test_ema_uses_both_images_of_each_pair_and_has_no_gradient():
    sim = CNNSimilarity(["a"], beta=0.0)  # mu = current batch mean
    f = feats(5).requires_grad_(True)
    sim({"a": f})
    assert torch.allclose(sim.running_mean("a"), f.detach().mean(dim=(0, 2, 3)), atol=1e-6)
    assert not sim.running_mean("a").requires_grad


def test_forward_is_the_softmax_mixture_of_centred_cosines():
    sim = CNNSimilarity(["conv", "fc"], beta=0.9)
    conv, fc = feats(6, k=4), feats(7, k=4, shape=(10,))
    with torch.no_grad():
        sim.layer_logits.copy_(torch.tensor([0.3, -0.7]))
    s = sim({"conv": conv, "fc": fc})
    mu_c, mu_f = sim.running_mean("conv"), sim.running_mean("fc")
    assert mu_c.shape == (4,) and mu_f.shape == (10,)
    assert torch.allclose(mu_f, 0.1 * fc.mean(dim=0), atol=1e-6)
    c = (conv - mu_c[None, :, None, None]).flatten(1)
    f = fc - mu_f
    cos_c = F.cosine_similarity(c[:4], c[4:], dim=1)
    cos_f = F.cosine_similarity(f[:4], f[4:], dim=1)
    w = torch.softmax(torch.tensor([0.3, -0.7]), dim=0)
    assert s.shape == (4,)
    assert torch.allclose(s, w[0] * cos_c + w[1] * cos_f, atol=1e-6)
    assert sim.layer_weights() == pytest.approx(w.tolist())


def test_centring_matters():
    # all-positive features: uncentred cosines are near 1 for every pair, centred ones are not
    sim = CNNSimilarity(["a"], beta=0.0)
    f = torch.relu(feats(8, k=50, offset=0.0)) + 1.0
    s = sim({"a": f})
    raw = F.cosine_similarity(f[:50].flatten(1), f[50:].flatten(1), dim=1)
    assert raw.min() > 0.7
    assert s.abs().mean() < 0.3


def test_initial_layer_weights_are_uniform():
    sim = CNNSimilarity(["a", "b", "c", "d", "e"])
    assert sim.layer_weights() == pytest.approx([0.2] * 5)


def test_state_dict_round_trip_restores_lazily_sized_means():
    sim = CNNSimilarity(["a", "b"])
    sim({"a": feats(9), "b": feats(10, shape=(7,))})
    with torch.no_grad():
        sim.layer_logits.add_(torch.tensor([1.0, -1.0]))
    fresh = CNNSimilarity(["a", "b"])
    fresh.load_state_dict(sim.state_dict())
    for name in ("a", "b"):
        assert torch.equal(fresh.running_mean(name), sim.running_mean(name))
    assert torch.equal(fresh.layer_logits, sim.layer_logits)
    fresh.eval(), sim.eval()
    x = {"a": feats(11), "b": feats(12, shape=(7,))}
    assert torch.allclose(fresh(x), sim(x))


def test_input_errors():
    sim = CNNSimilarity(["a", "b"])
    with pytest.raises(KeyError, match="b"):
        sim({"a": feats(0)})
    with pytest.raises(ValueError, match="even"):
        sim({"a": torch.randn(5, 3), "b": torch.randn(5, 3)})
    with pytest.raises(ValueError, match="same even"):
        sim({"a": torch.randn(4, 3), "b": torch.randn(6, 3)})
    sim({"a": torch.randn(4, 3), "b": torch.randn(4, 3)})
    with pytest.raises(ValueError, match="channels"):
        sim({"a": torch.randn(4, 5), "b": torch.randn(4, 3)})
    with pytest.raises(ValueError, match="unique"):
        CNNSimilarity(["a", "a"])
    with pytest.raises(ValueError, match="zero, first"):
        CNNSimilarity(["a"], mean_init="one")


def test_gradients_reach_mixture_weights_and_model_parameters(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn()
    sim = CNNSimilarity(list(model.taps))
    x = torch.rand(8, 1, 16, 16)
    with record_taps(model, model.taps) as f:
        model(x)
    s = sim(f)
    ((s - torch.tensor([1.0, -1.0, 0.5, 0.0])) ** 2).mean().backward()
    assert sim.layer_logits.grad is not None and sim.layer_logits.grad.abs().sum() > 0
    for name in ("stem.0.weight", "stage1.0.weight", "stage2.0.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.fc.weight.grad is None  # the head is not tapped
