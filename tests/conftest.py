"""Shared fixtures: the embedded digits and a small model trained on them."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython
torch.set_num_threads(2)

@pytest.fixture(scope="session")
def digits():
    from bench.data import load_dataset

    return load_dataset("mnist_digits")


@pytest.fixture(scope="session")
def trained_cnn(digits, tmp_path_factory):
    """A small CNN trained for 2 epochs on the embedded digits (about 97 % test accuracy)."""
    from bench.defenses.base import CrossEntropy, TrainingContext
    from bench.models import build_model
    from bench.training import train

    torch.manual_seed(0)
    model = build_model({"name": "small_cnn", "normalization": "dataset"}, 1, 10, digits.channel_stats())
    idx = torch.randperm(len(digits.train_y), generator=torch.Generator().manual_seed(0))
    ctx = TrainingContext(digits, idx[400:], torch.device("cpu"), 0)
    cfg = {"epochs": 2, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "schedule": "cosine"}
    result = train(model, CrossEntropy(), ctx, idx[:400], cfg, tmp_path_factory.mktemp("ckpt"), progress=False)
    return result.model.eval()


@pytest.fixture(scope="session")
def eval_batch(digits):
    return digits.test_x[:120].float() / 255, digits.test_y[:120]
