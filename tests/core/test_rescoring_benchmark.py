"""The randomised re-scoring benchmark's bookkeeping: one row per draw, and what the draws disagree on."""

import pytest
import torch
from torch import nn


@pytest.fixture(scope="module")
def rescoring(benchmark_script):
    return benchmark_script("randomized_rescoring")


class CoinFlip(nn.Module):
    """Class 0 for the first input, class 1 for the second, a fair coin for the third."""

    def forward(self, x):
        logits = torch.zeros(len(x), 2)
        logits[:, 1] = x[:, 0] * 2 - 1 + (x[:, 0] == 0.5).float() * torch.randn(len(x))
        return logits


def test_each_row_is_one_draw_and_batches_cover_every_point(rescoring):
    torch.manual_seed(0)
    points, labels = torch.tensor([[0.0], [1.0], [0.5]]), torch.tensor([0, 1, 0])
    per_draw = rescoring.correct_per_draw(CoinFlip(), points, labels, draws=64, batch=2)
    assert per_draw.shape == (64, 3) and per_draw.dtype == torch.bool
    assert per_draw[:, 0].all() and per_draw[:, 1].all()
    assert 0 < per_draw[:, 2].sum() < 64  # the coin lands both ways over 64 draws


def test_summary_counts_points_the_draws_disagree_on(rescoring):
    per_draw = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)  # 3 draws, 4 points
    summary = rescoring.rescoring_summary(per_draw)
    assert summary["one_draw_accuracy_min"] == 0.25 and summary["one_draw_accuracy_max"] == 0.75
    assert summary["expected_accuracy"] == pytest.approx(0.5)
    assert summary["points_right_in_some_draws_wrong_in_others"] == 2  # points 1 and 3
    assert summary["points_right_in_every_draw"] == 1  # point 0
