"""Fixtures for the attack tests (toy models and checks live in attack_helpers.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def batch16(eval_batch, trained_cnn):
    """16 test digits the trained CNN classifies correctly (the harness attacks only those)."""
    x, y = eval_batch
    with torch.no_grad():
        correct = trained_cnn(x).argmax(1) == y
    return x[correct][:16], y[correct][:16]
