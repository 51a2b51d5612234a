"""Shared fixtures: one torch thread, the embedded digits and a small model trained on them."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op torch thread for every test and session fixture, and for the subprocesses they start.

    The batches are small and the tests run in two worker processes (pytest-xdist) on 2 cores:
    more threads per process oversubscribe the cores (measured on a busy 2-core machine: 1.9 s
    vs 117 s for a regulariser training test, 11 s vs 45 s per epoch for ``trained_cnn``).
    Session scope, so that it is in force before session fixtures such as ``trained_cnn`` train.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # read by torch in `bench` subprocesses
        yield
    torch.set_num_threads(before)


# Tests sharing an expensive module- or session-scoped fixture run in one pytest-xdist worker
# (``--dist loadgroup``), so that the fixture is built once rather than once per worker.
SHARED_FIXTURES = {
    "reference_sweeps": "reference_sweeps",  # tests/sweep: two sweeps of 4 jobs each
    "quick_run": "quick_run",  # tests/core/test_cli.py: one `bench run` with three attacks
    "analyzed": "analyzed",  # tests/analysis/test_analyze_cli.py: RSA and filters of two defenses
    "stimuli": "rsa_stimuli",  # tests/analysis/test_rsa.py: AI and AN stimuli on trained_cnn
    "results": "html_report", "report": "html_report",  # tests/reporting/test_html.py: one run, one report
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = next((SHARED_FIXTURES[name] for name in SHARED_FIXTURES if name in item.fixturenames), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def digits():
    from bench.data.embedded import mnist_digits

    return mnist_digits()


@pytest.fixture(scope="session")
def trained_cnn(digits, tmp_path_factory):
    """A small CNN trained for 2 epochs on the embedded digits (about 97 % test accuracy)."""
    from bench.defenses.base import CrossEntropy, TrainingContext
    from bench.pipeline import build_model
    from bench.protocol import TrainingSpec
    from bench.training import train

    torch.manual_seed(0)
    model = build_model({"name": "small_cnn", "normalization": "dataset"}, 1, 10, digits.channel_stats())
    idx = torch.randperm(len(digits.train_y), generator=torch.Generator().manual_seed(0))
    ctx = TrainingContext(digits, idx[400:], torch.device("cpu"), 0)
    cfg = TrainingSpec(epochs=2, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine")
    result = train(model, CrossEntropy(), ctx, idx[:400], cfg, tmp_path_factory.mktemp("ckpt"), progress=False)
    return result.model.eval()


@pytest.fixture(scope="session")
def eval_batch(digits):
    return digits.test_x[:120].float() / 255, digits.test_y[:120]
