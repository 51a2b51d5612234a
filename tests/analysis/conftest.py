"""One torch thread for the analysis tests, including the shared ``trained_cnn`` when they build it.

On the shared 2-core machine two intra-op threads oversubscribe the cores: training the
fixture took 45 s per epoch with two threads and 11 s with one while other work ran.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def _threads_before_training():
    """Switch to one thread before the parent ``trained_cnn`` is built; yields the count to restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield before


@pytest.fixture(scope="session")
def trained_cnn(_threads_before_training, trained_cnn):
    """The root conftest's model (reused if another directory built it first), trained on one thread here."""
    torch.set_num_threads(_threads_before_training)
    return trained_cnn
