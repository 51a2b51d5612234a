import math

import pytest
import torch

from regularizers import fisher_g, pearson, similarity_loss


def test_artanh_loss_matches_its_formula_with_eps():
    s_cnn = torch.tensor([0.3, -0.5, 0.99, 1.0, -1.0], dtype=torch.float64)
    s_tgt = torch.tensor([1.0, -1.0, 0.0, 0.2, -1.0], dtype=torch.float64)
    eps = 1e-5

    def g(s):
        return math.log(1 + s + eps) - math.log(1 - s + eps)

    want = sum((g(a) - g(b)) ** 2 for a, b in zip(s_cnn.tolist(), s_tgt.tolist())) / 5
    assert similarity_loss(s_cnn, s_tgt) == pytest.approx(want, rel=1e-12)
    # g(+-1) is finite thanks to eps: log(2 + eps) - log(eps)
    assert fisher_g(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(math.log(2 + eps) - math.log(eps))
    # a larger eps gives a different value (eps is really used)
    assert similarity_loss(s_cnn, s_tgt, eps=1e-2) != pytest.approx(want, rel=1e-3)


def test_artanh_loss_is_four_times_the_papers_artanh_squared():
    a = torch.tensor([0.1, -0.4, 0.7, 0.95], dtype=torch.float64)
    b = torch.tensor([0.5, 0.3, -0.2, 0.0], dtype=torch.float64)
    assert torch.allclose(fisher_g(a, eps=0.0), 2 * torch.atanh(a))
    paper = ((torch.atanh(a) - torch.atanh(b)) ** 2).mean()
    assert similarity_loss(a, b, eps=0.0).item() == pytest.approx(4 * paper.item(), rel=1e-12)
    # with the default eps the relation holds approximately away from +-1
    assert similarity_loss(a, b).item() == pytest.approx(4 * paper.item(), rel=1e-3)


def test_mse_loss_and_gradient():
    a = torch.tensor([0.2, -0.1, 0.9], requires_grad=True)
    b = torch.tensor([0.0, 0.0, 1.0])
    loss = similarity_loss(a, b, kind="mse")
    assert loss.item() == pytest.approx((0.04 + 0.01 + 0.01) / 3, rel=1e-6)
    loss.backward()
    assert torch.allclose(a.grad, 2 * (a.detach() - b) / 3)


def test_artanh_gradient_finite_at_the_bounds():
    a = torch.tensor([1.0, -1.0, 0.0], requires_grad=True)
    similarity_loss(a, torch.tensor([0.0, 0.0, 1.0])).backward()
    assert torch.isfinite(a.grad).all() and (a.grad != 0).all()


def test_loss_errors():
    with pytest.raises(ValueError, match="artanh, mse"):
        similarity_loss(torch.zeros(3), torch.zeros(3), kind="l1")
    with pytest.raises(ValueError, match="shape"):
        similarity_loss(torch.zeros(3), torch.zeros(4))


def test_pearson():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert math.isnan(pearson(a, torch.zeros(4)))
