"""Fixtures shared by the defense tests (imported by name: a conftest.py here would shadow
``tests/conftest.py`` for the tests that do ``from fast_protocol import FAST``)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: the batches are small and the 2 cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
